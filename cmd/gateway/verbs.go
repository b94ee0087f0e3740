package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/s6gate/s6gate/pkg/operator"
	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/slot"
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
		r, err := op.Unregister(ctx, c.profile)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "gateway '%s': %s\n", r.Profile, r.Note)
		return nil
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
			err = writeJSON(out, st)
		} else {
			writeStatusTable(out, st, time.Now())
		}
		if err == nil && c.check {
			for _, g := range st {
				if !g.Healthy() {
					return fmt.Errorf("%w: '%s'", errUnhealthy, g.Profile)
				}
			}
		}
		return err
	case "list":
		names, err := op.List(ctx)
		if err != nil {
			return err
		}
		if !c.json {
			for _, n := range names {
				fmt.Fprintln(out, n)
			}
			return nil
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
			if r.Err == nil {
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

// errUnhealthy is status --check's failure: a gateway meant to run is not up.
var errUnhealthy = errors.New("a gateway meant to run is not up")

func writeJSON(out io.Writer, v any) error {
	enc := json.NewEncoder(out)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeStatusTable(out io.Writer, st []operator.GatewayStatus, now time.Time) {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROFILE\tS6\tPID\tFOR\tSTATE\tDESIRED\tNOTE")
	for _, g := range st {
		s6 := "down"
		switch {
		case !g.Supervised:
			s6 = "unsupervised"
		case g.Up && !g.Ready:
			s6 = "up (not ready)"
		case g.Up:
			s6 = "up"
		}
		pid, since := "-", "-"
		if g.PID != nil {
			pid = strconv.Itoa(*g.PID)
		}
		if g.Since != nil {
			since = now.Sub(*g.Since).Round(time.Second).String()
		}
		note := g.Problem
		if note == "" && !g.Up && g.ExitReason != "" {
			note = g.ExitReason
		}
		if note == "" && !g.Healthy() {
			note = "meant to run but down"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", g.Profile, s6, pid, since, deref(g.GatewayState), deref(g.DesiredState), strings.Join(strings.Fields(note), " "))
	}
	tw.Flush()
}

func deref(s *string) string {
	if s == nil || *s == "" {
		return "-"
	}
	return strings.TrimSpace(*s)
}
