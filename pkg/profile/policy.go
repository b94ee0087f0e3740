package profile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"time"

	"github.com/s6gate/s6gate/pkg/exitcode"
)

// Defaults of the start and restart policy: like supervisord's startsecs, a command must stay
// up for DefaultSettle before its gateway counts as started; consecutive failures back off
// from DefaultBackoffInitial, doubling up to DefaultBackoffMax; DefaultMaxFailures of them in
// a row mark the gateway failed; a command that stays up DefaultStableAfter clears the count.
const (
	DefaultSettle         = time.Second
	DefaultMaxFailures    = 10
	DefaultBackoffInitial = time.Second
	DefaultBackoffMax     = 60 * time.Second
	DefaultStableAfter    = 30 * time.Second
)

// MaxNotifyFD bounds ready.notify_fd: the descriptor is placed by position in the child's
// descriptor table, so it must stay small.
const MaxNotifyFD = 63

// Ready is how a gateway knows its command is ready to serve, beyond "still running after the
// settle time". At most one field is set; none means "ready once settled".
type Ready struct {
	// File: ready once this absolute path exists (the command creates it).
	File string `json:"file,omitempty"`
	// TCP: ready once a TCP connection to this host:port succeeds.
	TCP string `json:"tcp,omitempty"`
	// NotifyFD: the command gets the write end of a pipe as this descriptor (3..63) and
	// writes a newline to it once ready — s6's readiness protocol, passed through.
	NotifyFD int `json:"notify_fd,omitempty"`
}

// Supervision modes (profile.json "supervision", GATEWAY_SUPERVISION): how a profile's command
// is supervised. SupervisionWrapper, the default, keeps `gateway run` resident as the
// command's parent (SPEC §7); SupervisionExec has `gateway run` exec the command, so the
// command is s6-supervise's own child and the slot's finish classifies its end
// (docs/operations.md, "Exec supervision").
const (
	SupervisionWrapper = "wrapper"
	SupervisionExec    = "exec"
)

// ValidSupervision reports whether v names a supervision mode.
func ValidSupervision(v string) bool { return v == SupervisionWrapper || v == SupervisionExec }

// Policy is a profile's start and restart policy (profile.json keys "settle", "ready",
// "max_failures", "backoff_max", "stable_after", "supervision"). Zero fields mean the defaults.
type Policy struct {
	Settle      time.Duration // how long the command must stay up to count as started
	SettleSet   bool          // Settle was given (so "0s" means no settle time, not the default)
	Ready       Ready
	MaxFailures int           // consecutive failures before the gateway is marked failed
	BackoffMax  time.Duration // cap of the exponential restart delay
	StableAfter time.Duration // uptime after which the failure count is cleared
	Supervision string        // SupervisionWrapper or SupervisionExec; "" = the image default (GATEWAY_SUPERVISION)
	// MaxProcs is the most processes (threads included) the profile's commands may run at
	// once: RLIMIT_NPROC of the profile's own uid; 0 = GATEWAY_MAX_PROCS, else derived.
	MaxProcs int
}

// MaxProcsLimit bounds "max_processes" and GATEWAY_MAX_PROCS (the kernel's pid_max ceiling).
const MaxProcsLimit = 1 << 22

// policyKeys are the profile.json keys Policy owns.
var policyKeys = []string{"settle", "ready", "max_failures", "backoff_max", "stable_after", "supervision", "max_processes"}

// SettleTime is the settle time, the default when unset.
func (p Policy) SettleTime() time.Duration {
	if p.SettleSet {
		return p.Settle
	}
	return DefaultSettle
}

// FailureLimit is the number of consecutive failures that marks a gateway failed.
func (p Policy) FailureLimit() int {
	if p.MaxFailures <= 0 {
		return DefaultMaxFailures
	}
	return p.MaxFailures
}

// StableTime is the uptime after which a command's failure count is cleared.
func (p Policy) StableTime() time.Duration { return orDuration(p.StableAfter, DefaultStableAfter) }

// Backoff is the delay before the next start after n consecutive failures: none for n = 0,
// then 1 s, 2 s, 4 s, … capped at BackoffMax.
func (p Policy) Backoff(n int) time.Duration {
	if n <= 0 {
		return 0
	}
	max := orDuration(p.BackoffMax, DefaultBackoffMax)
	d := DefaultBackoffInitial
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}

