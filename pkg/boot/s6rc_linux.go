package boot

// s6-rc source trees (/etc/s6-overlay/s6-rc.d): stage 2 brings the services up through
// package s6rc in s6-overlay's order — base (cont-init.d), user, legacy-services
// (services.d), user2 — and the stop hook brings them down in reverse before the rest of the
// teardown. Everything about s6-rc in pkg/boot is in this file; docs/s6-rc.md is the
// reference.

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/s6gate/s6gate/pkg/contenv"
	"github.com/s6gate/s6gate/pkg/s6rc"
)

// s6rcSystem is how package s6rc reaches s6 from /init: tools from /command (else Debian's
// directories), messages on /init's log, processes through run.
func s6rcSystem(l layout, log *logger, prefix string, run s6rc.Runner, verbosity int) *s6rc.System {
	return &s6rc.System{
		Run:       run,
		ToolDirs:  []string{l.Command, filepath.Dir(l.Svscan), "/usr/lib/execline/bin", "/bin"},
		Stdout:    os.Stdout,
		Stderr:    os.Stderr,
		Logf:      func(format string, args ...any) { log.printf(prefix+"s6-rc: "+format, args...) },
		Verbosity: verbosity,
	}
}

// s6rcVerbosity is S6_VERBOSITY (s6-overlay's default 2: every transition is logged) minus 0.
func s6rcVerbosity(lookup func(string) (string, bool)) int {
	if v, ok := lookup("S6_VERBOSITY"); ok {
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n >= 0 {
			return n
		}
	}
	return 2
}

// stage2Tree is the part of stage2Run that runs the tree.
type stage2Tree struct {
	contInitFailed bool
	servicesFailed bool
}

// bringUp runs what comes before the CMD: the s6-rc tree with cont-init.d and services.d in
// it. It returns true when stage 2 must not go on (a stop, or a failure that halts).
func (s *stage2Run) bringUp(k knobs) bool {
	lookup := func(name string) (string, bool) {
		v, ok, err := contenv.Lookup(os.Environ(), s.l.ContEnv, name)
		return v, ok && err == nil
	}
	sys := s6rcSystem(s.l, s.log, "stage2: ", s.runProc, s6rcVerbosity(lookup))
	db, warns, err := s6rc.Compile(s.l.S6rcSource)
	for _, w := range warns {
		s.log.printf("stage2: s6-rc: warning: %s", w)
	}
	if err != nil {
		if s.treeBroken(k, err) {
			return true
		}
		db, _, _ = s6rc.Compile("") // the builtins alone: cont-init.d, services.d
	}
	if legacy, err := listServiceDirs(s.l.ServicesD); err == nil {
		for _, name := range legacy {
			if sv, ok := db.Services[name]; ok && sv.Type == s6rc.Longrun {
				s.log.printf("stage2: s6-rc: warning: longrun %s (%s) and %s share a name: %s is the s6-rc longrun; %s is not supervised",
					name, sv.Source, filepath.Join(s.l.ServicesD, name), filepath.Join(s.l.Scandir, name), filepath.Join(s.l.ServicesD, name))
			}
		}
	}
	db.Env = []string{"PATH=" + pathOf(os.Environ())}
	if k.KeepEnv {
		db.Env = os.Environ()
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.stopc:
			cancel()
		case <-ctx.Done():
		}
	}()
	lv, err := s6rc.Init(ctx, s.l.S6rcLive, s.l.Scandir, db, sys)
	if err != nil {
		if s.stopping.Load() {
			return true
		}
		if s.treeBroken(k, err) {
			return true
		}
		db, _, _ = s6rc.Compile("")
		db.Env = []string{"PATH=" + pathOf(os.Environ())}
		if lv, err = s6rc.Init(ctx, s.l.S6rcLive, s.l.Scandir, db, sys); err != nil {
			s.log.printf("stage2: s6-rc: cannot set up %s: %v", s.l.S6rcLive, err)
			return s.treeBroken(k, err)
		}
	}
	var t stage2Tree
	lv.Hooks = map[string]s6rc.Hook{
		s6rc.LegacyContInit: {Up: func(context.Context) error {
			begin := time.Now()
			t.contInitFailed = s.contInit() // every script runs, as in s6-overlay
			s.log.printf("stage2: cont-init.d done in %d ms", time.Since(begin).Milliseconds())
			if t.contInitFailed && k.Stage2Fails >= stage2Stop {
				return errors.New("a cont-init.d script failed")
			}
			return nil
		}},
		s6rc.LegacyServices: {
			Up: func(context.Context) error {
				if !s.services(k) {
					t.servicesFailed = true
					if k.Stage2Fails >= stage2Stop {
						return errors.New("services.d services did not come up in time")
					}
				}
				return nil
			},
			Down: func(ctx context.Context) error {
				return s6rc.LegacyDown(ctx, sys, s.l.Scandir, s.l.LegacyServices, k.ServicesGrace)
			},
		},
	}
	unlock, err := lv.Lock(ctx, true)
	if err != nil {
		return s.stopping.Load()
	}
	defer unlock()
	top, _ := db.Resolve([]string{s6rc.Top})
	res := lv.Change(ctx, top, s6rc.ChangeOptions{Up: true, Timeout: k.WaitServicesTime})
	if s.stopping.Load() { // what the stop interrupted is not a stage-2 failure
		return true
	}
	if t.contInitFailed {
		if warn, stop := stage2Decision(k.Stage2Fails, true); stop {
			s.fail(1, "stage2: fatal: some scripts in %s exited nonzero and %s=%d: stopping the container with exit code 1", s.l.ContInit, envStage2Fails, k.Stage2Fails)
			return true
		} else if warn {
			s.log.printf("stage2: warning: some scripts in %s exited nonzero; continuing (%s=%d)", s.l.ContInit, envStage2Fails, k.Stage2Fails)
		}
	}
	if t.servicesFailed {
		code := 1
		if !s.deadline.IsZero() && !time.Now().Before(s.deadline) {
			code = 2 // s6-rc's "timed out"
		}
		if warn, stop := stage2Decision(k.Stage2Fails, true); stop {
			s.fail(code, "stage2: fatal: services failed to come up and %s=%d: stopping the container with exit code %d", envStage2Fails, k.Stage2Fails, code)
			return true
		} else if warn {
			s.log.printf("stage2: warning: some services in %s did not come up in time; continuing", s.l.ServicesD)
		}
	}
	if res.Code != s6rc.CodeOK && !t.contInitFailed && !t.servicesFailed {
		s.log.printf("stage2: s6-rc: some services did not come up (failed: %s; not started: %s)", orNone(res.Failed), orNone(res.Skipped))
		if warn, stop := stage2Decision(k.Stage2Fails, true); stop {
			s.fail(res.Code, "stage2: S6_BEHAVIOUR_IF_STAGE2_FAILS=%d: stopping the container with exit code %d", k.Stage2Fails, res.Code)
			return true
		} else if warn {
			s.log.printf("stage2: warning: continuing (S6_BEHAVIOUR_IF_STAGE2_FAILS=%d)", k.Stage2Fails)
		}
	}
	return s.stopping.Load()
}

