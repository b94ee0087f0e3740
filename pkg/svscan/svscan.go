package svscan

import (
	"log/slog"
	"strconv"
	"time"

	"github.com/s6gate/s6gate/pkg/config"
)

// MaxLimit is the most services s6-svscan 2.11 accepts as -c (it clamps anything above);
// MinLimit the least (it raises anything below). DefaultMax is its default.
const (
	MinLimit   = 2
	MaxLimit   = 90000
	DefaultMax = 500
)

// CodeSetup and CodeSystem are gw-svscan's exit codes besides 0 and 2, the same as s6-svscan's:
// a scan directory or control directory that cannot be used as it is (100), a system call that
// failed at start (111).
const (
	CodeSetup  = 100
	CodeSystem = 111
)

// SetupError is a scan directory (or a .s6-svscan in it) that gw-svscan refuses: exit code 100.
type SetupError struct {
	Path   string
	Reason string
}

func (e *SetupError) Error() string { return e.Path + ": " + e.Reason }

// ExitCode implements exitcode.Coder.
func (e *SetupError) ExitCode() int { return CodeSetup }

// SystemError is a system call that failed while gw-svscan set itself up: exit code 111.
type SystemError struct{ Err error }

func (e *SystemError) Error() string { return e.Err.Error() }
func (e *SystemError) Unwrap() error { return e.Err }

// ExitCode implements exitcode.Coder.
func (e *SystemError) ExitCode() int { return CodeSystem }

// Config is what Run needs. Nothing in it comes from the scan directory.
type Config struct {
	ScanDir string        // the directory to supervise; its owner is the service user
	Max     int           // -c: at most this many services (MinLimit..MaxLimit)
	Rescan  time.Duration // -t: scan this often as well (0: only when asked, like s6-svscan)
	// NotifyFD (-d) gets a newline once the first scan is done and every supervisor it
	// started listens (or ReadyTimeout passed); -1: no notification.
	NotifyFD     int
	ReadyTimeout time.Duration
	Supervise    string // absolute path of s6-supervise
	// Setpriv is util-linux's setpriv(1), through which an isolated slot's supervisor is
	// started with its credentials (IsolatedArgs); "" or missing: no slot can be isolated.
	Setpriv string
	UIDs    config.UIDRange // GATEWAY_UID_RANGE of gw-svscan's own environment
	Environ []string        // the supervisors' environment (gw-svscan's own)
	Log     *slog.Logger
}

// IsolatedArgs is the command line that starts `s6-supervise dir` (dir relative to the
// working directory, the scan directory) through setpriv with real uid and gid p, effective and
// saved uid svcUID and gid svcGID, and no supplementary group. setpriv sets the gids
// (setresgid(p, svcGID, svcGID)) and then the uids (setresuid(p, svcUID, svcUID)) and execs;
// the kernel marks that exec AT_SECURE, its real uid not being its effective one.
func IsolatedArgs(p, svcUID, svcGID int, supervise, dir string) []string {
	P := strconv.Itoa(p)
	return []string{"setpriv", "--ruid", P, "--euid", strconv.Itoa(svcUID), "--rgid", P, "--egid", strconv.Itoa(svcGID),
		"--clear-groups", "--", supervise, dir}
}
