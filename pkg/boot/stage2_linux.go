package boot

import (
	"bufio"
	"context"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/s6gate/s6gate/pkg/contenv"
)

// stage2 runs, as a child of s6-svscan, what s6-overlay calls stage 2: /etc/cont-init.d, then
// /etc/services.d, then the CMD; when the CMD exits its status becomes the container's and the
// container is halted. A stop (SIGTERM from the stop hook) interrupts it: the running script
// or CMD gets the SIGTERM, and nothing after it starts.
func stage2(l layout, log *logger, cmd []string) int {
	s := &stage2Run{l: l, log: log, reap: newReaper(), stopc: make(chan struct{})}
	defer s.reap.stop()
	if err := writePidFile(l.stage2PidFile(), os.Getpid()); err != nil {
		log.printf("stage2: warning: %v (a stop will not reach the CMD directly)", err)
	}
	defer os.Remove(l.stage2PidFile())
	s.handleSignals()

	if !waitReady(os.NewFile(3, "s6-svscan-ready")) {
		log.printf("stage2: fatal: s6-svscan did not become ready")
		return codeSystem
	}
	if _, err := os.Stat(l.bootStopFile()); err == nil {
		log.printf("stage2: a stop was requested during boot: stopping the container")
		s.halt()
		return codeOK
	}
	k := s.knobs()
	mk := s.moreKnobs()

	if s.stopping.Load() {
		return codeOK
	}
	// S6_STAGE2_HOOK, before anything else of stage 2 (and outside its time limit).
	if len(mk.Stage2Hook) > 0 {
		if code := s.hook(mk.Stage2Hook); code != 0 {
			if _, stop := stage2Decision(k.Stage2Fails, true); stop {
				s.fail(code, "stage2: fatal: hook %q exited %d and %s=%d: stopping the container with exit code %d", mk.Stage2Hook, code, envStage2Fails, k.Stage2Fails, code)
				return codeOK
			}
			log.printf("stage2: warning: hook %q exited %d; continuing", mk.Stage2Hook, code)
		}
	}
	if s.stopping.Load() {
		return codeOK
	}
	// S6_CMD_WAIT_FOR_SERVICES_MAXTIME covers fix-attrs.d, cont-init.d and the services, as
	// s6-overlay's `s6-rc -t` does.
	begin := time.Now()
	if k.WaitServicesTime > 0 {
		s.deadline = begin.Add(k.WaitServicesTime)
		t := time.AfterFunc(k.WaitServicesTime, func() { s.deadlinePassed(k) })
		defer t.Stop()
	}
	if fixAttrs(l, log, mk.FixAttrsHidden) {
		if warn, stop := stage2Decision(k.Stage2Fails, true); stop {
			s.fail(1, "stage2: fatal: some files of %s failed to apply and %s=%d: stopping the container with exit code 1", l.fixAttrsDir(), envStage2Fails, k.Stage2Fails)
			return codeOK
		} else if warn {
			log.printf("stage2: warning: some files of %s failed to apply; continuing (%s=%d)", l.fixAttrsDir(), envStage2Fails, k.Stage2Fails)
		}
	}
	if s.stopping.Load() {
		return codeOK
	}
	// cont-init.d, the s6-rc tree's services and services.d, in s6-overlay's order, with the
	// decisions S6_BEHAVIOUR_IF_STAGE2_FAILS asks for (s6rc_linux.go).
	if s.bringUp(k) {
		return codeOK
	}
	s.bootDone()
	s.removeOld()
	if s.stopping.Load() {
		return codeOK
	}
	if len(cmd) == 0 {
		log.printf("stage2: no CMD: the container runs until it is stopped")
		return codeOK
	}
	code := s.runCmd(slices.Concat(k.CmdArg0, cmd), mk.ReceiveSignals)
	s.setExitcode(code)
	if s.stopping.Load() {
		log.printf("stage2: CMD exited %d during the stop", code)
		return codeOK
	}
	log.printf("stage2: CMD exited %d: stopping the container", code)
	s.halt()
	return codeOK
}

