// Package gateway is the gateway command (cmd/gateway, and a name of the multi-call
// binary cmd/s6gate): is the per-profile supervised process (`gateway run`) and the operator verbs
// that register, start, stop and inspect gateways in an s6 scan directory. See docs/gateway.md.
package gateway

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/s6gate/s6gate/internal/cli"
	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/gatewayrun"
	"github.com/s6gate/s6gate/pkg/operator"
	"github.com/s6gate/s6gate/pkg/probe"
	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/slot"
	"github.com/s6gate/s6gate/pkg/svchealth"
	"github.com/s6gate/s6gate/pkg/svcuser"
	"github.com/s6gate/s6gate/pkg/svscan"
)

const usage = `usage:
  gateway run -p NAME [--replace] [--setenv NAME[=VALUE]]... [-- CMD...]
  gateway register NAME [--env K=V]... [--start] [--settle D] [--timeout D] [-- CMD...]
  gateway unregister NAME [--purge] [--timeout D]
  gateway update (NAME [--env K=V]... [--unset-env K]... [-- CMD...] | --all) [--settle D] [--timeout D]
  gateway start [-p NAME | --all] [--settle D] [--timeout D]
  gateway stop [-p NAME | --all] [--timeout D]
  gateway restart [-p NAME | --all] [--settle D] [--timeout D]
  gateway status [-p NAME] [--json] [--check] [--timeout D]
  gateway status --live | --ready
  gateway list [--json] [--timeout D]
  gateway logs [-p NAME | --all] [-n N] [-f] [--timeout D]
  gateway help [VERB]
  gateway version
`

// Main runs gateway with argv (argv[0] is the name it was started under; the
// arguments follow) and returns the exit code.
func Main(argv []string) int {
	return run(argv[min(1, len(argv)):], os.Stdout, os.Stderr)
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitcode.Usage
	}
	if cli.IsHelp(args[0]) {
		if args[0] == "help" && len(args) > 1 { // gateway help VERB
			text, err := verbHelp(args[1])
			if err != nil {
				return cli.Fail(stderr, "gateway", "help", err)
			}
			fmt.Fprint(stdout, text)
			return exitcode.OK
		}
		fmt.Fprint(stdout, usage)
		return exitcode.OK
	}
	if cli.IsVersion(args[0]) {
		cli.PrintVersion(stdout, "gateway", cmp.Or(os.Getenv("S6_COMMAND_DIR"), config.DefaultCommandDir))
		return exitcode.OK
	}
	verb := args[0]
	if code, ok := hidden(verb, args[1:], stdout, stderr); ok {
		return code
	}
	fail := func(err error) int {
		if verb == "run" { // to s6 (and its finish script) any setup failure is fatal configuration
			fmt.Fprintln(stderr, exitcode.Line("gateway", "run", fmt.Errorf("fatal configuration: %w", err)))
			return exitcode.FatalConfig
		}
		return cli.Fail(stderr, "gateway", verb, err)
	}
	c, err := parse(verb, args[1:])
	if errors.Is(err, flag.ErrHelp) { // gateway VERB --help
		text, _ := verbHelp(verb)
		fmt.Fprint(stdout, text)
		return exitcode.OK
	}
	if err == nil {
		// First thing, before anything reads the environment (the settings included): the
		// container's variables that an isolated supervisor's start dropped come back (gw-svscan
		// carried them), then the slot's --setenv, which the profile may use to override them.
		if verb == "run" {
			restoreKeptEnv()
		}
		err = slot.ApplySetenv(c.setenv)
	}
	if err != nil {
		return cli.Fail(stderr, "gateway", verb, err)
	}
	settings, err := config.FromEnv(os.Getenv)
	if err != nil {
		return fail(err)
	}
	// Liveness and readiness of the container (Kubernetes' probes): read as the caller is,
	// root's status files included; no wait, no verb lock, nothing written but svchealth's
	// history.
	if verb == "status" && (c.live || c.ready) {
		return probeVerdict(c.live, settings, stdout, stderr)
	}
	// The container's own services are the root tree's, readable only by root: the health
	// check looks at them first (reading s6's status files, nothing else), then becomes the
	// service user like every verb.
	if verb == "status" && c.check {
		c.services, err = svchealth.Check(svchealth.DefaultPaths(), time.Now(), settings.HealthGrace)
		if errors.Is(err, svchealth.ErrUnreadable) {
			err = nil // an operator's own check (not root): the gateways only
		}
		if err != nil {
			return fail(err)
		}
	}
	// Everything from here on acts as the service user: started as root, become it before
	// touching anything (SPEC §11).
	if err := svcuser.Drop(settings.User); err != nil {
		return fail(err)
	}
	ctx := context.Background()
	if verb == "run" {
		// One P: the gateway is a small resident wrapper, one per profile, so every byte of
		// per-P runtime state is paid a thousand times (docs/PERFORMANCE.md); it never needs
		// parallelism. Its child is not affected (GOMAXPROCS is not exported). Under exec
		// supervision it is gone within milliseconds: the change (it stops the world) would
		// cost more than it saves.
		exec := settings.Supervision == profile.SupervisionExec
		if !exec {
			runtime.GOMAXPROCS(1)
		}
		notify, _ := strconv.Atoi(os.Getenv("GATEWAY_NOTIFY_FD"))
		beat, err := config.ParseDuration(os.Getenv("GATEWAY_HEARTBEAT"), gatewayrun.DefaultHeartbeat)
		if err != nil {
			return fail(fmt.Errorf("GATEWAY_HEARTBEAT: %w", err))
		}
		return gatewayrun.Run(ctx, gatewayrun.Options{
			Settings: settings, Profile: c.profile, Replace: c.replace, Command: c.command,
			NotifyFD: notify, Heartbeat: beat, Logger: gatewayrun.NewLogger(stderr),
			Exec: exec,
		})
	}
	op := operator.New(settings, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if c.timeout > 0 {
		op.Timeout = c.timeout
	}
	op.Settle = c.settle
	if err := dispatch(ctx, op, verb, c, stdout); err != nil {
		code := fail(err)
		printStartLog(stderr, err)
		return code
	}
	return exitcode.OK
}

// probeVerdict prints the verdict of probe.Live or probe.Ready: one line on stdout and exit 0
// when it passes, one error line and exit 1 when it does not.
func probeVerdict(live bool, settings config.Settings, stdout, stderr io.Writer) int {
	p := probe.Paths{ScanDir: settings.ScanDir, Services: svchealth.DefaultPaths()}
	what, v := "ready", probe.Verdict{}
	if live {
		what, v = "live", probe.Live(p)
	} else {
		v = probe.Ready(p, time.Now(), settings.HealthGrace)
	}
	if v.Err != nil {
		return cli.Fail(stderr, "gateway", "status", fmt.Errorf("not %s: %w", what, v.Err))
	}
	if v.Partial {
		what += " (the root supervision tree is not readable by this user: not checked)"
	}
	fmt.Fprintln(stdout, what)
	return exitcode.OK
}

// restoreKeptEnv puts back in this process's environment the variables gw-svscan carried
// past an isolated slot's supervisor (svscan.RestoreKeptEnv), when there are any.
func restoreKeptEnv() {
	env := os.Environ()
	if !slices.ContainsFunc(env, func(kv string) bool { return strings.HasPrefix(kv, svscan.KeepEnvPrefix) }) {
		return
	}
	os.Clearenv()
	for _, kv := range svscan.RestoreKeptEnv(env) {
		if k, v, ok := strings.Cut(kv, "="); ok {
			os.Setenv(k, v)
		}
	}
}
