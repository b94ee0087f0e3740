// Package config reads the settings every s6gate binary shares from the environment, so a
// host test, the image and an operator's shell all agree on where things are:
//
//	GATEWAY_HOME           data root                               /opt/data
//	GATEWAY_SCANDIR        s6 scan directory holding the slots     /run/service
//	S6_COMMAND_DIR         where the s6 tools and with-contenv are /command
//	GATEWAY_USER           service user the gateways run as        gateway
//	GATEWAY_BIN            gateway binary that slots exec          /usr/local/bin/gateway
//	GATEWAY_DRAIN_TIMEOUT  grace a gateway's child gets on stop    2s
//	GATEWAY_HEALTH_GRACE   how long a gateway meant to run may be   30s
//	                       down before status --check fails
//	GATEWAY_SUPERVISION    how a profile's command is supervised     wrapper
//	                       when its profile.json does not say:
//	                       wrapper (SPEC §7) or exec
//	GATEWAY_MAX_SERVICES   slots the gateways' s6-svscan supervises  4096
//	                       (its -c; every non-dot directory of the
//	                       scan directory counts, a slot's log/ does not)
//	GATEWAY_UID_RANGE      the uids (and gids) profiles' commands run  20000-59999
//	                       as, one per profile, first-last inclusive;
//	                       off: every command runs as the service user
//	                       (docs/architecture.md, "Isolation")
//	GATEWAY_MAX_PROCS      processes (threads included) one profile's  0 = derived from the
//	                       commands may run at once (RLIMIT_NPROC of   container's pids limit
//	                       its uid), unless its profile.json says
//
// Paths must be absolute. S6_COMMAND_DIR ends up in a run script's "#!" line, so it may not
// contain white space. Invalid settings are usage errors (exit code 2).
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/s6gate/s6gate/pkg/exitcode"
)

// Defaults, as the image lays things out.
const (
	DefaultHome         = "/opt/data"
	DefaultScanDir      = "/run/service"
	DefaultCommandDir   = "/command"
	DefaultUser         = "gateway"
	DefaultBin          = "/usr/local/bin/gateway"
	DefaultDrainTimeout = 2 * time.Second
	DefaultHealthGrace  = 30 * time.Second
	DefaultMaxServices  = 4096
)

// The default GATEWAY_UID_RANGE, inside the 65,536 uids a user namespace usually maps, above
// the system and regular users of a Debian image and clear of the service user (10000).
const (
	DefaultUIDFirst = 20000
	DefaultUIDLast  = 59999
)

// UIDRange is a range of uids, First to Last inclusive; the same numbers are the gids. The
// zero range is "off": profiles get no uid of their own.
type UIDRange struct{ First, Last int }

// Off reports whether the range is off (GATEWAY_UID_RANGE=off).
func (r UIDRange) Off() bool { return r == UIDRange{} }

// Contains reports whether uid lies in the range.
func (r UIDRange) Contains(uid int) bool { return !r.Off() && uid >= r.First && uid <= r.Last }

// Size is how many uids the range holds.
func (r UIDRange) Size() int { return r.Last - r.First + 1 }

func (r UIDRange) String() string {
	if r.Off() {
		return "off"
	}
	return strconv.Itoa(r.First) + "-" + strconv.Itoa(r.Last)
}

// ParseUIDRange parses "FIRST-LAST" (inclusive). Uid 0, uids below 1000 (system users) and
// anything beyond 2^31-2 are refused, so a range can never name root or a system account.
func ParseUIDRange(v string) (UIDRange, error) {
	if v == "off" {
		return UIDRange{}, nil
	}
	a, b, ok := strings.Cut(v, "-")
	first, err1 := strconv.Atoi(a)
	last, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || first < 1000 || last < first || last > 1<<31-2 {
		return UIDRange{}, fmt.Errorf("%q is not off or a range FIRST-LAST of uids from 1000 to %d", v, 1<<31-2)
	}
	return UIDRange{First: first, Last: last}, nil
}

// MaxServicesLimit is the most s6-svscan 2.11 accepts as -c (it clamps anything above); its
// table of that many entries lives on its stack, about 72 bytes each.
const MaxServicesLimit = 90000

// Settings are the shared settings.
type Settings struct {
	Home         string
	ScanDir      string
	CommandDir   string
	User         string
	Bin          string
	DrainTimeout time.Duration
	HealthGrace  time.Duration
	// Supervision is GATEWAY_SUPERVISION: "wrapper" (default) or "exec", the image-wide
	// default of profile.json's "supervision".
	Supervision string
	// MaxServices is the gateways' s6-svscan -c: how many service directories (slots) it
	// supervises; one more is never picked up (s6-svscan logs "too many services").
	MaxServices int
	// UIDs is GATEWAY_UID_RANGE: where each profile's own uid comes from.
	UIDs UIDRange
	// MaxProcs is GATEWAY_MAX_PROCS: a profile's process limit unless its profile.json sets
	// one; 0 means derived from the container's pids limit.
	MaxProcs int
}

