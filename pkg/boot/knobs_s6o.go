package boot

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/s6gate/s6gate/pkg/contenv"
)

// s6-overlay knobs added for issue 7 (see docs/init.md, "Every s6-overlay feature").
const (
	envStage2Hook     = "S6_STAGE2_HOOK"
	envVerbosity      = "S6_VERBOSITY"
	envReceiveSignals = "S6_CMD_RECEIVE_SIGNALS"
	envFixAttrsHidden = "S6_FIX_ATTRS_HIDDEN"
	envLogging        = "S6_LOGGING"
	envCatchallUser   = "S6_CATCHALL_USER"
	envUseTerminal    = "S6_CMD_USE_TERMINAL"
	envRuntimeProfile = "S6_RUNTIME_PROFILE"
	envReadyTime      = "S6_SERVICES_READYTIME"
	envClosingFD      = "S6_WAIT_FOR_CLOSING_FD"
)

// Verbosity levels (S6_VERBOSITY): what /init prints.
const (
	verbosityErrors   = 0 // fatal errors only
	verbosityWarnings = 1 // and warnings
	defaultVerbosity  = 2 // and one line per step (the default)
)

// moreKnobs are the knobs of s6-overlay's stage 0 and stage 2 scripts.
type moreKnobs struct {
	Stage2Hook     []string // S6_STAGE2_HOOK split on blanks, as s6-overlay's unquoted $hook
	Verbosity      int      // 0..5; above 2 is the same as 2
	ReceiveSignals bool     // divert PID 1's signals to the CMD while it runs
	FixAttrsHidden bool     // fix-attrs.d recursion includes dot files
}

// parseMoreKnobs reads moreKnobs; bad values are warnings and mean the default.
func parseMoreKnobs(lookup func(string) (string, bool)) (moreKnobs, []string) {
	var warns []string
	num := func(name string, def int) int {
		v, ok := lookup(name)
		v = strings.TrimSpace(v)
		if !ok || v == "" {
			return def
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			warns = append(warns, fmt.Sprintf("%s=%q is not a non-negative number: using %d", name, v, def))
			return def
		}
		return n
	}
	k := moreKnobs{
		Verbosity:      num(envVerbosity, defaultVerbosity),
		ReceiveSignals: num(envReceiveSignals, 0) > 0,
		FixAttrsHidden: num(envFixAttrsHidden, 0) > 0,
	}
	if v, ok := lookup(envStage2Hook); ok {
		k.Stage2Hook = strings.Fields(v)
	}
	return k, warns
}

// verbosityOf reads S6_VERBOSITY alone, silently (the default when unset or bad).
func verbosityOf(lookup func(string) (string, bool)) int {
	k, _ := parseMoreKnobs(lookup)
	return k.Verbosity
}

// unsupportedKnobs returns one boot line for each s6-overlay knob that is set but that s6gate
// does not implement, naming the alternative: nothing is silently ignored.
func unsupportedKnobs(lookup func(string) (string, bool)) []string {
	var lines []string
	set := func(name string) (string, bool) {
		v, ok := lookup(name)
		return v, ok && strings.TrimSpace(v) != ""
	}
	if v, ok := set(envRuntimeProfile); ok {
		lines = append(lines, fmt.Sprintf("%s=%q is not supported: /etc/cont-init.d, /etc/services.d, /etc/cont-finish.d and /etc/fix-attrs.d are used, not /etc/cont-profile.d/%s", envRuntimeProfile, v, v))
	}
	if v, ok := set(envReadyTime); ok {
		lines = append(lines, fmt.Sprintf("%s=%q is not needed: S6_CMD_WAIT_FOR_SERVICES waits until each service is supervised before it waits for it to be up, so there is no race to sleep over", envReadyTime, v))
	}
	if v, ok := set(envClosingFD); ok && strings.TrimSpace(v) != "0" {
		lines = append(lines, fmt.Sprintf("%s=%s is not supported: /init does not wait for a file descriptor to close; start the container once its manager is ready", envClosingFD, v))
	}
	return lines
}

// contenvLookup reads knobs from the container environment (the hooks and stage 3 run with
// s6-svscan's minimal environment), as hookKnobs does.
func contenvLookup(l layout) func(string) (string, bool) {
	environ := os.Environ()
	return func(name string) (string, bool) {
		v, ok, err := contenv.Lookup(environ, l.ContEnv, name)
		return v, ok && err == nil
	}
}
