package gateway

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/s6gate/s6gate/pkg/gatewayrun"
	"github.com/s6gate/s6gate/pkg/gwlog"
	"github.com/s6gate/s6gate/pkg/operator"
	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/slot"
	"github.com/s6gate/s6gate/pkg/state"
	"github.com/s6gate/s6gate/pkg/svchealth"
)

func dispatch(ctx context.Context, op *operator.Operator, verb string, c *cmdline, out io.Writer) error {
	switch verb {
	case "register":
		env, err := profile.ParseEnv(c.env)
		if err != nil {
			return err
		}
		r, err := op.Register(ctx, c.profile, operator.RegisterOptions{Env: env, Command: c.command, Start: c.start})
		if err != nil {
			return err
		}
		if c.start {
			fmt.Fprintf(out, "registered and started gateway '%s' (pid %d)\n", r.Profile, r.PID)
		} else {
			fmt.Fprintf(out, "registered gateway '%s' (down); start it with: gateway start -p %s\n", r.Profile, r.Profile)
		}
		return nil
	case "unregister":
		r, err := op.Unregister(ctx, c.profile, operator.UnregisterOptions{Purge: c.purge})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "gateway '%s': %s\n", r.Profile, r.Note)
		return nil
	case "update":
		return updateVerb(ctx, op, c, out)
	case "start", "stop", "restart":
		return upDownVerb(ctx, op, verb, c, out)
	case "status":
		var names []string
		if c.profile != "" {
			names = []string{c.profile}
		}
		st, err := op.Status(ctx, names)
		if err != nil {
			return err
		}
		if c.json {
			err = writeStatusJSON(out, st)
		} else {
			writeStatusTable(out, st, time.Now())
			if c.profile != "" && !c.check {
				writeLogTail(out, op.Settings.Home, c.profile, statusLogLines)
			}
		}
		if err == nil && c.check {
			return checkHealth(st, c.services, op.Settings.HealthGrace, time.Now())
		}
		return err
	case "list":
		names, err := op.List(ctx)
		if err != nil {
			return err
		}
		if !c.json {
			bw := bufio.NewWriter(out) // one write, not one per name
			for _, n := range names {
				fmt.Fprintln(bw, n)
			}
			return bw.Flush()
		}
		type entry struct {
			Profile string `json:"profile"`
			Slot    string `json:"slot"`
			Home    string `json:"home"`
		}
		list := make([]entry, 0, len(names))
		for _, n := range names {
			list = append(list, entry{n, slot.Path(op.Settings.ScanDir, n), profile.Home(op.Settings.Home, n)})
		}
		return writeJSON(out, list)
	case "logs":
		return logsVerb(ctx, op, c, out)
	}
	return fmt.Errorf("verb %q not implemented", verb)
}

func upDownVerb(ctx context.Context, op *operator.Operator, verb string, c *cmdline, out io.Writer) error {
	past := map[string]string{"start": "started", "stop": "stopped", "restart": "restarted"}[verb]
	report := func(r operator.Result) {
		if r.PID > 0 && verb != "stop" {
			fmt.Fprintf(out, "%s gateway '%s' (pid %d)\n", past, r.Profile, r.PID)
		} else {
			fmt.Fprintf(out, "%s gateway '%s'\n", past, r.Profile)
		}
	}
	if c.all {
		var results []operator.Result
		var err error
		switch verb {
		case "stop":
			results, err = op.StopAll(ctx)
		case "restart":
			results, err = op.RestartAll(ctx)
		default:
			results, err = op.StartAll(ctx)
		}
		if err != nil {
			return err
		}
		for _, r := range results {
			switch {
			case r.Skipped:
				fmt.Fprintf(out, "left gateway '%s' as it is: %s (start it with: gateway start -p %s)\n", r.Profile, r.Note, r.Profile)
			case r.Err == nil:
				report(r)
			}
		}
		return operator.Joined(results)
	}
	var r operator.Result
	var err error
	switch verb {
	case "start":
		r, err = op.Start(ctx, c.profile)
	case "stop":
		r, err = op.Stop(ctx, c.profile)
	default:
		r, err = op.Restart(ctx, c.profile)
	}
	if err != nil {
		return err
	}
	report(r)
	return nil
}

