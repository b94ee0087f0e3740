package boot

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Knob names (s6-overlay v3's).
const (
	envKeepEnv          = "S6_KEEP_ENV"
	envServicesGrace    = "S6_SERVICES_GRACETIME"
	envKillGrace        = "S6_KILL_GRACETIME"
	envFinishMaxTime    = "S6_KILL_FINISH_MAXTIME"
	envStage2Fails      = "S6_BEHAVIOUR_IF_STAGE2_FAILS"
	envCmdArg0          = "S6_CMD_ARG0"
	envWaitServices     = "S6_CMD_WAIT_FOR_SERVICES"
	envWaitServicesTime = "S6_CMD_WAIT_FOR_SERVICES_MAXTIME"
	envSyncDisks        = "S6_SYNC_DISKS"
	envReadOnlyRoot     = "S6_READ_ONLY_ROOT"
	envWorldWritableRun = "S6_YES_I_WANT_A_WORLD_WRITABLE_RUN_BECAUSE_KUBERNETES"
)

// Defaults, in milliseconds, as s6-overlay documents them.
const (
	defaultServicesGraceMS = 3000
	defaultKillGraceMS     = 3000
	defaultFinishMaxTimeMS = 5000
)

// S6_BEHAVIOUR_IF_STAGE2_FAILS values.
const (
	stage2Continue = 0 // continue silently
	stage2Warn     = 1 // continue with a warning
	stage2Stop     = 2 // stop the container with the failing code
)

// knobs are the run-time settings, read from the container environment.
type knobs struct {
	KeepEnv          bool
	ServicesGrace    time.Duration // upper bound for services to go down at stop
	KillGrace        time.Duration // upper bound between the final TERM and KILL
	FinishMaxTime    time.Duration // per cont-finish.d script; 0 = no limit
	Stage2Fails      int           // 0, 1 or 2
	CmdArg0          []string      // words put in front of the CMD
	WaitServices     bool          // wait for services.d to be up before the CMD
	WaitServicesTime time.Duration // 0 = no limit
	SyncDisks        bool
	ReadOnlyRoot     bool // write nothing outside /run (no /var/run or /command fixes)
	WorldWritableRun bool // a non-root /init accepts a /run of root's that others can write
}

// parseKnobs reads every knob through lookup. Bad values fall back to the default and come
// back as warnings (one line each, naming the variable and the value) — a typo in a knob must
// never stop a container from booting or stopping.
func parseKnobs(lookup func(string) (string, bool)) (knobs, []string) {
	var warns []string
	ms := func(name string, def int) time.Duration {
		v, ok := lookup(name)
		d, warn := parseMillis(name, v, ok, def)
		if warn != "" {
			warns = append(warns, warn)
		}
		return d
	}
	flag := func(name string) bool {
		v, ok := lookup(name)
		if !ok || strings.TrimSpace(v) == "" {
			return false
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			warns = append(warns, fmt.Sprintf("%s=%q is not a number: treated as 0", name, v))
			return false
		}
		return n != 0
	}
	k := knobs{
		KeepEnv:          flag(envKeepEnv),
		ServicesGrace:    ms(envServicesGrace, defaultServicesGraceMS),
		KillGrace:        ms(envKillGrace, defaultKillGraceMS),
		FinishMaxTime:    ms(envFinishMaxTime, defaultFinishMaxTimeMS),
		WaitServices:     flag(envWaitServices),
		WaitServicesTime: ms(envWaitServicesTime, 0),
		SyncDisks:        flag(envSyncDisks),
		ReadOnlyRoot:     flag(envReadOnlyRoot),
		WorldWritableRun: flag(envWorldWritableRun),
	}
	v, ok := lookup(envStage2Fails)
	var warn string
	k.Stage2Fails, warn = parseStage2Fails(v, ok)
	if warn != "" {
		warns = append(warns, warn)
	}
	if v, ok := lookup(envCmdArg0); ok {
		k.CmdArg0 = strings.Fields(v)
	}
	return k, warns
}

// parseMillis parses a duration in milliseconds: a non-negative integer. Unset or empty means
// def; anything else (negative, units, garbage) means def plus a warning.
func parseMillis(name, v string, set bool, def int) (time.Duration, string) {
	v = strings.TrimSpace(v)
	if !set || v == "" {
		return time.Duration(def) * time.Millisecond, ""
	}
	n, err := strconv.ParseUint(v, 10, 31)
	if err != nil {
		return time.Duration(def) * time.Millisecond,
			fmt.Sprintf("%s=%q is not a number of milliseconds: using %d", name, v, def)
	}
	return time.Duration(n) * time.Millisecond, ""
}

// parseStage2Fails parses S6_BEHAVIOUR_IF_STAGE2_FAILS: 0, 1, 2; larger numbers mean 2 (as
// s6-overlay's `-ge 2`), garbage or negative numbers mean 0 with a warning.
func parseStage2Fails(v string, set bool) (int, string) {
	v = strings.TrimSpace(v)
	if !set || v == "" {
		return stage2Continue, ""
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return stage2Continue, fmt.Sprintf("%s=%q is not 0, 1 or 2: using 0", envStage2Fails, v)
	}
	return min(n, stage2Stop), ""
}

// stage2Decision says what to do after a stage-2 step failed (failed=true) or not.
func stage2Decision(behaviour int, failed bool) (warn, stop bool) {
	if !failed {
		return false, false
	}
	switch {
	case behaviour >= stage2Stop:
		return true, true
	case behaviour == stage2Warn:
		return true, false
	default:
		return false, false
	}
}

// fixPath makes sure PATH contains /command, /usr/bin and /bin, prepending the missing ones
// in that order (s6-overlay's /init does the same), and starts from /bin when PATH is empty.
func fixPath(path string) string {
	if path == "" {
		path = "/bin"
	}
	for _, dir := range []string{"/bin", "/usr/bin", "/command"} {
		found := false
		for _, e := range strings.Split(path, ":") {
			if e == dir {
				found = true
				break
			}
		}
		if !found {
			path = dir + ":" + path
		}
	}
	return path
}

// withPath returns environ with PATH replaced (or added).
func withPath(environ []string, path string) []string {
	out := make([]string, 0, len(environ)+1)
	for _, kv := range environ {
		if !strings.HasPrefix(kv, "PATH=") {
			out = append(out, kv)
		}
	}
	return append(out, "PATH="+path)
}