type stage2Run struct {
	l        layout
	log      *logger
	reap     *reaper
	stopping atomic.Bool
	stopc    chan struct{} // closed at the stop (ends the s6-rc change)
	stopOnce sync.Once
	current  atomic.Int64 // pid of the script or CMD running now, 0 if none

	deadline time.Time  // end of S6_CMD_WAIT_FOR_SERVICES_MAXTIME, zero if none
	phaseMu  sync.Mutex // guards done and failed
	done     bool       // fix-attrs, cont-init.d and services are through
	failed   bool       // a stage-2 failure already stopped the container
}

// handleSignals: SIGTERM (sent by the stop hook) is forwarded to the current child and stops
// the sequence. SIGINT, SIGQUIT and SIGHUP reach us only from a terminal (docker run -it),
// where the CMD gets them itself: stage 2 must survive them to report the CMD's status.
func (s *stage2Run) handleSignals() {
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP)
	go func() {
		for sig := range sigc {
			if sig != syscall.SIGTERM {
				continue
			}
			s.stopping.Store(true)
			s.stopOnce.Do(func() { close(s.stopc) })
			if pid := int(s.current.Load()); pid > 0 {
				_ = syscall.Kill(pid, syscall.SIGTERM)
				_ = syscall.Kill(pid, syscall.SIGCONT)
			}
		}
	}()
}

// runTracked runs spec as the current child (the one a stop's SIGTERM is forwarded to).
// started, if not nil, is called with the child's pid before the wait.
func (s *stage2Run) runTracked(spec procSpec, started func(pid int)) (syscall.WaitStatus, error) {
	pid, ch, err := s.reap.spawn(spec)
	if err != nil {
		return 0, err
	}
	s.current.Store(int64(pid))
	if started != nil {
		started(pid)
	}
	if s.stopping.Load() { // the stop came between spawn and Store
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	ws := <-ch
	s.current.Store(0)
	return ws, nil
}

func (s *stage2Run) knobs() knobs {
	environ := os.Environ()
	k, warns := parseKnobs(func(name string) (string, bool) {
		v, ok, err := contenv.Lookup(environ, s.l.ContEnv, name)
		return v, ok && err == nil
	})
	for _, w := range warns {
		s.log.printf("stage2: warning: %s", w)
	}
	return k
}

func (s *stage2Run) env() []string { return scriptEnv(s.l, s.log) }

// scriptEnv is the environment of cont-init.d and cont-finish.d scripts and of the CMD: the
// container environment as with-contenv would restore it now (so variables that a script adds
// to /run/s6/container_environment reach the scripts after it and the CMD).
func scriptEnv(l layout, log *logger) []string {
	env, _, err := contenv.Restore(os.Environ(), l.ContEnv)
	if err != nil {
		log.printf("warning: read %s: %v; using the inherited environment", l.ContEnv, err)
		return os.Environ()
	}
	return env
}

// contInit runs /etc/cont-init.d/* in lexical order, all of them, as s6-overlay does, and
// reports whether one failed (exited nonzero or could not be run).
func (s *stage2Run) contInit() (failed bool) {
	scripts, skipped, err := listScripts(s.l.ContInit)
	if err != nil {
		s.log.printf("cont-init: cannot list %s: %v", s.l.ContInit, err)
		return true
	}
	for _, name := range skipped {
		s.log.printf("cont-init: warning: %s is not executable: skipped (chmod +x it)", filepath.Join(s.l.ContInit, name))
	}
	if len(scripts) == 0 {
		return false
	}
	s.log.printf("stage2: running %d scripts from %s", len(scripts), s.l.ContInit)
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		devnull = os.Stdin
	} else {
		defer devnull.Close()
	}
	for _, name := range scripts {
		if s.stopping.Load() {
			break
		}
		path := filepath.Join(s.l.ContInit, name)
		start := time.Now()
		code := 0
		ws, err := s.runTracked(procSpec{Argv: []string{path}, Env: s.env(), Dir: "/", Files: []*os.File{devnull, os.Stdout, os.Stderr}}, nil)
		if err != nil {
			code = contenv.ExecCode(err)
			s.log.printf("cont-init: %s: %v (exit %d)", name, err, code)
		} else {
			code = statusCode(ws)
			s.log.printf("cont-init: %s exited %d (%d ms)", name, code, time.Since(start).Milliseconds())
		}
		failed = failed || code != 0
	}
	return failed
}