func orDuration(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// parse takes Policy's keys out of raw, validating each; errors are usage errors that name
// the key.
func (p *Policy) parse(raw map[string]json.RawMessage) error {
	durations := []struct {
		key string
		dst *time.Duration
	}{{"settle", &p.Settle}, {"backoff_max", &p.BackoffMax}, {"stable_after", &p.StableAfter}}
	for _, d := range durations {
		v, ok := raw[d.key]
		if !ok {
			continue
		}
		var s string
		if err := json.Unmarshal(v, &s); err != nil {
			return exitcode.Usagef("%q must be a duration string such as \"1s\" or \"500ms\"", d.key)
		}
		t, err := time.ParseDuration(s)
		if err != nil || t < 0 || t > 24*time.Hour {
			return exitcode.Usagef("%q: %q is not a duration between 0 and 24h", d.key, s)
		}
		*d.dst = t
		if d.key == "settle" {
			p.SettleSet = true
		}
	}
	if v, ok := raw["max_failures"]; ok {
		if err := json.Unmarshal(v, &p.MaxFailures); err != nil || p.MaxFailures < 1 || p.MaxFailures > 1000 {
			return exitcode.Usagef("\"max_failures\" must be a whole number from 1 to 1000")
		}
	}
	if v, ok := raw["max_processes"]; ok {
		if err := json.Unmarshal(v, &p.MaxProcs); err != nil || p.MaxProcs < 1 || p.MaxProcs > MaxProcsLimit {
			return exitcode.Usagef("\"max_processes\" must be a whole number from 1 to %d", MaxProcsLimit)
		}
	}
	if v, ok := raw["supervision"]; ok {
		if err := json.Unmarshal(v, &p.Supervision); err != nil || !ValidSupervision(p.Supervision) {
			return exitcode.Usagef("\"supervision\" must be %q or %q", SupervisionWrapper, SupervisionExec)
		}
	}
	if v, ok := raw["ready"]; ok {
		dec := json.NewDecoder(bytes.NewReader(v))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p.Ready); err != nil {
			return exitcode.Usagef("\"ready\" must be an object with one of \"file\", \"tcp\", \"notify_fd\": %v", err)
		}
		if err := p.Ready.validate(); err != nil {
			return err
		}
	}
	for _, k := range policyKeys {
		delete(raw, k)
	}
	return nil
}

func (r Ready) validate() error {
	set := 0
	if r.File != "" {
		set++
		if !filepath.IsAbs(r.File) {
			return exitcode.Usagef("\"ready\": \"file\" %q must be an absolute path", r.File)
		}
	}
	if r.TCP != "" {
		set++
		if _, _, err := net.SplitHostPort(r.TCP); err != nil {
			return exitcode.Usagef("\"ready\": \"tcp\" %q must be host:port", r.TCP)
		}
	}
	if r.NotifyFD != 0 {
		set++
		if r.NotifyFD < 3 || r.NotifyFD > MaxNotifyFD {
			return exitcode.Usagef("\"ready\": \"notify_fd\" %d must be from 3 to %d", r.NotifyFD, MaxNotifyFD)
		}
	}
	if set > 1 {
		return exitcode.Usagef("\"ready\" names more than one check; choose one of \"file\", \"tcp\", \"notify_fd\"")
	}
	return nil
}

// marshal adds the set fields of p to a profile.json object.
func (p Policy) marshal(out map[string]any) {
	for _, d := range []struct {
		key string
		v   time.Duration
	}{{"backoff_max", p.BackoffMax}, {"stable_after", p.StableAfter}} {
		if d.v > 0 {
			out[d.key] = d.v.String()
		}
	}
	if p.SettleSet {
		out["settle"] = p.Settle.String()
	}
	if p.MaxFailures > 0 {
		out["max_failures"] = p.MaxFailures
	}
	if p.Ready != (Ready{}) {
		out["ready"] = p.Ready
	}
	if p.Supervision != "" {
		out["supervision"] = p.Supervision
	}
	if p.MaxProcs > 0 {
		out["max_processes"] = p.MaxProcs
	}
}

// String describes the readiness check for logs.
func (r Ready) String() string {
	switch {
	case r.File != "":
		return fmt.Sprintf("file %s exists", r.File)
	case r.TCP != "":
		return "tcp " + r.TCP + " accepts"
	case r.NotifyFD != 0:
		return fmt.Sprintf("command writes to fd %d", r.NotifyFD)
	}
	return "settled"
}