// FromEnv reads the settings through getenv (os.Getenv in binaries, a map in tests).
func FromEnv(getenv func(string) string) (Settings, error) {
	get := func(k, def string) string {
		if v := getenv(k); v != "" {
			return v
		}
		return def
	}
	s := Settings{
		Home:       get("GATEWAY_HOME", DefaultHome),
		ScanDir:    get("GATEWAY_SCANDIR", DefaultScanDir),
		CommandDir: get("S6_COMMAND_DIR", DefaultCommandDir),
		User:       get("GATEWAY_USER", DefaultUser),
		Bin:        get("GATEWAY_BIN", DefaultBin),
	}
	for _, p := range []struct{ env, val string }{
		{"GATEWAY_HOME", s.Home}, {"GATEWAY_SCANDIR", s.ScanDir},
		{"S6_COMMAND_DIR", s.CommandDir}, {"GATEWAY_BIN", s.Bin},
	} {
		if !filepath.IsAbs(p.val) || strings.ContainsAny(p.val, "\x00\n") {
			return Settings{}, exitcode.Usagef("%s=%q: must be an absolute path", p.env, p.val)
		}
	}
	s.Home, s.ScanDir = filepath.Clean(s.Home), filepath.Clean(s.ScanDir)
	s.CommandDir, s.Bin = filepath.Clean(s.CommandDir), filepath.Clean(s.Bin)
	if strings.ContainsAny(s.CommandDir, " \t\r\v\f") || len(s.CommandDir) > 200 {
		return Settings{}, exitcode.Usagef("S6_COMMAND_DIR=%q: must have no white space and at most 200 bytes (it goes into a #! line)", s.CommandDir)
	}
	if s.User == "" || strings.ContainsAny(s.User, " \t\n:/\x00") {
		return Settings{}, exitcode.Usagef("GATEWAY_USER=%q: not a user name", s.User)
	}
	d, err := ParseDuration(get("GATEWAY_DRAIN_TIMEOUT", ""), DefaultDrainTimeout)
	if err != nil {
		return Settings{}, exitcode.Usagef("GATEWAY_DRAIN_TIMEOUT: %v", err)
	}
	s.DrainTimeout = d
	if s.HealthGrace, err = ParseDuration(get("GATEWAY_HEALTH_GRACE", ""), DefaultHealthGrace); err != nil {
		return Settings{}, exitcode.Usagef("GATEWAY_HEALTH_GRACE: %v", err)
	}
	s.Supervision = get("GATEWAY_SUPERVISION", "wrapper")
	if s.Supervision != "wrapper" && s.Supervision != "exec" {
		return Settings{}, exitcode.Usagef("GATEWAY_SUPERVISION=%q: must be wrapper or exec", s.Supervision)
	}
	s.MaxServices = DefaultMaxServices
	if v := getenv("GATEWAY_MAX_SERVICES"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 2 || n > MaxServicesLimit {
			return Settings{}, exitcode.Usagef("GATEWAY_MAX_SERVICES=%q: must be a number from 2 to %d", v, MaxServicesLimit)
		}
		s.MaxServices = n
	}
	s.UIDs = UIDRange{First: DefaultUIDFirst, Last: DefaultUIDLast}
	if v := getenv("GATEWAY_UID_RANGE"); v != "" {
		r, err := ParseUIDRange(v)
		if err != nil {
			return Settings{}, exitcode.Usagef("GATEWAY_UID_RANGE: %v", err)
		}
		s.UIDs = r
	}
	if v := getenv("GATEWAY_MAX_PROCS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || n > 1<<22 {
			return Settings{}, exitcode.Usagef("GATEWAY_MAX_PROCS=%q: must be a number from 0 (derived) to %d", v, 1<<22)
		}
		s.MaxProcs = n
	}
	return s, nil
}

// ParseDuration accepts a Go duration ("2s", "1500ms") or a plain number of seconds ("2",
// "0.5"). Empty means def. Negative values are refused.
func ParseDuration(v string, def time.Duration) (time.Duration, error) {
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		f, ferr := strconv.ParseFloat(v, 64)
		if ferr != nil {
			return 0, fmt.Errorf("%q is not a duration (like 2s or 1500ms) or a number of seconds", v)
		}
		d = time.Duration(f * float64(time.Second))
	}
	if d < 0 {
		return 0, fmt.Errorf("%q is negative", v)
	}
	return d, nil
}

// CheckHome reports a missing or non-directory data root as a usage error: every verb needs
// it, and creating it silently would hide a wrong GATEWAY_HOME.
func (s Settings) CheckHome() error {
	st, err := os.Stat(s.Home)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return exitcode.Usagef("data root %s does not exist (set GATEWAY_HOME or create it)", s.Home)
	case err != nil:
		return fmt.Errorf("data root %s: %w", s.Home, err)
	case !st.IsDir():
		return exitcode.Usagef("data root %s is not a directory", s.Home)
	}
	return nil
}