// services copies /etc/services.d/* to /run/s6/legacy-services, links them into the scan
// directory and triggers a scan. It returns false only when S6_CMD_WAIT_FOR_SERVICES is set
// and the services did not come up in time.
func (s *stage2Run) services(k knobs) bool {
	names, err := listServiceDirs(s.l.ServicesD)
	if err != nil {
		s.log.printf("services: cannot list %s: %v", s.l.ServicesD, err)
		return true
	}
	if len(names) == 0 {
		return true
	}
	err = os.RemoveAll(s.l.LegacyServices)
	if err == nil {
		err = os.MkdirAll(s.l.LegacyServices, 0o755)
	}
	if err != nil {
		s.log.printf("services: cannot prepare %s: %v: %s not supervised", s.l.LegacyServices, err, s.l.ServicesD)
		return true
	}
	var linked []string
	for _, name := range names {
		src, dst := filepath.Join(s.l.ServicesD, name), filepath.Join(s.l.LegacyServices, name)
		if err := copyTree(src, dst); err != nil {
			s.log.printf("services: warning: copy %s: %v: not supervised", src, err)
			continue
		}
		if !isExecutable(filepath.Join(dst, "run")) {
			s.log.printf("services: warning: %s has no executable run file: s6 will retry it every second", src)
		}
		link := filepath.Join(s.l.Scandir, name)
		if _, err := os.Lstat(link); err == nil {
			s.log.printf("services: warning: %s already exists: %s not linked", link, name)
			continue
		}
		if err := os.Symlink(dst, link); err != nil {
			s.log.printf("services: warning: link %s: %v", link, err)
			continue
		}
		linked = append(linked, name)
	}
	if len(linked) == 0 {
		return true
	}
	if err := s.tool("s6-svscanctl", "-a", s.l.Scandir); err != nil {
		s.log.printf("services: warning: rescan: %v", err)
	}
	s.log.printf("stage2: supervising %d services from %s: %s", len(linked), s.l.ServicesD, strings.Join(linked, " "))
	if !k.WaitServices {
		return true
	}
	limit := time.Duration(0)
	if !s.deadline.IsZero() {
		if limit = time.Until(s.deadline); limit <= 0 {
			return false
		}
	}
	return s.waitServicesUp(linked, limit)
}

// waitServicesUp waits until every linked service is up (ready, for those with a
// notification-fd), within limit (0: no limit).
func (s *stage2Run) waitServicesUp(names []string, limit time.Duration) bool {
	var deadline time.Time
	if limit > 0 {
		deadline = time.Now().Add(limit)
	}
	var plain, notify []string
	for _, name := range names {
		dir := filepath.Join(s.l.Scandir, name)
		// s6-supervise starts asynchronously after the rescan; s6-svwait needs it running and
		// its status file written (a moment after it takes its lock).
		for s.tool("s6-svok", dir) != nil || !statusWritten(dir) {
			if s.stopping.Load() || (!deadline.IsZero() && time.Now().After(deadline)) {
				s.log.printf("services: %s is not supervised in time", name)
				return false
			}
			time.Sleep(10 * time.Millisecond)
		}
		if _, err := os.Stat(filepath.Join(dir, "notification-fd")); err == nil {
			notify = append(notify, dir)
		} else {
			plain = append(plain, dir)
		}
	}
	ok := true
	for _, group := range []struct {
		flag string
		dirs []string
	}{{"-u", plain}, {"-U", notify}} {
		if len(group.dirs) == 0 {
			continue
		}
		ms := int64(0)
		if !deadline.IsZero() {
			ms = max(1, time.Until(deadline).Milliseconds())
		}
		args := append([]string{group.flag, "-t", strconv.FormatInt(ms, 10)}, group.dirs...)
		if err := s.tool("s6-svwait", args...); err != nil {
			s.log.printf("services: not all up in time: %v", err)
			ok = false
		}
	}
	return ok
}

