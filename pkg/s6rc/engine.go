package s6rc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// Exit codes of the s6-rc command (s6-rc's own).
const (
	CodeOK      = 0
	CodeFailed  = 1 // some transitions failed
	CodeTimeout = 2
	CodeUnknown = 3 // unknown service name
	CodeBadDB   = 4 // no or invalid live state
	CodeUsage   = 100
	CodeSystem  = 111
)

// ChangeOptions are s6-rc change's options.
type ChangeOptions struct {
	Up      bool          // -u (else -d)
	Force   bool          // -D: bring essential services down too
	Prune   bool          // -p
	Timeout time.Duration // -t, 0 = none
}

// Result is the outcome of a change.
type Result struct {
	Code    int
	Failed  []string // transitions that failed
	Skipped []string // transitions not attempted (a dependency failed, or the time ran out)
}

// Change brings the atomic services sel (and what they need) up, or down (with what needs
// them), as s6-rc change does: every service as soon as what it waits for is done,
// independent ones in parallel; a failure skips what depends on it. The caller holds the
// lock (Lock).
func (lv *Live) Change(ctx context.Context, sel []string, opts ChangeOptions) Result {
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	var res Result
	if opts.Prune {
		var downs, ups map[string]bool
		if opts.Up {
			ups = lv.DB.Closure(sel, true)
			downs = map[string]bool{}
			for _, n := range lv.Active() {
				if !ups[n] {
					downs[n] = true
				}
			}
		} else {
			downs = lv.DB.Closure(sel, false)
			ups = map[string]bool{}
			for _, n := range lv.DB.Order {
				if !downs[n] {
					ups[n] = true
				}
			}
		}
		res = lv.run(ctx, downs, false, opts.Force)
		if res.Code == CodeOK {
			r := lv.run(ctx, ups, true, opts.Force)
			res = r
		}
		return res
	}
	return lv.run(ctx, lv.DB.Closure(sel, opts.Up), opts.Up, opts.Force)
}

// plan returns the services of set that need a transition, and for each the ones it must
// wait for.
func (lv *Live) plan(set map[string]bool, up, force bool) (todo map[string]bool, waits map[string][]string) {
	todo = map[string]bool{}
	for n := range set {
		if lv.isActive(n) != up {
			todo[n] = true
		}
	}
	rev := map[string][]string{}
	for _, s := range lv.DB.Services {
		for _, d := range s.Deps {
			rev[d] = append(rev[d], s.Name)
		}
	}
	if !up && !force {
		// Essential services stay up, and so does what they (or anything staying up) need.
		for n := range todo {
			if lv.DB.Services[n].Essential {
				delete(todo, n)
				lv.Sys.logf(2, "info: service %s is essential: not stopping it (use -D)", n)
			}
		}
		for changed := true; changed; {
			changed = false
			for n := range todo {
				for _, r := range rev[n] {
					if lv.isActive(r) && !todo[r] {
						delete(todo, n)
						changed = true
						break
					}
				}
			}
		}
	}
	waits = map[string][]string{}
	for n := range todo {
		next := lv.DB.Services[n].Deps
		if !up {
			next = rev[n]
		}
		for _, m := range next {
			if todo[m] {
				waits[n] = append(waits[n], m)
			}
		}
	}
	return todo, waits
}

func (lv *Live) run(ctx context.Context, set map[string]bool, up, force bool) Result {
	todo, waits := lv.plan(set, up, force)
	type done struct {
		name string
		err  error
	}
	results := make(chan done)
	state := map[string]string{} // "" pending, "running", "ok", "failed", "skipped"
	running := 0
	var res Result
	blocked := func(n string) (wait, dead bool) {
		for _, m := range waits[n] {
			switch state[m] {
			case "ok":
			case "failed", "skipped":
				return false, true
			default:
				wait = true
			}
		}
		return wait, false
	}
	for {
		progress := true
		for progress {
			progress = false
			for _, n := range lv.DB.Order {
				if !todo[n] || state[n] != "" {
					continue
				}
				wait, dead := blocked(n)
				switch {
				case dead:
					state[n] = "skipped"
					res.Skipped = append(res.Skipped, n)
					progress = true
				case wait:
				case ctx.Err() != nil:
					state[n] = "skipped"
					res.Skipped = append(res.Skipped, n)
					progress = true
				default:
					state[n] = "running"
					running++
					go func() { results <- done{n, lv.transition(ctx, n, up)} }()
				}
			}
		}
		if running == 0 {
			break
		}
		d := <-results
		running--
		if d.err != nil {
			state[d.name] = "failed"
			res.Failed = append(res.Failed, d.name)
			verb := "start"
			if !up {
				verb = "stop"
			}
			lv.Sys.logf(1, "warning: unable to %s service %s: %v", verb, d.name, d.err)
		} else {
			state[d.name] = "ok"
		}
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded) && (len(res.Failed) > 0 || len(res.Skipped) > 0):
		res.Code = CodeTimeout
		lv.Sys.logf(1, "warning: timed out")
	case len(res.Failed) > 0 || len(res.Skipped) > 0:
		res.Code = CodeFailed
	}
	return res
}