// treeBroken reports a source tree that cannot be used and decides, by
// S6_BEHAVIOUR_IF_STAGE2_FAILS, whether the container stops (true) or goes on without it.
func (s *stage2Run) treeBroken(k knobs, err error) bool {
	s.log.printf("stage2: s6-rc: %s cannot be used: %v", s.l.S6rcSource, err)
	if _, stop := stage2Decision(k.Stage2Fails, true); stop {
		s.fail(1, "stage2: S6_BEHAVIOUR_IF_STAGE2_FAILS=%d: stopping the container with exit code 1", k.Stage2Fails)
		return true
	}
	s.log.printf("stage2: warning: continuing without the s6-rc services: cont-init.d, services.d and the CMD still run (S6_BEHAVIOUR_IF_STAGE2_FAILS=%d)", k.Stage2Fails)
	return false
}

// runProc runs a process for package s6rc through the reaper (stage 2 reaps with wait4(-1)).
func (s *stage2Run) runProc(ctx context.Context, p s6rc.Proc) (int, error) {
	devnull, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
	if err != nil {
		return -1, err
	}
	defer devnull.Close()
	out, errf := p.Stdout, p.Stderr
	if out == nil {
		out = devnull
	}
	if errf == nil {
		errf = devnull
	}
	ws, _, err := s.reap.run(ctx, procSpec{Path: p.Argv[0], Argv: p.Argv, Env: p.Env, Dir: p.Dir, Files: []*os.File{devnull, out, errf}})
	if err != nil {
		return -1, err
	}
	return statusCode(ws), nil
}

// s6rcDown is the stop hook's first step: every active s6-rc service down, in reverse
// dependency order, oneshots' down scripts included (s6-rc -Da change). It waits for stage 2
// to let go of the live state (a stop during the boot interrupts it).
func s6rcDown(l layout, log *logger, k knobs, deadline time.Time) {
	lookup := func(name string) (string, bool) {
		v, ok, err := contenv.Lookup(os.Environ(), l.ContEnv, name)
		return v, ok && err == nil
	}
	sys := s6rcSystem(l, log, "stop: ", s6rc.ExecRunner, s6rcVerbosity(lookup))
	lv, err := s6rc.Open(l.S6rcLive, l.Scandir, sys)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		log.printf("stop: s6-rc: warning: %v: the s6-rc services go down with the others", err)
		return
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	unlock, err := lv.Lock(ctx, true)
	if err != nil {
		log.printf("stop: s6-rc: warning: %v: the s6-rc services go down with the others", err)
		return
	}
	defer unlock()
	lv.DownGrace = time.Until(deadline)
	lv.Hooks = map[string]s6rc.Hook{
		s6rc.LegacyServices: {Down: func(ctx context.Context) error {
			return s6rc.LegacyDown(ctx, sys, l.Scandir, l.LegacyServices, time.Until(deadline))
		}},
	}
	active := lv.Active()
	if len(active) == 0 {
		return
	}
	start := time.Now()
	res := lv.Change(ctx, active, s6rc.ChangeOptions{Up: false, Force: true})
	if res.Code != s6rc.CodeOK {
		log.printf("stop: s6-rc: some services did not go down cleanly (failed: %s)", orNone(res.Failed))
	}
	log.printf("stop: s6-rc: %d services down in %d ms", len(active), time.Since(start).Milliseconds())
}

func pathOf(env []string) string {
	if p, ok := contenv.Getenv(env, "PATH"); ok {
		return p
	}
	return contenv.DefaultPath
}

func orNone(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return strings.Join(list, " ")
}