// statusWritten reports whether s6-supervise has written the service's status file.
func statusWritten(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "supervise", "status"))
	return err == nil
}

// runCmd runs the CMD in the container environment and the image's working directory, and
// returns its exit code: its status, 128+signal, or 126/127 when it cannot be executed.
// With a terminal on stdin the CMD gets its own process group in the foreground, so ^C
// reaches it (and not the supervision tree), as with tini.
// With receiveSignals (S6_CMD_RECEIVE_SIGNALS) its pid is recorded for the signal hooks.
func (s *stage2Run) runCmd(argv []string, receiveSignals bool) int {
	env := s.env()
	path, ok := contenv.Getenv(env, "PATH")
	if !ok {
		path = contenv.DefaultPath
	}
	prog, err := contenv.LookPath(argv[0], path)
	if err != nil {
		code := contenv.ExecCode(err)
		s.log.printf("stage2: cannot run CMD: %v (exit %d)", err, code)
		return code
	}
	cwd, err := os.Getwd()
	if err != nil {
		cwd = "/"
	}
	sys := &syscall.SysProcAttr{}
	if inForeground(0) {
		sys.Setpgid, sys.Foreground, sys.Ctty = true, true, 0
	}
	s.log.printf("stage2: running CMD %q", argv)
	var started func(int)
	if receiveSignals {
		started = func(pid int) {
			if err := writePidFile(s.l.cmdPidFile(), pid); err != nil {
				s.log.printf("stage2: warning: %v: signals will stop the container instead of reaching the CMD", err)
			}
		}
	}
	ws, err := s.runTracked(procSpec{Path: prog, Argv: argv, Env: env, Dir: cwd, Files: cmdFiles(s.l, env), Sys: sys}, started)
	if receiveSignals {
		_ = os.Remove(s.l.cmdPidFile())
	}
	if err != nil {
		code := contenv.ExecCode(err)
		s.log.printf("stage2: cannot run CMD: %v (exit %d)", err, code)
		return code
	}
	return statusCode(ws)
}

func (s *stage2Run) setExitcode(code int) {
	if err := writeExitcode(s.l.exitcodeFile(), code); err != nil {
		s.log.printf("stage2: warning: %v", err)
	}
}

func (s *stage2Run) halt() {
	if err := requestHalt(s.l); err != nil {
		s.log.printf("stage2: cannot stop the container: %v", err)
	}
}

// tool runs an s6 program to completion (through the reaper: this process reaps with
// wait4(-1), so os/exec's Wait must not be used here).
func (s *stage2Run) tool(name string, args ...string) error {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer devnull.Close()
	ws, _, err := s.reap.run(context.Background(), procSpec{
		Path: s.l.tool(name), Argv: append([]string{name}, args...), Env: os.Environ(),
		Files: []*os.File{devnull, devnull, os.Stderr},
	})
	if err != nil {
		return err
	}
	if code := statusCode(ws); code != 0 {
		return &toolError{Name: name, Code: code}
	}
	return nil
}

type toolError struct {
	Name string
	Code int
}

func (e *toolError) Error() string { return e.Name + " exited " + strconv.Itoa(e.Code) }

// waitReady blocks until s6-svscan writes its readiness newline on f (or closes it).
func waitReady(f *os.File) bool {
	if f == nil {
		return false
	}
	defer f.Close()
	_, err := bufio.NewReader(f).ReadString('\n')
	return err == nil
}
