package boot

import (
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/aside"
	"github.com/s6gate/s6gate/pkg/contenv"
)

// Main runs /init. Which job it does depends on the name it was started under (argv[0]):
// the container's entrypoint boots; the symlinks that boot creates to the same binary run
// stage 2, the stop hook, stage 3 and halt. It returns the process's exit code.
func Main(argv []string) int {
	l := defaultLayout()
	log := newLogger(os.Stderr)
	log.verbosity = verbosityOf(contenvLookup(l)) // boot() reads its own environment instead
	name := ""
	if len(argv) > 0 {
		name = filepath.Base(argv[0])
		argv = argv[1:]
	}
	switch name {
	case stage2Name:
		return stage2(l, log, argv)
	case finishName:
		return finish(l, log, false)
	case crashName:
		return finish(l, log, true)
	case haltName:
		return halt(l, log)
	case removeOldName:
		return removeOldJob(l, log)
	}
	for _, sig := range stopSignals() {
		if name == sig {
			return signalHook(l, log, sig)
		}
	}
	return boot(l, log, argv)
}

// boot is stage 1: it prepares /run, forks stage 2 and execs s6-svscan. It returns only when
// the container cannot be started.
func boot(l layout, log *logger, cmd []string) int {
	start := time.Now()
	pid := os.Getpid()
	if code, ok := checkPID(l, log, pid); !ok {
		return code
	}
	reap := newReaper() // orphans are reaped while this Go program is the init, too
	// A docker stop during these milliseconds must not kill the init (the Go runtime would):
	// it is remembered, and stage 2 halts the container as soon as s6-svscan is up.
	sigc := make(chan os.Signal, 8)
	signal.Notify(sigc, initSignals()...)

	environ := withPath(os.Environ(), fixPath(os.Getenv("PATH")))
	lookup := func(name string) (string, bool) { return contenv.Getenv(environ, name) }
	log.verbosity = verbosityOf(lookup)
	k, warns := parseKnobs(lookup)
	for _, w := range warns {
		log.printf("boot: warning: %s", w)
	}
	for _, line := range unsupportedKnobs(lookup) { // one line each: nothing silently ignored
		log.printf("boot: warning: %s", line)
	}
	cred := currentCreds()
	rc := checkRun(l.Run, cred, k.WorldWritableRun)
	if rc.Fatal != "" {
		log.printf("fatal: %s", rc.Fatal)
		return codeSetup
	}
	if rc.Note != "" {
		log.printf("boot: %s", rc.Note)
	}
	if cred.UID == 0 {
		if note := claimRun(l.Run); note != "" {
			log.printf("boot: %s", note)
		}
	}
	if k.ReadOnlyRoot {
		log.printf("boot: %s is set: nothing is written outside %s", envReadOnlyRoot, l.Run)
	}
	self, err := os.Executable()
	if err != nil {
		log.printf("fatal: cannot find my own executable: %v", err)
		return codeSystem
	}
	if err := prepareRun(l, log, self, pid, k.ReadOnlyRoot); err != nil {
		log.printf("fatal: prepare %s: %v", l.Run, err)
		return codeSetup
	}
	svscanEnv := environ
	if k.KeepEnv {
		log.printf("boot: S6_KEEP_ENV is set: the supervision tree keeps the full environment")
	} else {
		n, err := contenv.Dump(l.ContEnv, environ)
		if err != nil {
			log.printf("fatal: save the container environment: %v", err)
			return codeSetup
		}
		log.printf("boot: container environment saved to %s (%d variables)", l.ContEnv, n)
		path, _ := contenv.Getenv(environ, "PATH")
		svscanEnv = []string{"PATH=" + path}
	}
	if !isExecutable(l.Svscan) {
		log.printf("fatal: cannot run %s: missing or not executable (the image needs Debian's s6 package)", l.Svscan)
		return codeSystem
	}

	// s6-svscan writes a newline on the pipe once it accepts commands (-d); stage 2 waits for it
	// before it runs anything, so cont-init.d scripts and rescans always find a live scanner.
	ca := startCatchall(l, log, lookup, cred.UID) // S6_LOGGING
	st2, notifyFD, err := startStage2(reap, self, environ, cmd, ca)
	if err != nil {
		log.printf("fatal: start stage 2: %v", err)
		return codeSystem
	}
	// The supervision tree must not read the console: s6-svscan gets /dev/null as stdin (the
	// CMD, started by stage 2, keeps the real one).
	if null, err := unix.Open(os.DevNull, unix.O_RDONLY|unix.O_CLOEXEC, 0); err == nil {
		_ = unix.Dup3(null, 0, 0)
		_ = unix.Close(null)
	}
	argv := []string{"s6-svscan", "-d" + strconv.Itoa(notifyFD), l.Scandir}
	if ca != nil {
		if x, err := ca.redirect(); err != nil {
			log.printf("boot: warning: catch-all logger: %v", err)
		} else {
			argv = slices.Insert(argv, 1, x)
		}
	}
	log.printf("boot: /run ready in %d ms; stage 2 is pid %d; exec %s -d%d %s", time.Since(start).Milliseconds(), st2, l.Svscan, notifyFD, l.Scandir)
	reap.stop()
	reap.reapAll()
	if stopRequested(sigc) {
		log.printf("boot: stop signal received during boot: the container stops once s6-svscan is up")
		_ = os.WriteFile(l.bootStopFile(), nil, 0o644)
	}
	err = unix.Exec(l.Svscan, argv, svscanEnv)
	log.printf("fatal: exec %s: %v", l.Svscan, err)
	_ = unix.Kill(st2, syscall.SIGKILL)
	return codeSystem
}