// transition brings one atomic service up or down and records it in the live state.
func (lv *Live) transition(ctx context.Context, name string, up bool) error {
	s := lv.DB.Services[name]
	verb, past := "starting", "started"
	if !up {
		verb, past = "stopping", "stopped"
	}
	lv.Sys.logf(2, "info: service %s: %s", name, verb)
	var err error
	switch {
	case s.Builtin:
		err = lv.builtin(ctx, s, up)
	case s.Type == Oneshot:
		err = lv.oneshot(ctx, s, up)
	default:
		err = lv.longrun(ctx, s, up)
	}
	if err != nil {
		return err
	}
	if err := lv.setActive(name, up); err != nil {
		return err
	}
	lv.Sys.logf(2, "info: service %s successfully %s", name, past)
	return nil
}

func (lv *Live) builtin(ctx context.Context, s *Service, up bool) error {
	h, ok := lv.Hooks[s.Name]
	f := h.Down
	if up {
		f = h.Up
	}
	switch {
	case ok && f != nil:
		return f(ctx)
	case up && s.Name == FixAttrs: // fix-attrs.d is not supported: nothing to do
		return nil
	case up:
		return fmt.Errorf("%s is brought up by /init at boot only", s.Name)
	}
	return nil
}

func (lv *Live) oneshot(ctx context.Context, s *Service, up bool) error {
	script, which, timeout := s.Up, "up", s.TimeoutUp
	if !up {
		script, which, timeout = s.Down, "down", s.TimeoutDown
	}
	if scriptEmpty(script) {
		return nil
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Duration(timeout)*time.Millisecond)
		defer cancel()
	}
	env := append(slices.Clip(lv.DB.Env), "RC_NAME="+s.Name)
	if lv.DB.Env == nil {
		env = append(os.Environ(), "RC_NAME="+s.Name)
	}
	code, err := lv.Sys.Run(ctx, Proc{
		Argv: []string{lv.Sys.execlineb(), "-P", lv.scriptFile(s.Name, which)},
		Env:  env, Dir: "/", Stdout: lv.Sys.Stdout, Stderr: lv.Sys.Stderr,
	})
	switch {
	case err != nil:
		return err
	case ctx.Err() != nil && timeout > 0 && errors.Is(ctx.Err(), context.DeadlineExceeded):
		return fmt.Errorf("%s timed out after %d ms (timeout-%s)", which, timeout, which)
	case ctx.Err() != nil:
		return fmt.Errorf("%s interrupted: %w", which, ctx.Err())
	case code != 0:
		return fmt.Errorf("%s exited %d", which, code)
	}
	return nil
}

func (lv *Live) longrun(ctx context.Context, s *Service, up bool) error {
	dir := lv.ServiceDir(s.Name)
	downFile := filepath.Join(dir, "down")
	timeout := s.TimeoutUp
	if !up {
		timeout = s.TimeoutDown
		if timeout == 0 && lv.DownGrace > 0 {
			timeout = max(1, int(lv.DownGrace.Milliseconds()))
		}
	}
	if up {
		if err := os.Remove(downFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		if isUp, _, ready, err := lv.Sys.svstat(ctx, dir); err == nil && isUp && (ready || !s.Notification) {
			return nil
		}
		wait := "-wu"
		if s.Notification {
			wait = "-wU"
		}
		args := []string{wait}
		if timeout > 0 {
			args = append(args, "-T", strconv.Itoa(timeout))
		}
		if err := lv.Sys.tool(ctx, "s6-svc", append(args, "-u", dir)...); err != nil {
			// Leave it in a known state: down.
			_ = os.WriteFile(downFile, nil, 0o644)
			_ = lv.Sys.tool(context.WithoutCancel(ctx), "s6-svc", "-d", dir)
			if ctx.Err() != nil {
				return fmt.Errorf("not up: %w", ctx.Err())
			}
			return fmt.Errorf("not up (%v)", err)
		}
		return nil
	}
	if err := os.WriteFile(downFile, nil, 0o644); err != nil {
		return err
	}
	if isUp, _, _, err := lv.Sys.svstat(ctx, dir); err == nil && !isUp {
		// Not running (never started, or between two restarts): no down event will come.
		return lv.Sys.tool(ctx, "s6-svc", "-d", dir)
	}
	args := []string{"-wD"}
	if timeout > 0 {
		args = append(args, "-T", strconv.Itoa(timeout))
	}
	if err := lv.Sys.tool(ctx, "s6-svc", append(args, "-d", dir)...); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("not down: %w", ctx.Err())
		}
		return fmt.Errorf("not down (%v)", err)
	}
	return nil
}
