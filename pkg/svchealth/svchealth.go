// Package svchealth tells whether the container's own services are where /init put them:
// the services.d services it supervises in the root tree and the essential longruns of the
// s6-rc tree that are active. `gateway status --check` (the image's HEALTHCHECK) adds its
// verdict to the gateways', so a container whose own daemon keeps dying turns unhealthy too,
// not only one whose gateways do.
//
// It only reads: s6's supervise/status files and /init's s6-rc live state, no process is
// spawned and nothing is written. The root tree's supervise directories are root's (mode
// 0700), so the HEALTHCHECK reads them before it becomes the service user; a caller that
// cannot read them gets ErrUnreadable and no verdict on them.
package svchealth

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/google/renameio/v2"

	"github.com/s6gate/s6gate/pkg/s6"
	"github.com/s6gate/s6gate/pkg/s6rc"
)

// Paths are where /init keeps what svchealth reads.
type Paths struct {
	Scandir        string // the root tree's scan directory (/run/service)
	LegacyServices string // /init's copies of /etc/services.d (/run/s6/legacy-services)
	S6rcLive       string // /init's s6-rc live state (/run/s6-rc)
	History        string // when each service was first seen not serving (/run/s6/svchealth.json)
}

// DefaultPaths are the image's paths.
func DefaultPaths() Paths {
	return Paths{Scandir: "/run/service", LegacyServices: "/run/s6/legacy-services", S6rcLive: "/run/s6-rc", History: "/run/s6/svchealth.json"}
}

// ErrUnreadable means the caller may not read the root tree's status files (not root).
var ErrUnreadable = errors.New("the root supervision tree's status is not readable by this user")

// Problem is one service that should be up and has not been for longer than the grace.
type Problem struct {
	Service string // "services.d/NAME" or "s6-rc/NAME"
	Why     string
}

func (p Problem) String() string { return p.Service + ": " + p.Why }

// Stable is how long a service must have been up (and ready) to count as serving: s6 restarts
// a crashing service at most once a second, so one that dies at once is never up this long.
const Stable = time.Second

// Check lists the services that s6 wants up (an operator's raw `s6-svc -d` is respected) and
// that have not been serving — up, ready for those that notify, for at least Stable — for
// longer than grace: every services.d service /init linked into the scan directory, and every
// active s6-rc longrun flagged essential. A crash-looping service is down or just restarted at
// any one moment, so when a service was first seen not serving is kept in p.History (written
// atomically; without it, or unwritable, the verdict only sees the current run of s6).
func Check(p Paths, now time.Time, grace time.Duration) ([]Problem, error) {
	svcs, err := Services(p)
	if err != nil {
		return nil, err
	}
	seen := readHistory(p.History)
	next := map[string]time.Time{}
	var out []Problem
	for _, s := range svcs {
		if s.Err != nil {
			out = append(out, Problem{s.Name, s.Err.Error()})
			continue
		}
		st := s.Status
		if !st.WantUp {
			continue // taken down on purpose
		}
		if s.Serving(now) {
			continue
		}
		since := st.Since
		if t, ok := seen[s.Name]; ok && t.Before(since) {
			since = t
		}
		if since.IsZero() || since.After(now) {
			since = now
		}
		next[s.Name] = since
		if now.Sub(since) < grace {
			continue
		}
		why := "down"
		if st.Up {
			why = "restarting, or up but not ready"
		}
		out = append(out, Problem{s.Name, fmt.Sprintf("%s, not serving for %s (GATEWAY_HEALTH_GRACE %s)", why, now.Sub(since).Round(time.Second), grace)})
	}
	writeHistory(p.History, seen, next)
	sort.Slice(out, func(i, j int) bool { return out[i].Service < out[j].Service })
	return out, nil
}

// Service is one of the container's own services and what s6 says about it.
type Service struct {
	Name     string    // "services.d/NAME" or "s6-rc/NAME"
	Status   s6.Status // s6's status file, when Err is nil
	Notifies bool      // it has a notification-fd: up counts only once ready
	Err      error     // no status from s6 (not supervised yet, unparsable)
}

// Serving reports whether the service is up (and ready, when it notifies) and has been for at
// least Stable.
func (s Service) Serving(now time.Time) bool {
	st := s.Status
	return s.Err == nil && st.Up && (st.Ready || !s.Notifies) && now.Sub(st.Since) >= Stable
}

// Services lists the services Check looks at, sorted by name, with s6's view of each: every
// services.d service /init linked into the scan directory, and every active s6-rc longrun
// flagged essential. It only reads; ErrUnreadable when the caller may not read them.
func Services(p Paths) ([]Service, error) {
	type svc struct{ label, dir string }
	var svcs []svc
	legacy, err := os.ReadDir(p.LegacyServices)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	for _, e := range legacy {
		link := filepath.Join(p.Scandir, e.Name())
		// Only the copies /init linked: a name a cont-init.d script took first is not ours.
		if target, err := filepath.EvalSymlinks(link); err != nil || target != filepath.Join(p.LegacyServices, e.Name()) {
			continue
		}
		svcs = append(svcs, svc{"services.d/" + e.Name(), link})
	}
	expected, err := s6rc.ExpectedUp(p.S6rcLive)
	if err != nil {
		return nil, fmt.Errorf("s6-rc live state %s: %w", p.S6rcLive, err)
	}
	for _, x := range expected {
		if x.Essential {
			svcs = append(svcs, svc{"s6-rc/" + x.Name, x.ServiceDir})
		}
	}
	out := make([]Service, 0, len(svcs))
	for _, s := range svcs {
		b, err := os.ReadFile(filepath.Join(s.dir, "supervise", "status"))
		if errors.Is(err, fs.ErrPermission) {
			return nil, ErrUnreadable
		}
		if err != nil {
			out = append(out, Service{Name: s.label, Err: fmt.Errorf("no status from s6 (%w)", err)})
			continue
		}
		st, err := s6.ParseStatusFile(b)
		if err != nil {
			out = append(out, Service{Name: s.label, Err: err})
			continue
		}
		_, nerr := os.Stat(filepath.Join(s.dir, "notification-fd"))
		out = append(out, Service{Name: s.label, Status: st, Notifies: nerr == nil})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func readHistory(path string) map[string]time.Time {
	m := map[string]time.Time{}
	if path == "" {
		return m
	}
	if b, err := os.ReadFile(path); err == nil {
		_ = json.Unmarshal(b, &m)
	}
	return m
}

// writeHistory keeps what is not serving now (and forgets what serves again); best effort:
// a check that cannot write still gives a verdict.
func writeHistory(path string, old, next map[string]time.Time) {
	if path == "" || maps.Equal(old, next) {
		return
	}
	b, err := json.Marshal(next)
	if err == nil {
		_ = renameio.WriteFile(path, b, 0o644)
	}
}
