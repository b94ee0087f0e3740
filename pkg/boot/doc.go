// Package boot is s6gate's /init: an s6-overlay v3 compatible container init built on Debian's
// s6-svscan (s6 2.11), for images that have s6 but not s6-overlay, s6-rc or s6-linux-init.
//
// # What it guarantees
//
//   - PID 1 of the container ends up being /usr/bin/s6-svscan scanning /run/service, with
//     /run/s6/basedir/bin/halt, /command/* tool links, /var/run -> /run, and /run/service
//     emptied at every boot (a restarted container keeps its writable layer).
//   - The environment is saved to /run/s6/container_environment (unless S6_KEEP_ENV), the
//     supervision tree starts from PATH only, and package contenv restores it.
//   - /etc/cont-init.d/* run as root, in lexical order, before any /etc/services.d service is
//     supervised; the CMD runs after both; its exit status (128+signal, 126/127 when it cannot
//     be executed) becomes the container's; S6_BEHAVIOUR_IF_STAGE2_FAILS 0/1/2 is honoured.
//   - A stop (SIGTERM/SIGINT/SIGQUIT to PID 1, or halt) brings every service of /run/service
//     down, runs /etc/cont-finish.d/*, TERMs and then KILLs what is left, and exits with the
//     code in /run/s6-linux-init-container-results/exitcode (0 when there is none).
//     S6_SERVICES_GRACETIME and S6_KILL_GRACETIME are upper bounds: every wait ends as soon
//     as what it waits for has happened, never on a sleep.
//   - Orphans are reaped in every phase: by this program while it is the init (boot, stage 3)
//     and by s6-svscan in between.
//   - Not PID 1 (docker run --init, tini, dumb-init): /init becomes a child sub-reaper
//     (PR_SET_CHILD_SUBREAPER) and works the same, except that PID 1 is the other init, and
//     the final kill targets only /init's descendants. Anywhere else (parent pid > 1, e.g. a
//     shell on a host) it refuses to start, so it can never wipe a host's /run/service.
//
// # How
//
// One static binary plays every part, chosen by argv[0]: the entrypoint (stage 1) prepares
// /run, starts itself as "s6gate-stage2" and execs s6-svscan -d (the readiness pipe tells
// stage 2 that s6-svscan accepts commands); <scandir>/.s6-svscan/{SIGTERM,SIGINT,SIGQUIT} are
// symlinks to it that run the stop hook, {finish,crash} the final stage, and
// /run/s6/basedir/bin/halt asks for a stop. docs/init.md is the user-facing reference.
//
// # Limits
//
// Debian has no s6-rc: /etc/s6-overlay/s6-rc.d is run by package s6rc (s6rc_linux.go,
// docs/s6-rc.md). S6_LOGGING,
// S6_STAGE2_HOOK, S6_VERBOSITY and fix-attrs.d are not implemented. /init writes only under
// /run (and /var/run, /command when something is missing there; never with
// S6_READ_ONLY_ROOT), so a read-only root works. Run as a non-root user it accepts the /run
// layouts s6-overlay's preinit accepts (owned by the user; root's and sticky; gid 0 and
// group-writable; world-writable only with
// S6_YES_I_WANT_A_WORLD_WRITABLE_RUN_BECAUSE_KUBERNETES) and refuses the rest, and a noexec
// /run, with one line naming the fix (checkRun). It never mounts anything.
package boot
