package gateway

import (
	"flag"
	"time"

	"github.com/s6gate/s6gate/internal/cli"
	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/slot"
	"github.com/s6gate/s6gate/pkg/svchealth"
)

// cmdline is a parsed verb invocation.
type cmdline struct {
	profile                          string
	all, json, check, start, replace bool
	live, ready                      bool         // status --live, --ready: the container-wide probes (package probe)
	purge                            bool         // unregister --purge
	unsetEnv                         cli.Repeated // update --unset-env NAME
	timeout, settle                  time.Duration
	env                              cli.Repeated
	setenv                           cli.Repeated        // run --setenv NAME=VALUE or NAME, in order (slot.ApplySetenv)
	command                          []string            // after "--"; nil when there was no "--"
	services                         []svchealth.Problem // status --check: the container's own services that are not up
	logs                             logsArgs            // -n and -f (logs.go)
}

// flagsOf are the flags each verb accepts.
var flagsOf = map[string][]string{
	"run":        {"p", "replace", "setenv"},
	"register":   {"env", "start", "settle", "timeout"},
	"unregister": {"purge", "timeout"},
	"update":     {"all", "env", "unset-env", "settle", "timeout"},
	"start":      {"p", "all", "settle", "timeout"},
	"stop":       {"p", "all", "timeout"},
	"restart":    {"p", "all", "settle", "timeout"},
	"status":     {"p", "json", "check", "live", "ready", "timeout"},
	"list":       {"json", "timeout"},
	"logs":       {"p", "all", "n", "f", "timeout"},
}

// parse parses and checks a verb's arguments; every problem is a usage error.
func parse(verb string, args []string) (*cmdline, error) {
	want, ok := flagsOf[verb]
	if !ok {
		return nil, errUnknownVerb(verb)
	}
	c := &cmdline{}
	fs := flagSet(verb, want, c)
	a, err := cli.Parse(fs, args)
	if err != nil {
		return nil, err
	}
	return check(verb, c, a)
}

// verbHelp is `gateway VERB --help` and `gateway help VERB`: the verb's synopsis and flags.
func verbHelp(verb string) (string, error) {
	want, ok := flagsOf[verb]
	if !ok {
		return "", errUnknownVerb(verb)
	}
	return cli.VerbHelp(usage, "gateway", verb, flagSet(verb, want, &cmdline{})), nil
}

func errUnknownVerb(verb string) error {
	return exitcode.Usagef("unknown verb %q (want run, register, unregister, update, start, stop, restart, status, list or logs)", verb)
}

// flagSet defines the flags want of verb on c.
func flagSet(verb string, want []string, c *cmdline) *flag.FlagSet {
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	for _, f := range want {
		switch f {
		case "p":
			fs.StringVar(&c.profile, "p", "", "profile name")
		case "replace":
			fs.BoolVar(&c.replace, "replace", false, "end a stray gateway holding the profile lock")
		case "setenv":
			fs.Var(&c.setenv, "setenv", "NAME=VALUE (or NAME: the value of $"+slot.SetenvPrefix+"NAME) set in the gateway's own environment first (repeatable; the last one wins)")
		case "env":
			fs.Var(&c.env, "env", "K=V exported to the gateway (repeatable)")
		case "start":
			fs.BoolVar(&c.start, "start", false, "start the gateway at once")
		case "purge":
			fs.BoolVar(&c.purge, "purge", false, "also delete the profile's data for good (refused while it runs)")
		case "unset-env":
			fs.Var(&c.unsetEnv, "unset-env", "NAME removed from the gateway's environment (repeatable)")
		case "timeout":
			fs.DurationVar(&c.timeout, "timeout", 0, "how long to wait (boot, another command on the profile, up/down)")
		case "settle":
			fs.DurationVar(&c.settle, "settle", 0, "succeed only once the command has stayed up this long (default: the profile's settle time)")
		case "all":
			fs.BoolVar(&c.all, "all", false, "every registered gateway")
		case "json":
			fs.BoolVar(&c.json, "json", false, "JSON output")
		case "check":
			fs.BoolVar(&c.check, "check", false, "exit 1 if a gateway meant to run is not up")
		case "live":
			fs.BoolVar(&c.live, "live", false, "exit 1 unless the supervision trees answer (liveness)")
		case "ready":
			fs.BoolVar(&c.ready, "ready", false, "exit 1 unless the container's own services are up (readiness)")
		case "n", "f":
			c.logs.define(fs, f)
		}
	}
	return fs
}

// check completes c from what Parse found and checks the combination.
func check(verb string, c *cmdline, a cli.Args) (*cmdline, error) {
	if a.DashDash {
		c.command = a.Command
	}
	switch verb {
	case "register", "unregister":
		if len(a.Positional) != 1 {
			return nil, exitcode.Usagef("want exactly one profile NAME, got %d arguments", len(a.Positional))
		}
		c.profile = a.Positional[0]
	case "update":
		switch {
		case c.all && len(a.Positional) > 0:
			return nil, exitcode.Usagef("NAME and --all exclude each other")
		case c.all && (len(c.env) > 0 || len(c.unsetEnv) > 0 || a.DashDash):
			return nil, exitcode.Usagef("--all applies each edited profile.json as it is; --env, --unset-env and a command go with one NAME")
		case !c.all && len(a.Positional) != 1:
			return nil, exitcode.Usagef("want exactly one profile NAME (or --all), got %d arguments", len(a.Positional))
		case !c.all:
			c.profile = a.Positional[0]
		}
		if a.DashDash && len(a.Command) == 0 {
			return nil, exitcode.Usagef("an empty command after --")
		}
	default:
		if len(a.Positional) > 0 {
			return nil, exitcode.Usagef("unexpected argument %q", a.Positional[0])
		}
		if verb == "run" && c.profile == "" {
			return nil, exitcode.Usagef("-p NAME is required")
		}
		if c.all && c.profile != "" {
			return nil, exitcode.Usagef("-p and --all exclude each other")
		}
		if c.profile == "" && !c.all && verb != "status" && verb != "list" {
			c.profile = profile.Default
		}
	}
	if a.DashDash && verb != "run" && verb != "register" && verb != "update" {
		return nil, exitcode.Usagef("%s takes no command after --", verb)
	}
	if c.profile != "" {
		if err := profile.Validate(c.profile); err != nil {
			return nil, err
		}
	}
	if (c.live || c.ready) && (c.live == c.ready || c.json || c.check || c.profile != "") {
		return nil, exitcode.Usagef("--live and --ready go alone (not with each other, -p, --json or --check)")
	}
	if c.timeout < 0 {
		return nil, exitcode.Usagef("--timeout must not be negative")
	}
	if c.settle < 0 {
		return nil, exitcode.Usagef("--settle must not be negative")
	}
	return c, nil
}
