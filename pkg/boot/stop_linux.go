package boot

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/contenv"
	"github.com/s6gate/s6gate/pkg/s6"
)

// stopHook is <scandir>/.s6-svscan/SIGTERM (and SIGINT, SIGQUIT): s6-svscan runs it as a
// child when it receives the signal, and keeps reaping meanwhile. It brings every service in
// the scan directory down — the ones from /etc/services.d and the ones added at run time —
// and the CMD with them, waiting at most S6_SERVICES_GRACETIME but no longer than it takes;
// then it tells s6-svscan to exec into .s6-svscan/finish (stage 3). A second signal while a
// stop is running is ignored.
func stopHook(l layout, log *logger, sig string) int {
	start := time.Now()
	lock, err := os.OpenFile(l.stopLock(), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, fs.ErrExist) {
		log.printf("stop: %s ignored: a stop is already in progress", sig)
		return codeOK
	}
	if err != nil {
		log.printf("stop: warning: %v", err)
	} else {
		_, _ = lock.WriteString(sig + "\n")
		lock.Close()
	}
	k := hookKnobs(l, log)
	log.printf("stop: %s received: bringing services down (S6_SERVICES_GRACETIME=%d ms)", sig, k.ServicesGrace.Milliseconds())

	// The CMD (and a cont-init.d script still running) go down together with the services.
	st2 := readPidFile(l.stage2PidFile())
	if st2 > 0 && filepath.Base(cmdlineArgv0(st2)) == stage2Name {
		_ = syscall.Kill(st2, syscall.SIGTERM)
	} else {
		st2 = 0
	}

	// One deadline for every step: S6_SERVICES_GRACETIME from the signal on, however long a
	// step's tools take on a machine busy with a boot.
	deadline := start.Add(k.ServicesGrace)
	// Nested supervision trees (the gateways' s6-svscan) are brought down by this hook itself,
	// beside the steps below (nested_linux.go).
	svscan := readPidFile(l.svscanPidFile())
	if svscan == 0 {
		svscan = 1
	}
	nested := downNestedTrees(log, svscan, deadline)

	// The s6-rc services first, in reverse dependency order (s6rc_linux.go); then the rest.
	s6rcDown(l, log, k, deadline)

	names, err := listServiceDirs(l.Scandir)
	if err != nil {
		log.printf("stop: warning: list %s: %v", l.Scandir, err)
	}
	names = slices.DeleteFunc(names, func(n string) bool { return n == catchallService }) // logs to the end
	dirs := make([]string, len(names))
	for i, n := range names {
		dirs[i] = filepath.Join(l.Scandir, n)
	}
	down, stuck := servicesDown(log, dirs, deadline)
	var logs []string
	for _, d := range down {
		if st, err := os.Stat(filepath.Join(d, "log")); err == nil && st.IsDir() {
			logs = append(logs, filepath.Join(d, "log"))
		}
	}
	// Loggers last, once their producers are gone, so the last lines are written.
	servicesDown(log, logs, deadline)
	nested()
	if st2 > 0 && !waitGone(st2, deadline) {
		log.printf("stop: the CMD is still running after %d ms", k.ServicesGrace.Milliseconds())
	}
	if len(stuck) > 0 {
		log.printf("stop: %d of %d services still up after %d ms: %s", len(stuck), len(down), k.ServicesGrace.Milliseconds(), strings.Join(stuck, " "))
	} else {
		log.printf("stop: %d services down in %d ms", len(down), time.Since(start).Milliseconds())
	}

	// Stage 3: s6-svscan execs .s6-svscan/finish without waiting (-b), which then finishes the
	// job as PID 1.
	if out, err := exec.Command(l.tool("s6-svscanctl"), "-b", l.Scandir).CombinedOutput(); err != nil {
		log.printf("stop: s6-svscanctl -b: %v: %s; sending SIGABRT instead", err, bytes.TrimSpace(out))
		if err := signalSvscan(l, syscall.SIGABRT); err != nil {
			log.printf("stop: %v", err)
			return codeSystem
		}
	}
	return codeOK
}

