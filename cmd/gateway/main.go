// Command gateway is the per-profile supervised process (`gateway run`) and the operator verbs
// that register, start, stop and inspect gateways in an s6 scan directory. See docs/gateway.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/gatewayrun"
	"github.com/s6gate/s6gate/pkg/operator"
	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/svcuser"
)

const usage = `usage:
  gateway run -p NAME [--replace] [-- CMD...]
  gateway register NAME [--env K=V]... [--start] [--timeout D] [-- CMD...]
  gateway unregister NAME [--timeout D]
  gateway start [-p NAME | --all] [--timeout D]
  gateway stop [-p NAME | --all] [--timeout D]
  gateway restart [-p NAME | --all] [--timeout D]
  gateway status [-p NAME] [--json] [--check] [--timeout D]
  gateway list [--json] [--timeout D]
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitcode.Usage
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprint(stdout, usage)
		return exitcode.OK
	}
	verb, rest := args[0], args[1:]
	fail := func(err error) int {
		fmt.Fprintf(stderr, "gateway: %s: %s\n", verb, oneLine(err.Error()))
		return exitcode.Of(err)
	}
	settings, err := config.FromEnv(os.Getenv)
	if err != nil {
		if verb == "run" {
			fmt.Fprintf(stderr, "gateway: run: fatal configuration: %s\n", oneLine(err.Error()))
			return exitcode.FatalConfig
		}
		return fail(err)
	}
	cli, err := parse(verb, rest)
	if err != nil {
		return fail(err)
	}
	// Everything from here on acts as the service user: started as root, become it before
	// touching anything (SPEC §11).
	if _, err := svcuser.Become(settings.User); err != nil {
		if verb == "run" {
			fmt.Fprintf(stderr, "gateway: run: fatal configuration: %s\n", oneLine(err.Error()))
			return exitcode.FatalConfig
		}
		return fail(err)
	}
	ctx := context.Background()
	if verb == "run" {
		return runGateway(ctx, settings, cli, stderr)
	}
	op := operator.New(settings, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if cli.timeout > 0 {
		op.Timeout = cli.timeout
	}
	if err := dispatch(ctx, op, verb, cli, stdout); err != nil {
		return fail(err)
	}
	return exitcode.OK
}

func runGateway(ctx context.Context, s config.Settings, cli *cmdline, stderr io.Writer) int {
	notify, _ := strconv.Atoi(os.Getenv("GATEWAY_NOTIFY_FD"))
	beat, err := config.ParseDuration(os.Getenv("GATEWAY_HEARTBEAT"), gatewayrun.DefaultHeartbeat)
	if err != nil {
		fmt.Fprintf(stderr, "gateway: run: fatal configuration: GATEWAY_HEARTBEAT: %s\n", err)
		return exitcode.FatalConfig
	}
	var cmd []string
	if cli.dashdash {
		cmd = cli.command
	}
	return gatewayrun.Run(ctx, gatewayrun.Options{
		Settings: s, Profile: cli.profile, Replace: cli.replace, Command: cmd,
		NotifyFD: notify, Heartbeat: beat, Logger: slog.New(slog.NewTextHandler(stderr, nil)),
	})
}

// cmdline is a parsed verb invocation.
type cmdline struct {
	profile  string
	all      bool
	json     bool
	check    bool
	start    bool
	replace  bool
	timeout  time.Duration
	env      []string
	args     []string // positional arguments
	command  []string // after "--"
	dashdash bool
}

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

// parse parses a verb's flags. Flags and positional arguments may be interleaved; everything
// after "--" is the command.
func parse(verb string, args []string) (*cmdline, error) {
	c := &cmdline{}
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	want := map[string][]string{
		"run":        {"p", "replace"},
		"register":   {"env", "start", "timeout"},
		"unregister": {"timeout"},
		"start":      {"p", "all", "timeout"},
		"stop":       {"p", "all", "timeout"},
		"restart":    {"p", "all", "timeout"},
		"status":     {"p", "json", "check", "timeout"},
		"list":       {"json", "timeout"},
	}[verb]
	if want == nil {
		return nil, exitcode.Usagef("unknown verb %q (want run, register, unregister, start, stop, restart, status or list)", verb)
	}
	for _, f := range want {
		switch f {
		case "p":
			fs.StringVar(&c.profile, "p", "", "profile name")
		case "replace":
			fs.BoolVar(&c.replace, "replace", false, "end a stray gateway holding the profile lock")
		case "env":
			fs.Var((*multi)(&c.env), "env", "K=V exported to the gateway (repeatable)")
		case "start":
			fs.BoolVar(&c.start, "start", false, "start the gateway at once")
		case "timeout":
			fs.DurationVar(&c.timeout, "timeout", 0, "how long to wait (boot, another command on the profile, up/down)")
		case "all":
			fs.BoolVar(&c.all, "all", false, "every registered gateway")
		case "json":
			fs.BoolVar(&c.json, "json", false, "JSON output")
		case "check":
			fs.BoolVar(&c.check, "check", false, "exit 1 if a gateway meant to run is not up")
		}
	}
	before := args
	for i, a := range args {
		if a == "--" {
			before, c.command, c.dashdash = args[:i], args[i+1:], true
			break
		}
	}
	for {
		if err := fs.Parse(before); err != nil {
			return nil, exitcode.Usagef("%v", err)
		}
		if fs.NArg() == 0 {
			break
		}
		c.args = append(c.args, fs.Arg(0))
		before = fs.Args()[1:]
	}
	return c, validate(verb, c)
}

func validate(verb string, c *cmdline) error {
	switch verb {
	case "register", "unregister":
		if len(c.args) != 1 {
			return exitcode.Usagef("want exactly one profile NAME, got %d arguments", len(c.args))
		}
		c.profile = c.args[0]
	case "run":
		if c.profile == "" {
			return exitcode.Usagef("-p NAME is required")
		}
	default:
		if len(c.args) > 0 {
			return exitcode.Usagef("unexpected argument %q", c.args[0])
		}
		if c.all && c.profile != "" {
			return exitcode.Usagef("-p and --all exclude each other")
		}
		if c.profile == "" && !c.all && verb != "status" && verb != "list" {
			c.profile = profile.Default
		}
	}
	if c.dashdash && verb != "run" && verb != "register" {
		return exitcode.Usagef("%s takes no command after --", verb)
	}
	if c.profile != "" {
		if err := profile.Validate(c.profile); err != nil {
			return err
		}
	}
	if c.timeout < 0 {
		return exitcode.Usagef("--timeout must not be negative")
	}
	return nil
}

// oneLine folds a message onto one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

var errUnhealthy = errors.New("a gateway meant to run is not up")
