// Package gwmark is the gw-mark command (cmd/gw-mark, and a name of the multi-call
// binary cmd/s6gate): writes, checks and clears the planned-stop marker, for scripts and for
// supervisors other than s6 (a systemd ExecStop=, a Kubernetes preStop hook). See
// docs/gw-mark.md.
package gwmark

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/s6gate/s6gate/internal/cli"
	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/marker"
	"github.com/s6gate/s6gate/pkg/operator"
	"github.com/s6gate/s6gate/pkg/proc"
	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/safedir"
	"github.com/s6gate/s6gate/pkg/svcuser"
)

const usage = `usage:
  gw-mark write -p NAME [PID]
  gw-mark check -p NAME [PID]
  gw-mark clear -p NAME
`

// errNotPlanned makes check exit 1 without an error line: "not planned" is an answer, not a
// failure.
var errNotPlanned = errors.New("not planned")

// Main runs gw-mark with argv (argv[0] is the name it was started under; the
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
		fmt.Fprint(stdout, usage)
		return exitcode.OK
	}
	err := do(args[0], args[1:], stdout)
	if errors.Is(err, errNotPlanned) {
		return exitcode.Failed
	}
	if err != nil {
		return cli.Fail(stderr, "gw-mark", args[0], err)
	}
	return exitcode.OK
}

func do(verb string, args []string, stdout io.Writer) error {
	if verb != "write" && verb != "check" && verb != "clear" {
		return exitcode.Usagef("unknown action %q (want write, check or clear)", verb)
	}
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	name := fs.String("p", "", "profile name")
	a, err := cli.Parse(fs, args)
	if errors.Is(err, flag.ErrHelp) { // gw-mark ACTION --help
		fmt.Fprint(stdout, cli.VerbHelp(usage, "gw-mark", verb, fs))
		return nil
	}
	if err != nil {
		return err
	}
	maxPos := 1
	if verb == "clear" {
		maxPos = 0
	}
	switch {
	case *name == "":
		return exitcode.Usagef("-p NAME is required")
	case len(a.Positional) > maxPos:
		return exitcode.Usagef("unexpected argument %q", a.Positional[len(a.Positional)-1])
	case a.DashDash:
		return exitcode.Usagef("%s takes no command after --", verb)
	}
	if err := profile.Validate(*name); err != nil {
		return err
	}
	pid := 0
	if len(a.Positional) == 1 {
		if pid, err = strconv.Atoi(a.Positional[0]); err != nil || pid <= 0 {
			return exitcode.Usagef("PID %q: want a positive number", a.Positional[0])
		}
	}
	s, err := config.FromEnv(os.Getenv)
	if err != nil {
		return err
	}
	if err := s.CheckHome(); err != nil {
		return err
	}
	// Everything from here on acts as the service user (SPEC §11).
	if err := svcuser.Drop(s.User); err != nil {
		return err
	}
	if verb == "write" && pid == 0 {
		if pid, err = operator.New(s, nil).SupervisedPID(context.Background(), *name); err != nil {
			return fmt.Errorf("no PID given and %w", err)
		}
	}
	home, err := safedir.Open(s.Home, profile.HomeRel(*name))
	if err != nil {
		return fmt.Errorf("profile '%s': %w", *name, err)
	}
	defer home.Close()
	now := time.Now()
	switch verb {
	case "clear":
		return home.Remove(marker.FileName)
	case "write":
		if err := marker.Write(home, marker.For(pid, now)); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "marked pid %d of '%s' for a planned stop (valid %s)\n", pid, *name, marker.TTL)
		return nil
	}
	// check consumes the marker, as the gateway's own check does.
	if pid == 0 {
		pid = os.Getppid()
	}
	var start *uint64
	if st, err := proc.StartTime(pid); err == nil {
		start = &st
	}
	planned, reason, err := marker.Consume(home, pid, start, now)
	fmt.Fprintln(stdout, reason)
	if err == nil && !planned {
		err = errNotPlanned
	}
	return err
}
