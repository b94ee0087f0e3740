package slot

import (
	"os"
	"strings"

	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/profile"
)

// SetenvPrefix names the variables that carry the profile's values from a slot's run script to
// `gateway run --setenv NAME`: the script exports SetenvPrefix+NAME (a name no shell gives a
// meaning of its own), and the gateway sets NAME from it and removes it before anything reads
// its environment. So no value is ever on a command line: /proc/PID/cmdline is readable by
// every user, and the gateway lives as long as its slot runs (its environ is its own user's).
const SetenvPrefix = "S6GATE_SETENV_"

// ApplySetenv applies `gateway run`'s --setenv arguments to the process's own environment, so
// that the gateway and its child see what `env NAME=VALUE... gateway run` gave them: in order,
// an existing variable replaced in place, a new one appended, the last one of a name winning.
// An argument is NAME=VALUE, or NAME alone for the value of SetenvPrefix+NAME, which is then
// removed. Every argument is checked, and every carried value read, before anything changes;
// a name profile.ValidateEnvName refuses, or a missing carrier, is a usage error.
//
// First it undoes the slot's GOMAXPROCS (GOMAXPROCSCarrier), so that the profile's own
// GOMAXPROCS, if any, is applied over the environment's.
func ApplySetenv(args []string) error {
	restoreGOMAXPROCS()
	type kv struct{ name, value string }
	vars := make([]kv, 0, len(args))
	for _, a := range args {
		name, value, literal := strings.Cut(a, "=")
		if err := profile.ValidateEnvName(name); err != nil {
			return exitcode.Usagef("--setenv: %v", err)
		}
		if !literal {
			var ok bool
			if value, ok = os.LookupEnv(SetenvPrefix + name); !ok {
				return exitcode.Usagef("--setenv %s: %s%s is not set", name, SetenvPrefix, name)
			}
		}
		vars = append(vars, kv{name, value})
	}
	for _, a := range args {
		if !strings.Contains(a, "=") {
			os.Unsetenv(SetenvPrefix + a)
		}
	}
	for _, v := range vars {
		if err := os.Setenv(v.name, v.value); err != nil {
			return err
		}
	}
	return nil
}

// GOMAXPROCSCarrier holds, for `gateway run`, the GOMAXPROCS its environment had ("-": none).
// A slot's run script starts `gateway run` with GOMAXPROCS=1: one P from its first
// instruction, where a runtime.GOMAXPROCS(1) call would stop the world and wake threads, and
// an idle second P would spin and wake threads through futexes — at a thousand starts at once
// that was a tenth of what a start cost. ApplySetenv puts the value back first thing, so the
// command never sees the 1.
const GOMAXPROCSCarrier = "S6GATE_GOMAXPROCS"

func restoreGOMAXPROCS() {
	was, ok := os.LookupEnv(GOMAXPROCSCarrier)
	if !ok {
		return
	}
	os.Unsetenv(GOMAXPROCSCarrier)
	if was == "-" {
		os.Unsetenv("GOMAXPROCS")
	} else {
		os.Setenv("GOMAXPROCS", was)
	}
}