// hookKnobs reads the knobs from the container environment (the hook and stage 3 inherit
// s6-svscan's minimal environment).
func hookKnobs(l layout, log *logger) knobs {
	environ := os.Environ()
	k, warns := parseKnobs(func(name string) (string, bool) {
		v, ok, err := contenv.Lookup(environ, l.ContEnv, name)
		return v, ok && err == nil
	})
	for _, w := range warns {
		log.printf("stop: warning: %s", w)
	}
	return k
}

// servicesDown sends "down" to every supervised service in dirs at once and waits, until
// deadline at most, for all of them to be really down (finish scripts done). It returns the
// services it brought down and, among them, those still up at the deadline. It starts no
// process: "down" is written into each supervisor's control FIFO as s6-svc -d writes it, and
// the wait reads their status files, so a machine busy with a boot (hundreds of gateways
// starting) cannot make it overrun the deadline waiting for a tool of its own to run.
func servicesDown(log *logger, dirs []string, deadline time.Time) (down, stuck []string) {
	for _, dir := range dirs {
		ok, err := controlDown(dir)
		switch {
		case err != nil:
			log.printf("stop: warning: %s: %v", dir, err)
		case ok:
			down = append(down, dir)
		}
		// not ok: no s6-supervise on it (not scanned yet): nothing to bring down
	}
	if len(down) == 0 {
		return nil, nil
	}
	// Not down yet: up, or our "down" not yet taken into account (still wanted up).
	pending := down
	for {
		var still []string
		for _, dir := range pending {
			if notDown(dir) {
				still = append(still, dir)
			}
		}
		pending = still
		if len(pending) == 0 {
			return down, nil
		}
		if !time.Now().Before(deadline) {
			for _, dir := range pending {
				stuck = append(stuck, filepath.Base(dir))
			}
			return down, stuck
		}
		time.Sleep(min(downPoll, time.Until(deadline)))
	}
}

// downPoll is how often servicesDown looks whether the services went down.
const downPoll = 10 * time.Millisecond

// controlDown sends "d" to the s6-supervise of the service in dir, as s6-svc -d does. It
// reports false when no supervisor listens on it.
func controlDown(dir string) (bool, error) {
	fd, err := unix.Open(filepath.Join(dir, "supervise", "control"), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENXIO) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("s6-supervise control: %w", err)
	}
	defer unix.Close(fd)
	if _, err := unix.Write(fd, []byte("d")); err != nil {
		return false, fmt.Errorf("s6-supervise control: %w", err)
	}
	return true, nil
}

// notDown reports whether the service in dir is up, still wanted up (s6-supervise has not
// processed the "down" command yet) or running its finish script, from its status file. Unreadable status counts as down:
// nothing to wait for.
func notDown(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, "supervise", "status"))
	if err != nil {
		return false
	}
	st, err := s6.ParseStatusFile(b)
	return err == nil && (st.Up || st.WantUp || st.Finishing)
}

// signalSvscan sends sig to the s6-svscan that /init became (pid 1, or the pid recorded at
// boot when /init is not PID 1), after checking that it is one.
func signalSvscan(l layout, sig syscall.Signal) error {
	pid := readPidFile(l.svscanPidFile())
	if pid == 0 {
		pid = 1
	}
	if comm := procComm(pid); comm != "s6-svscan" {
		return fmt.Errorf("no s6-svscan at pid %d (found %q): is this container running /init?", pid, comm)
	}
	if err := syscall.Kill(pid, sig); err != nil {
		return fmt.Errorf("signal s6-svscan (pid %d): %w", pid, err)
	}
	return nil
}

// halt is /run/s6/basedir/bin/halt: it asks for the same stop as docker stop, and returns at
// once (the stop runs in the hook that s6-svscan starts, not in the caller, so a service's
// finish script may call it). Write a code to /run/s6-linux-init-container-results/exitcode
// first to choose the container's exit code.
func halt(l layout, log *logger) int {
	if err := requestHalt(l); err != nil {
		log.printf("halt: %v", err)
		return 1
	}
	return codeOK
}
