package gatewayrun

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/internal/settlefork"
	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/state"
)

// SettleName is the process name of the settle child (what ps and /proc/PID/comm show).
const SettleName = "gateway-settle"

// placeholder is the time written into the settle child's prepared record and log line, whose
// digits it replaces with the time it writes them at.
var placeholder = time.Date(2006, 1, 2, 15, 4, 5, 0, time.UTC)

// startSettle starts what settles an exec-supervised command: for a command that only has to
// stay up for its settle time (no readiness check, no failures to clear once it is stable),
// a fork of this process (package settlefork), which starts no program; otherwise, or when
// the fork cannot be prepared, the watcher program. It returns the PID to kill should the
// exec not happen.
func (g *gateway) startSettle(s6fd, readyR, execR int) (int, error) {
	if g.o.WatcherProgram || readyR >= 0 || g.policy.Ready != (profile.Ready{}) || g.failures != 0 {
		return g.startWatcher(s6fd, readyR, execR)
	}
	plan, err := g.settlePlan(s6fd, execR)
	if err == nil {
		var pid int
		if pid, err = settlefork.Start(plan); err == nil {
			return pid, nil
		}
	}
	g.log.Debug("settling with the watcher program", "why", err)
	return g.startWatcher(s6fd, readyR, execR)
}

// settlePlan prepares the settle child: the state file as `gateway run` just wrote it (it
// must name this process as starting), the running record to swap in, the log lines, and the
// watcher program to hand over to when the record changed meanwhile.
func (g *gateway) settlePlan(s6fd, execR int) (*settlefork.Plan, error) {
	b, err := g.home.ReadFile(state.FileName, state.MaxSize)
	if err != nil {
		return nil, err
	}
	cur, _, err := state.Parse(b)
	if err != nil {
		return nil, err
	}
	if cur.PID != g.pid || cur.GatewayState != state.Starting || !sameStart(cur.StartTime, g.start) || g.start == nil {
		return nil, errors.New("the state file does not name this gateway as starting")
	}
	if os.Geteuid() == 0 {
		// safedir.WriteFile keeps another owner's file that owner's; the child cannot chown.
		if st, err := g.home.Lstat(state.FileName); err != nil || st.Uid != 0 || st.Gid != 0 {
			return nil, errors.New("run by root on a file it does not own")
		}
	}
	next, err := state.Apply(b, placeholder, func(s *state.State) { s.GatewayState, s.DownSince = state.Running, "" })
	if err != nil {
		return nil, err
	}
	// The top-level member (indented by two spaces), not a nested one of a foreign key.
	key := "\n  \"updated_at\": \""
	nextAt := bytes.Index(next, []byte(key+placeholder.Format(settlefork.TimeLayout)+`"`))
	if nextAt < 0 {
		return nil, errors.New("no updated_at in the record")
	}
	nextAt += len(key)
	started, startedAt, err := logLine("gateway started", g.o.Profile, startedAttrs(g.pid, g.policy.SettleTime(), g.policy.Ready)...)
	if err != nil {
		return nil, err
	}
	handOff, handOffAt, err := logLine("settle: the state file changed while the command settled; the watcher program takes over", g.o.Profile, "pid", g.pid)
	if err != nil {
		return nil, err
	}
	self, argv, err := g.watcherArgv(s6fd >= 0, false, false)
	if err != nil {
		return nil, err
	}
	var mono unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &mono); err != nil {
		return nil, err
	}
	// The command starts now (g.childStart was taken a moment ago): settled at now + settle.
	deadline := mono.Nano() + int64(g.policy.SettleTime()-time.Since(g.childStart))
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	return &settlefork.Plan{
		Name:   SettleName,
		HomeFD: g.home.Fd(), ExecFD: execR, NotifyFD: s6fd, LogFD: 2,
		PID: g.pid, StartTime: *g.start, Deadline: deadline,
		StateFile: state.FileName,
		TempFile:  "." + state.FileName + strconv.FormatUint(binary.LittleEndian.Uint64(rnd[:]), 10),
		Mode:      uint32(state.Mode.Perm()),
		Expect:    b, Next: next, NextTimeAt: nextAt,
		LogLine: started, LogTimeAt: startedAt, HandOffLine: handOff, HandOffAt: handOffAt,
		Path: self, Argv: argv, Env: os.Environ(),
	}, nil
}

// logLine is the line the watcher program would log (a text handler on stderr), timed at
// placeholder, and the offset of that time in it.
func logLine(msg, profileName string, attrs ...any) ([]byte, int, error) {
	var buf bytes.Buffer
	l := slog.New(slog.NewTextHandler(&buf, nil)).With("profile", profileName)
	r := slog.NewRecord(placeholder, slog.LevelInfo, msg, 0)
	r.Add(attrs...)
	if err := l.Handler().Handle(context.Background(), r); err != nil {
		return nil, 0, err
	}
	at := bytes.Index(buf.Bytes(), []byte("time="+placeholder.Format(settlefork.LogTimeLayout)))
	if at < 0 {
		return nil, 0, fmt.Errorf("no time in the log line %q", buf.String())
	}
	return buf.Bytes(), at + len("time="), nil
}
