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
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/s6gate/s6gate/pkg/contenv"
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

	// The s6-rc services first, in reverse dependency order (s6rc_linux.go); then the rest,
	// each with S6_SERVICES_GRACETIME.
	s6rcDown(l, log, k)
	deadline := time.Now().Add(k.ServicesGrace)

	names, err := listServiceDirs(l.Scandir)
	if err != nil {
		log.printf("stop: warning: list %s: %v", l.Scandir, err)
	}
	names = slices.DeleteFunc(names, func(n string) bool { return n == catchallService }) // logs to the end
	dirs := make([]string, len(names))
	for i, n := range names {
		dirs[i] = filepath.Join(l.Scandir, n)
	}
	down, stuck := servicesDown(l, log, dirs, deadline)
	var logs []string
	for _, d := range down {
		if st, err := os.Stat(filepath.Join(d, "log")); err == nil && st.IsDir() {
			logs = append(logs, filepath.Join(d, "log"))
		}
	}
	// Loggers last, once their producers are gone, so the last lines are written.
	servicesDown(l, log, logs, deadline)
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
// services it brought down and, among them, those still up at the deadline.
func servicesDown(l layout, log *logger, dirs []string, deadline time.Time) (down, stuck []string) {
	if len(dirs) == 0 {
		return nil, nil
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, dir := range dirs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out, err := exec.Command(l.tool("s6-svc"), "-d", dir).CombinedOutput()
			var ee *exec.ExitError
			switch {
			case err == nil:
				mu.Lock()
				down = append(down, dir)
				mu.Unlock()
			case errors.As(err, &ee) && ee.ExitCode() == 100:
				// no s6-supervise on it (not scanned yet): nothing to bring down
			default:
				log.printf("stop: warning: s6-svc -d %s: %v: %s", dir, err, bytes.TrimSpace(out))
			}
		}()
	}
	wg.Wait()
	if len(down) == 0 {
		return nil, nil
	}
	// s6-svwait -D is event-driven, but it trusts the status file first, and a service that
	// was spawned a moment ago may still be recorded as down there. So what it reports is
	// checked against s6-svstat (up, or our "down" not yet taken into account) and the
	// wait resumes for what is not really down, until the deadline.
	pending := down
	for {
		ms := max(1, time.Until(deadline).Milliseconds()) // s6-svwait -t0 would mean "forever"
		args := append([]string{"-D", "-t", strconv.FormatInt(ms, 10)}, pending...)
		cmd := exec.Command(l.tool("s6-svwait"), args...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && (!errors.As(err, &ee) || ee.ExitCode() != 99) {
			log.printf("stop: warning: s6-svwait: %v: %s", err, bytes.TrimSpace(stderr.Bytes()))
		}
		var still []string
		for _, dir := range pending {
			if notDown(l, dir) {
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
		if err == nil {
			time.Sleep(5 * time.Millisecond) // a stale "down": let s6-supervise catch up
		}
	}
}

// notDown reports whether the service in dir is up, or still wanted up (s6-supervise has not
// processed the "down" command yet). Unreadable status counts as down: nothing to wait for.
func notDown(l layout, dir string) bool {
	out, err := exec.Command(l.tool("s6-svstat"), "-o", "up,wantedup", dir).Output()
	if err != nil {
		return false
	}
	f := strings.Fields(string(out))
	return len(f) == 2 && (f[0] == "true" || f[1] == "true")
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