// updateVerb applies profile.json (after the flags' changes) to one gateway, or to every
// gateway whose profile.json was edited (--all), printing what changed.
func updateVerb(ctx context.Context, op *operator.Operator, c *cmdline, out io.Writer) error {
	report := func(r operator.UpdateResult) {
		switch {
		case r.Note == "unchanged":
			fmt.Fprintf(out, "gateway '%s': unchanged (it already runs what profile.json says)\n", r.Profile)
			return
		case r.Restarted:
			fmt.Fprintf(out, "updated gateway '%s' and restarted it (pid %d)\n", r.Profile, r.PID)
		default:
			fmt.Fprintf(out, "updated gateway '%s' (not running: it stays down; its next start runs the new configuration)\n", r.Profile)
		}
		if r.Unknown {
			fmt.Fprintf(out, "  (its slot did not record what it ran; rendered anew from profile.json)\n")
		}
		for _, ch := range r.Changes {
			fmt.Fprintf(out, "  %s\n", ch)
		}
	}
	if !c.all {
		env, err := profile.ParseEnv(c.env)
		if err != nil {
			return err
		}
		r, err := op.Update(ctx, c.profile, operator.UpdateOptions{Env: env, UnsetEnv: c.unsetEnv, Command: c.command})
		if err != nil {
			if r.Restarted {
				report(r) // the slot is new; the restart into it failed
			}
			return err
		}
		report(r)
		return nil
	}
	results, err := op.UpdateAll(ctx)
	if err != nil {
		return err
	}
	if len(results) == 0 {
		fmt.Fprintln(out, "no profile.json was edited since its gateway's slot was rendered; nothing to update")
	}
	var errs []error
	for _, r := range results {
		if r.Err != nil && !r.Restarted {
			errs = append(errs, r.Err)
			continue
		}
		report(r)
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	return errors.Join(errs...)
}

// statusLogLines is how many log lines `status -p NAME` shows under the table.
const statusLogLines = 5

// writeLogTail prints the last n lines of a gateway's log, indented, under a heading; a log
// that cannot be read (not written yet) prints nothing.
func writeLogTail(out io.Writer, root, name string, n int) {
	l, err := gwlog.OpenProfile(root, name)
	if err != nil {
		return
	}
	defer l.Close()
	lines, err := l.Tail(n)
	if err != nil || len(lines) == 0 {
		return
	}
	fmt.Fprintf(out, "\nlast %d log lines (gateway logs -p %s):\n", len(lines), name)
	for _, line := range lines {
		fmt.Fprintf(out, "  %s\n", line)
	}
}

// printStartLog shows, after the one error line, the last log lines of gateways that failed to
// start, so the reason is on screen without looking for the log.
func printStartLog(w io.Writer, err error) {
	for _, e := range startFailures(err) {
		if len(e.Log) == 0 {
			continue
		}
		fmt.Fprintf(w, "last %d log lines of gateway '%s':\n", len(e.Log), e.Profile)
		for _, l := range e.Log {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
}

// startFailures finds every *operator.StartFailedError in err (a joined --all error has many).
func startFailures(err error) []*operator.StartFailedError {
	if e, ok := err.(*operator.StartFailedError); ok {
		return []*operator.StartFailedError{e}
	}
	var out []*operator.StartFailedError
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			out = append(out, startFailures(e)...)
		}
	case interface{ Unwrap() error }:
		out = startFailures(u.Unwrap())
	}
	return out
}

// errUnhealthy is status --check's failure: a gateway meant to run is failed, or has not been
// serving for longer than GATEWAY_HEALTH_GRACE, or a service of the container's own is not
// serving (svchealth). The error names every one and the rule it broke.
var errUnhealthy = errors.New("unhealthy")

// checkHealth is status --check's verdict: nil, or one line (for the health check's output)
// of full sentences, one per unhealthy gateway, then one per service of the container.
func checkHealth(st []operator.GatewayStatus, services []svchealth.Problem, grace time.Duration, now time.Time) error {
	var why []string
	for _, g := range st {
		if g.Healthy {
			continue
		}
		switch {
		case g.Failed:
			why = append(why, fmt.Sprintf("Gateway '%s' is meant to run and has failed: %s (gateway start -p %[1]s tries again).", g.Profile, strings.TrimSuffix(g.FailedReason, ".")))
		case g.DownSince != nil:
			why = append(why, fmt.Sprintf("Gateway '%s' is meant to run and has not been serving for %s, longer than GATEWAY_HEALTH_GRACE (%s).", g.Profile, roundDuration(now.Sub(*g.DownSince)), grace))
		case g.Problem != "":
			why = append(why, fmt.Sprintf("Gateway '%s' is meant to run and is not serving: %s.", g.Profile, strings.TrimSuffix(g.Problem, ".")))
		default:
			why = append(why, fmt.Sprintf("Gateway '%s' is meant to run and is not serving.", g.Profile))
		}
	}
	for _, p := range services {
		why = append(why, fmt.Sprintf("The container's service %s is meant to run and has not been serving: %s.", p.Service, strings.TrimSuffix(p.Why, ".")))
	}
	if len(why) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %s", errUnhealthy, strings.Join(why, " "))
}

func writeJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// writeStatusJSON writes the status as JSON in one write: what writeJSON writes, by
// operator.AppendStatusJSON (a 1,000-gateway status is about 540 kB, and encoding/json's
// reflection and indenting pass were most of the CPU time left in the verb).
func writeStatusJSON(out io.Writer, st []operator.GatewayStatus) error {
	b, ok := operator.AppendStatusJSON(make([]byte, 0, 768*len(st)+8), st)
	if !ok {
		return writeJSON(out, st) // for encoding/json's error
	}
	_, err := out.Write(b)
	return err
}

func writeStatusTable(out io.Writer, st []operator.GatewayStatus, now time.Time) {
	// Buffered: the tabwriter writes every cell on its own, which unbuffered to stdout was a
	// write(2) per cell (19,000 for 1,000 gateways).
	bw := bufio.NewWriterSize(out, 64<<10)
	defer bw.Flush()
	tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROFILE\tS6\tPID\tUPTIME\tRESTARTS\tLAST EXIT\tSTATE\tDESIRED\tNOTE")
	for _, g := range st {
		s6 := "down"
		switch {
		case !g.Supervised:
			s6 = "unsupervised"
		case g.Failed && !g.Up:
			s6 = "failed"
		case g.BackoffUntil != nil:
			s6 = "backoff"
		case g.Up && !g.Ready:
			s6 = "up (not ready)"
		case g.Up:
			s6 = "up"
		}
		pid, uptime, lastExit := "-", "-", "-"
		if g.PID != nil {
			pid = strconv.Itoa(*g.PID)
		}
		if g.Uptime != nil {
			uptime = roundDuration(time.Duration(*g.Uptime * float64(time.Second)))
		}
		if e := g.LastExit; e != nil {
			lastExit = strings.TrimPrefix(strings.TrimPrefix(e.String(), "exited with "), "killed by ")
			if at := state.ParseTime(e.At); !at.IsZero() {
				lastExit += ", " + roundDuration(now.Sub(at)) + " ago"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", g.Profile, s6, pid, uptime, g.Restarts, lastExit,
			shownState(g), deref(g.DesiredState), strings.Join(strings.Fields(statusNote(g, now)), " "))
	}
	tw.Flush()
}

// statusNote is the NOTE column: what needs explaining first, and, after it, an edit of
// profile.json that is not applied yet (never left unsaid).
func statusNote(g operator.GatewayStatus, now time.Time) string {
	note := stateNote(g, now)
	if g.ProfileChanged {
		changed := "profile.json changed since the gateway's slot was rendered; apply it with: gateway update " + g.Profile
		if note == "" {
			return changed
		}
		return note + "; " + changed
	}
	return note
}

// stateNote is what the NOTE column says about the gateway's state.
func stateNote(g operator.GatewayStatus, now time.Time) string {
	switch {
	case g.Problem != "":
		return g.Problem
	case g.Failed:
		return "failed: " + g.FailedReason + "; start it again with: gateway start -p " + g.Profile
	case g.BackoffUntil != nil:
		return fmt.Sprintf("backing off after %d consecutive failures; next start in %s", g.ConsecutiveFailures, roundDuration(g.BackoffUntil.Sub(now)))
	case g.SettleUntil != nil:
		return "settling: counts as started in " + roundDuration(g.SettleUntil.Sub(now))
	case !g.Up && g.ExitReason != "":
		return plainReason(g.ExitReason)
	case !g.Healthy:
		return "meant to run but not serving"
	}
	return ""
}

// shownState is the STATE column: the recorded gateway_state, unless s6 contradicts it. The
// record is the gateway's last word; a gateway that s6 has down is not starting, running or
// draining whatever it last wrote (a crash-looping gateway then stopped read "down … starting"),
// and one s6 has up has not stopped (the new process has not written yet). --json keeps the
// record as it is.
func shownState(g operator.GatewayStatus) string {
	st := deref(g.GatewayState)
	if !g.Supervised {
		return st
	}
	switch {
	case !g.Up && (st == state.Starting || st == state.Running || st == state.Draining):
		return state.Stopped
	case g.Up && (st == state.Stopped || st == state.StartupFailed):
		return state.Starting
	}
	return st
}

// plainReason words a recorded exit_reason for the NOTE column. The record is for the
// gateway's own log ("planned stop: SIGTERM: marker written by pid 617 matches pid 512",
// "command exited: command exited with status 3"); an operator wants what happened, which
// stays true after a reboot.
func plainReason(r string) string {
	cut := func(reason gatewayrun.Reason) (string, bool) {
		rest, ok := strings.CutPrefix(r, reason.String())
		return strings.TrimPrefix(rest, ": "), ok
	}
	if _, ok := cut(gatewayrun.Planned); ok {
		return "stopped by an operator (gateway stop)"
	}
	if _, ok := cut(gatewayrun.Restart); ok {
		return "restarted by an operator (gateway restart)"
	}
	if rest, ok := cut(gatewayrun.Unplanned); ok {
		if strings.Contains(rest, gatewayrun.Restart.String()) {
			return "restarted by an operator (gateway restart)"
		}
		return "stopped by a signal, not by gateway stop (a container stop, s6-svc, a kill): meant to run again"
	}
	if rest, ok := cut(gatewayrun.FatalConfig); ok {
		return "cannot run as configured: " + rest
	}
	if rest, ok := cut(gatewayrun.ChildExited); ok {
		if strings.HasPrefix(rest, "command ") {
			return "the " + rest
		}
		return "the command " + rest
	}
	return r
}

// roundDuration prints d to the second (to the tenth below 10 s): "0.4s", "3m12s".
func roundDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	if d < 10*time.Second {
		return d.Round(100 * time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func deref(s *string) string {
	if s == nil || *s == "" {
		return "-"
	}
	return strings.TrimSpace(*s)
}
