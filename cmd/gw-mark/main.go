// Command gw-mark writes, checks and clears the planned-stop marker, for scripts and for
// supervisors other than s6 (a systemd ExecStop=, a Kubernetes preStop hook). See
// docs/gw-mark.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/marker"
	"github.com/s6gate/s6gate/pkg/proc"
	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/s6"
	"github.com/s6gate/s6gate/pkg/safedir"
	"github.com/s6gate/s6gate/pkg/slot"
	"github.com/s6gate/s6gate/pkg/svcuser"
)

const usage = `usage:
  gw-mark write -p NAME [PID]
  gw-mark check -p NAME [PID]
  gw-mark clear -p NAME
`

// errNotPlanned makes check exit 1 without an error message prefix: "not planned" is an
// answer, not a failure.
var errNotPlanned = errors.New("not planned")

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitcode.Usage
	}
	if args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		return exitcode.OK
	}
	verb := args[0]
	err := do(verb, args[1:], stdout)
	if err != nil && !errors.Is(err, errNotPlanned) {
		fmt.Fprintf(stderr, "gw-mark: %s: %s\n", verb, strings.Join(strings.Fields(err.Error()), " "))
	}
	return exitcode.Of(err)
}

func do(verb string, args []string, stdout io.Writer) error {
	if verb != "write" && verb != "check" && verb != "clear" {
		return exitcode.Usagef("unknown action %q (want write, check or clear)", verb)
	}
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("p", "", "profile name")
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return exitcode.Usagef("%v", err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos, args = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	maxPos := 1
	if verb == "clear" {
		maxPos = 0
	}
	if *name == "" {
		return exitcode.Usagef("-p NAME is required")
	}
	if len(pos) > maxPos {
		return exitcode.Usagef("unexpected argument %q", pos[len(pos)-1])
	}
	if err := profile.Validate(*name); err != nil {
		return err
	}
	pid := 0
	if len(pos) == 1 {
		n, err := strconv.Atoi(pos[0])
		if err != nil || n <= 0 {
			return exitcode.Usagef("PID %q: want a positive number", pos[0])
		}
		pid = n
	}
	s, err := config.FromEnv(os.Getenv)
	if err != nil {
		return err
	}
	if err := s.CheckHome(); err != nil {
		return err
	}
	// Everything from here on acts as the service user (SPEC §11).
	if _, err := svcuser.Become(s.User); err != nil {
		return err
	}
	if verb == "write" && pid == 0 {
		if pid, err = supervisedPID(s, *name); err != nil {
			return err
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
		m := marker.For(pid, now)
		if err := marker.Write(home, m); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "marked pid %d of '%s' for a planned stop (valid %s)\n", pid, *name, marker.TTL)
		return nil
	default: // check: consumes the marker, as the gateway's own check does
		if pid == 0 {
			pid = os.Getppid()
		}
		var start *uint64
		if st, err := proc.StartTime(pid); err == nil {
			start = &st
		}
		planned, reason, err := marker.Consume(home, pid, start, now)
		fmt.Fprintf(stdout, "%s\n", reason)
		if err != nil {
			return err
		}
		if !planned {
			return errNotPlanned
		}
		return nil
	}
}

// supervisedPID is the PID s6 supervises in the profile's slot.
func supervisedPID(s config.Settings, name string) (int, error) {
	if err := slot.Check(s.ScanDir, name); err != nil {
		return 0, fmt.Errorf("no PID given and %w", err)
	}
	st, err := s6.Tools{Dir: s.CommandDir}.ReadStatus(context.Background(), slot.Path(s.ScanDir, name))
	if err != nil {
		return 0, fmt.Errorf("no PID given and the slot's status is unreadable: %w", err)
	}
	if !st.Up {
		return 0, fmt.Errorf("no PID given and gateway '%s' is not up", name)
	}
	return st.PID, nil
}
