package operator

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/s6gate/s6gate/pkg/aside"
	"github.com/s6gate/s6gate/pkg/isolate"
	"github.com/s6gate/s6gate/pkg/pidlock"
	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/profileuid"
	"github.com/s6gate/s6gate/pkg/s6"
	"github.com/s6gate/s6gate/pkg/safedir"
)

// RunningError refuses a purge of a gateway that runs: its data is in use.
type RunningError struct {
	Profile string
	What    string // what runs: "the gateway (pid 123)", "2 processes of its uid 20001"
}

func (e *RunningError) Error() string {
	return fmt.Sprintf("gateway '%s' is running (%s); stop it first (gateway stop -p %s), then purge it", e.Profile, e.What, e.Profile)
}

// checkNotRunning refuses (a *RunningError) while anything of the profile runs: its slot's
// service is up or wanted up, a gateway holds its profile lock, or a process of its own uid
// is alive. Purge deletes for good; it never stops a gateway on the way.
func (o *Operator) checkNotRunning(ctx context.Context, name string, registered bool) error {
	if registered {
		if st, err := o.Tools.ReadStatus(ctx, o.slotDir(name)); err == nil && (st.Up || st.WantUp) {
			what := "wanted up"
			if st.Up {
				what = fmt.Sprintf("the gateway, pid %d", st.PID)
			}
			return &RunningError{Profile: name, What: what}
		} else if err != nil && !errors.Is(err, s6.ErrNotSupervised) && !errors.Is(err, s6.ErrNoStatus) {
			return fmt.Errorf("cannot tell whether gateway '%s' runs: %w", name, err)
		}
	}
	if home, err := o.openHome(name); err == nil {
		pid := pidlock.Holder(home)
		home.Close()
		if pid > 0 {
			return &RunningError{Profile: name, What: fmt.Sprintf("a gateway holds its profile lock, pid %d", pid)}
		}
	}
	uid, err := profileuid.Lookup(o.Settings, name)
	if err != nil {
		return fmt.Errorf("the profile's own uid: %w", err)
	}
	if uid > 0 {
		ps, _ := isolate.Processes(uid)
		live := 0
		for _, p := range ps {
			if p.State != 'Z' {
				live++
			}
		}
		if live > 0 {
			return &RunningError{Profile: name, What: fmt.Sprintf("%d processes of its uid %d", live, uid)}
		}
	}
	return nil
}

// purge deletes an unregistered profile's data for good: its home (profiles/NAME, with
// profile.json, the state and the command's own directory), its log directory, and its uid
// (retired, never handed out again: profileuid.Claims.Retire). Each directory first leaves
// its listing in one rename, to a dot name (profile.PurgedPrefix), so that it is gone at once
// and a kill half-way leaves nothing that looks like a profile; then it is removed through
// descriptors, never following a symlink the profile's command planted. What the service user
// may not remove — what the command, as its own uid, made in directories of its own — stays,
// sealed (mode 0700), until root removes it after the next boot (gw-reconcile --remove-old).
// Running it again finishes what a killed one began.
func (o *Operator) purge(name string) (note string, uid int, err error) {
	var left []string
	for _, d := range []struct{ parent, what string }{
		{profile.ProfilesDir, "home"},
		{"logs/gateways", "logs"},
	} {
		n, err := o.purgeDir(d.parent, name)
		if err != nil {
			return "", 0, fmt.Errorf("purge the %s of '%s': %w", d.what, name, err)
		}
		if n != "" {
			left = append(left, n)
		}
	}
	uid, err = profileuid.Retire(o.Settings, name)
	if err != nil {
		return "", 0, fmt.Errorf("retire the uid of '%s': %w", name, err)
	}
	note = "unregistered and purged: its home and logs are deleted"
	if uid > 0 {
		note += fmt.Sprintf(", its uid %d retired", uid)
	}
	if len(left) > 0 {
		note += "; what its command made that the service user may not remove (" + strings.Join(left, ", ") + ") is removed after the next container restart"
	}
	return note, uid, nil
}

// openHomeStat tells whether the profile's home exists (its Lstat, without following it).
func (o *Operator) openHomeStat(name string) (bool, error) {
	home, err := o.openHome(name)
	if err != nil {
		return false, err
	}
	home.Close()
	return true, nil
}

// purgeDir moves <root>/parent/name aside (one rename to a PurgedPrefix name in parent,
// sealed 0700) and removes it, together with what earlier purges left there. It returns the
// path of a tree it could not remove wholly ("" when none).
func (o *Operator) purgeDir(parent, name string) (string, error) {
	dir, err := safedir.Open(o.Settings.Home, parent)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer dir.Close()
	if _, err := dir.Lstat(name); err == nil {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		trash := profile.PurgedPrefix + hex.EncodeToString(b)
		if err := dir.Rename(name, trash, true); err != nil {
			return "", err
		}
		if d, err := dir.OpenDir(trash); err == nil {
			_ = d.Chmod(0o700)
			d.Close()
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", err
	}
	entries, err := dir.ReadDir()
	if err != nil {
		return "", err
	}
	var left string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), profile.PurgedPrefix) {
			continue
		}
		t, err := aside.ClaimIn(dir.Fd(), dir.Path(), e.Name())
		if errors.Is(err, aside.ErrBusy) {
			continue
		}
		if err == nil {
			_, err = t.Remove()
		}
		if err != nil {
			o.Log.Info("a purged directory could not be removed wholly; root removes it after the next boot", "dir", dir.Join(e.Name()), "err", err)
			left = dir.Join(e.Name())
		}
	}
	return left, nil
}