// checkPID decides whether /init may run here. PID 1 may. Otherwise only as the direct child
// of the container's init (parent pid 1, or 0 when the parent is outside the PID namespace),
// as a child sub-reaper, and only if no /init already runs in this container.
func checkPID(l layout, log *logger, pid int) (code int, ok bool) {
	if pid == 1 {
		return 0, true
	}
	// docker exec also starts processes whose parent is outside the container (ppid 0):
	// an /init already running must never have its /run wiped by a second one.
	if other := runningSvscan(l, pid); other != 0 {
		log.printf("fatal: /init is already running in this container (s6-svscan is pid %d); to stop it use %s", other, l.haltPath())
		return codeSetup, false
	}
	ppid := os.Getppid()
	if ppid > 1 {
		log.printf("fatal: not PID 1 (pid %d, parent pid %d %q): /init must be the container's entrypoint, or the direct child of its init (docker run --init)", pid, ppid, procComm(ppid))
		return codeSetup, false
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		log.printf("fatal: not PID 1 and cannot become a child sub-reaper: %v", err)
		return codeSystem, false
	}
	log.printf("boot: not PID 1 (pid %d under %q): running as a child sub-reaper; s6-svscan will be pid %d and reap orphans, the init above forwards docker stop's SIGTERM", pid, procComm(ppid), pid)
	return 0, true
}

// startStage2 starts this binary as the stage-2 child, with the read end of a new pipe as its
// fd 3, and returns its pid and the write end, left open across exec for s6-svscan -d.
// With a catch-all logger (ca) its stdout and stderr are the logger's FIFO, and fd 4 the
// container's stderr.
func startStage2(reap *reaper, self string, environ, cmd []string, ca *catchall) (pid, notifyFD int, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return 0, 0, err
	}
	cwd, err := os.Getwd()
	if err != nil {
		cwd = "/"
	}
	ready := os.NewFile(uintptr(p[0]), "s6-svscan-ready")
	files := []*os.File{os.Stdin, os.Stdout, os.Stderr, ready}
	if ca != nil {
		files = []*os.File{os.Stdin, ca.FIFO, ca.FIFO, ready, ca.Console}
	}
	pid, _, err = reap.spawn(procSpec{
		Path:  self,
		Argv:  append([]string{stage2Name}, cmd...),
		Env:   environ,
		Dir:   cwd,
		Files: files,
	})
	ready.Close()
	if err != nil {
		unix.Close(p[1])
		return 0, 0, err
	}
	if _, err := unix.FcntlInt(uintptr(p[1]), unix.F_SETFD, 0); err != nil {
		_ = unix.Kill(pid, unix.SIGKILL)
		return 0, 0, err
	}
	return pid, p[1], nil
}

