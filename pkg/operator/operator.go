package operator

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/owner"
	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/s6"
	"github.com/s6gate/s6gate/pkg/safedir"
	"github.com/s6gate/s6gate/pkg/slot"
	"github.com/s6gate/s6gate/pkg/state"
)

// DefaultTimeout bounds how long a verb waits for a gateway to come up or go down.
const DefaultTimeout = 10 * time.Second

// Operator runs the verbs against one data root and scan directory.
type Operator struct {
	Settings config.Settings
	Owner    *owner.Owner // what root gives new files to; nil when not root
	Tools    s6.Tools
	Log      *slog.Logger
	Timeout  time.Duration
}

// New returns an Operator for s. As root it resolves the service user, which must exist.
func New(s config.Settings, log *slog.Logger) (*Operator, error) {
	own, err := owner.ForCaller(s.User)
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return &Operator{Settings: s, Owner: own, Tools: s6.Tools{Dir: s.CommandDir}, Log: log, Timeout: DefaultTimeout}, nil
}

// TimeoutError means a gateway did not reach the wanted state in time.
type TimeoutError struct {
	Profile string
	Wanted  string
	After   time.Duration
	Detail  string
}

func (e *TimeoutError) Error() string {
	msg := fmt.Sprintf("gateway '%s' did not become %s within %s", e.Profile, e.Wanted, e.After)
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// StartFailedError means s6 gave up on a gateway (its finish script said "do not restart").
type StartFailedError struct {
	Profile string
	Reason  string
}

func (e *StartFailedError) Error() string {
	return fmt.Sprintf("gateway '%s' failed to start and s6 will not retry it: %s", e.Profile, e.Reason)
}

// precheck validates a verb's profile argument, the data root and (if registered is set) the
// slot, in that order, before anything is written.
func (o *Operator) precheck(name string, registered bool) error {
	if err := profile.Validate(name); err != nil {
		return err
	}
	if err := o.Settings.CheckHome(); err != nil {
		return err
	}
	if registered {
		return slot.Check(o.Settings.ScanDir, name)
	}
	return nil
}

func (o *Operator) slotDir(name string) string { return slot.Path(o.Settings.ScanDir, name) }

// openHome opens the profile's home without following symlinks. A missing home is
// fs.ErrNotExist (the profile directory was deleted under a registered slot).
func (o *Operator) openHome(name string) (*safedir.Dir, error) {
	return safedir.Open(o.Settings.Home, profile.HomeRel(name))
}

// setIntent records desired_state. A missing home is logged and skipped: the s6 action still
// happens, there is just no profile left to remember it.
func (o *Operator) setIntent(name, desired string) error {
	home, err := o.openHome(name)
	if errors.Is(err, fs.ErrNotExist) {
		o.Log.Warn("profile home is gone; intent not recorded", "profile", name)
		return nil
	}
	if err != nil {
		return fmt.Errorf("record intent for '%s': %w", name, err)
	}
	defer home.Close()
	warn, err := state.Update(home, o.Owner, time.Now(), func(s *state.State) { s.DesiredState = desired })
	if warn != nil {
		o.Log.Warn("replaced an unusable state file", "profile", name, "err", warn)
	}
	if err != nil {
		return fmt.Errorf("record intent for '%s': %w", name, err)
	}
	return nil
}

// setDown makes the slot's ./down file agree with the intent, so that an s6-supervise that
// restarts for any reason keeps a stopped gateway down. It works through the locked slot
// descriptor: the slot belongs to the service user, and a root verb must not be steered
// elsewhere by a symlink swapped in for the slot, nor hang on a FIFO planted as ./down.
func (o *Operator) setDown(slotDir *os.File, down bool) error {
	dfd := int(slotDir.Fd())
	if !down {
		if err := unix.Unlinkat(dfd, "down", 0); err != nil && !errors.Is(err, unix.ENOENT) {
			return &os.PathError{Op: "remove", Path: slotDir.Name() + "/down", Err: err}
		}
		return nil
	}
	fd, err := unix.Openat(dfd, "down", unix.O_WRONLY|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return &os.PathError{Op: "create", Path: slotDir.Name() + "/down", Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s/down: not a regular file", slotDir.Name())
	}
	return o.Owner.Fchown(fd)
}

// lockSlot opens a profile's slot directory (refusing a symlink) and takes an flock on it.
// Holding it serialises the verbs acting on one profile, so that a start and a stop racing
// each other cannot leave the recorded intent and s6 disagreeing; it blocks until the other
// verb is done (each is bounded by its own time-out). Closing the file releases the lock.
func (o *Operator) lockSlot(name string) (*os.File, error) {
	fd, err := unix.Open(o.slotDir(name), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("lock slot of '%s': %w", name, &os.PathError{Op: "open", Path: o.slotDir(name), Err: err})
	}
	for {
		err = unix.Flock(fd, unix.LOCK_EX)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("lock slot of '%s': %w", name, err)
	}
	return os.NewFile(uintptr(fd), o.slotDir(name)), nil
}

// waitSupervised waits (bounded) for s6-svscan to have started s6-supervise on the slot.
func (o *Operator) waitSupervised(ctx context.Context, dir string, d time.Duration) bool {
	return poll(ctx, d, func() bool { ok, _ := s6.Supervised(dir); return ok })
}

// poll checks cond every 10 ms until it holds, ctx ends or d passes.
func poll(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
		}
	}
}

// stateOf reads a profile's recorded state, for messages; errors read as empty.
func (o *Operator) stateOf(name string) state.State {
	home, err := o.openHome(name)
	if err != nil {
		return state.State{}
	}
	defer home.Close()
	s, _ := state.Read(home)
	return s
}

// Result is the outcome of a verb for one profile.
type Result struct {
	Profile string
	PID     int
	Note    string
	Err     error
}

// forEach runs fn for every registered profile, a few at a time, and returns the results in
// profile order.
func (o *Operator) forEach(ctx context.Context, fn func(context.Context, string) Result) ([]Result, error) {
	if err := o.Settings.CheckHome(); err != nil {
		return nil, err
	}
	names, err := slot.List(o.Settings.ScanDir)
	if err != nil {
		return nil, err
	}
	out := make([]Result, len(names))
	sem := make(chan struct{}, 8)
	var wg sync.WaitGroup
	for i, n := range names {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i] = fn(ctx, n)
		}()
	}
	wg.Wait()
	return out, nil
}

// Joined returns the errors of results joined, or nil.
func Joined(results []Result) error {
	var errs []error
	for _, r := range results {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	return errors.Join(errs...)
}

// ParseEnv parses K=V arguments into a map, validating names (usage errors).
func ParseEnv(pairs []string) (map[string]string, error) {
	env := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return nil, exitcode.Usagef("--env %q: want NAME=VALUE", p)
		}
		if err := profile.ValidateEnvName(k); err != nil {
			return nil, err
		}
		env[k] = v
	}
	return env, nil
}
