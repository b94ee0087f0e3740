// Package slot renders, publishes and removes a profile's s6 service directory ("slot",
// <scandir>/gateway-<profile>) — SPEC §5.
//
// A slot holds type, run, finish and log/run (0755), notification-fd, timeout-kill, an
// optional down file, and a pre-seeded supervise skeleton (event/ 03730, supervise/ 0755,
// supervise/event/ 03730, supervise/control FIFO 0660, the same under log/) owned by the
// service user. s6-supervise runs as root and would otherwise create those as root-only,
// locking the unprivileged operator out of s6-svc and s6-svstat. Modes are set with fchmod
// after creation, so the umask never matters; entries that already exist are left alone.
//
// Every value that enters a script is shell-quoted; environment names are validated. A
// rendered run script restores the container environment (with-contenv), exports HOME and the
// profile's environment, and execs `gateway run -p <profile> --replace [-- command…]`, through
// s6-setuidgid when it finds itself running as root.
//
// Publishing is atomic: the slot is rendered into a dot-prefixed staging directory inside the
// scan directory (s6-svscan ignores dot entries) and renamed into place with
// RENAME_NOREPLACE, so s6-svscan never sees half a slot and two registrations of one profile
// cannot both win. Removal renames the slot to a dot name first for the same reason.
package slot