// runningSvscan returns the pid of an s6-svscan that an earlier /init became (PID 1, or the
// one recorded in /run/s6/svscan.pid), or 0.
func runningSvscan(l layout, self int) int {
	for _, pid := range []int{1, readPidFile(l.svscanPidFile())} {
		if pid > 0 && pid != self && procComm(pid) == "s6-svscan" {
			return pid
		}
	}
	return 0
}

// stopRequested drains sigc and reports whether a stop signal was among what it held.
func stopRequested(sigc chan os.Signal) bool {
	stop := false
	for {
		select {
		case sig := <-sigc:
			switch sig {
			case syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPWR:
				stop = true
			}
		default:
			return stop
		}
	}
}

// prepareRun gives /run the layout s6-overlay users expect, from scratch: a container restart
// keeps the writable layer, so whatever an earlier boot left is set aside first (package
// aside: one rename per tree, removed later).
//
// Outside /run it only touches /var/run and /command, and only when they lack something; a
// failure there is a warning. With readOnlyRoot (S6_READ_ONLY_ROOT) it does not even try.
func prepareRun(l layout, log *logger, self string, pid int, readOnlyRoot bool) error {
	if readOnlyRoot {
		if !isVarRunLink(l.VarRun, l.Run) {
			log.printf("boot: warning: %s is not a symlink to %s; left alone (%s is set)", l.VarRun, l.Run, envReadOnlyRoot)
		}
	} else if changed, err := ensureVarRun(l.VarRun, l.Run); err != nil {
		log.printf("boot: warning: cannot make %s a symlink to %s: %v", l.VarRun, l.Run, err)
	} else if changed {
		log.printf("boot: %s was not a symlink to %s: fixed", l.VarRun, l.Run)
	}
	// What the last boot left is set aside in one rename each, whatever it holds (stage 2 has
	// it removed in the background once the services are up: removeOld), so neither this
	// boot's time nor its success depends on it.
	for _, dir := range l.asideDirs() {
		if _, err := aside.SetAside(dir); err != nil {
			return err
		}
	}
	// The scan directory may be a mount point (a tmpfs, a volume): SetAside left it where it
	// is, with only a dot entry that s6-svscan ignores.
	if err := os.MkdirAll(l.Scandir, 0o755); err != nil {
		return err
	}
	if err := os.Chmod(l.Scandir, 0o755); err != nil {
		return err
	}
	for _, dir := range []string{l.S6, filepath.Join(l.Basedir, "bin"), l.Results, l.controlDir()} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	if err := symlinkReplace(self, l.haltPath()); err != nil {
		return err
	}
	for _, name := range append([]string{finishName, crashName}, stopSignals()...) {
		if err := symlinkReplace(self, filepath.Join(l.controlDir(), name)); err != nil {
			return err
		}
	}
	if err := writePidFile(l.svscanPidFile(), pid); err != nil {
		return err
	}
	if readOnlyRoot {
		if n, err := linkTools(l, true); err == nil && n > 0 {
			log.printf("boot: warning: %d tool links missing in %s; left alone (%s is set; the s6 tools stay reachable in /usr/bin)", n, l.Command, envReadOnlyRoot)
		}
	} else if n, err := linkTools(l, false); err != nil {
		log.printf("boot: warning: cannot complete %s: %v (s6 tools stay reachable in /usr/bin)", l.Command, err)
	} else if n > 0 {
		log.printf("boot: %d tool links created in %s", n, l.Command)
	}
	return nil
}
