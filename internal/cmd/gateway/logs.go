package gateway

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"

	"github.com/s6gate/s6gate/pkg/gwlog"
	"github.com/s6gate/s6gate/pkg/operator"
	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/slot"
)

// defaultLogLines is how many lines `gateway logs` prints without -n, like tail(1).
const defaultLogLines = 10

// logsArgs are the flags of the logs verb.
type logsArgs struct {
	n      lineCount
	follow bool
}

// define defines the logs verb's flag f ("n" or "f") on fs.
func (a *logsArgs) define(fs *flag.FlagSet, f string) {
	switch f {
	case "n":
		a.n = defaultLogLines
		fs.Var(&a.n, "n", "print the last N lines")
	case "f":
		fs.BoolVar(&a.follow, "f", false, "keep printing new lines until interrupted")
	}
}

// lineCount is -n: a number of lines, never negative (a usage error, like every bad flag).
type lineCount int

func (c *lineCount) String() string { return strconv.Itoa(int(*c)) }

func (c *lineCount) Set(s string) error {
	n, err := strconv.Atoi(s)
	if err != nil {
		return errors.New("not a whole number")
	}
	if n < 0 {
		return errors.New("must not be negative")
	}
	*c = lineCount(n)
	return nil
}

// logsVerb prints a gateway's log (-p NAME, or the default profile) or the merged log of every
// registered gateway (--all, each line prefixed with its profile): the last -n lines, then,
// with -f, new lines as s6-log writes them until SIGINT or SIGTERM, or until its reader is gone
// (whileReaderStays). It only reads.
func logsVerb(ctx context.Context, op *operator.Operator, c *cmdline, out io.Writer) error {
	// The listing `gateway list` and `status` use (it checks the data root and waits for the boot).
	names, err := op.List(ctx)
	if err != nil {
		return err
	}
	if !c.all {
		if err := slot.Check(op.Settings.ScanDir, c.profile); err != nil {
			return err
		}
		names = []string{c.profile}
	}
	var srcs []gwlog.Source
	defer func() {
		for _, s := range srcs {
			s.Log.Close()
		}
	}()
	for _, name := range names {
		l, err := gwlog.OpenProfile(op.Settings.Home, name)
		if errors.Is(err, fs.ErrNotExist) {
			if c.all {
				continue // a gateway whose logger has not run yet has nothing to show
			}
			return fmt.Errorf("gateway '%s' has no log directory %s (its logger has not run yet)",
				name, filepath.Join(op.Settings.Home, profile.LogRel(name)))
		}
		if err != nil {
			return fmt.Errorf("log of gateway '%s': %w", name, err)
		}
		src := gwlog.Source{Log: l}
		if c.all {
			src.Name = name
		}
		srcs = append(srcs, src)
	}
	// A reader that goes away (`gateway logs | head`, a closed pipe) ends the verb, with exit 0
	// like tail(1)'s end by SIGPIPE: SIGPIPE is caught, so a write fails with EPIPE instead.
	sigpipe := make(chan os.Signal, 1)
	signal.Notify(sigpipe, syscall.SIGPIPE)
	defer signal.Stop(sigpipe)
	n := int(c.logs.n)
	if !c.logs.follow {
		lines, err := gwlog.TailAll(srcs, n)
		if err != nil {
			return err
		}
		w := bufio.NewWriter(out)
		for _, l := range lines {
			fmt.Fprintln(w, l)
		}
		return readerGone(w.Flush())
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if f, ok := out.(*os.File); ok {
		// Also while no line comes: a follower whose reader is gone must not live on.
		var unwatch func()
		ctx, unwatch = whileReaderStays(ctx, os.Stdin, f)
		defer unwatch()
	}
	return readerGone(gwlog.FollowAll(ctx, srcs, n, func(l gwlog.Line) error {
		_, err := fmt.Fprintln(out, l)
		return err
	}))
}

// readerGone turns a write that failed because the reader closed its end (EPIPE) into the
// verb's normal end.
func readerGone(err error) error {
	if errors.Is(err, syscall.EPIPE) {
		return nil
	}
	return err
}
