package s6_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/internal/s6test"
	"github.com/s6gate/s6gate/pkg/s6"
	"github.com/s6gate/s6gate/pkg/safedir"
)

// supervise/status files captured from Debian's s6-supervise 2.11.3.2.
var (
	// up (pid 5935), want up, last death by SIGTERM (wstat kept from the previous run).
	status211Up = "400000006b023ad82c981061400000006b0239800bdfe3c0000000000000172f000f04"
	// down (signal SIGTERM), want down, ready.
	status211DownSignal = "400000006b023ad82ce4ffa0400000006b023ad82cf65f670000000000000000000f08"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	require.NoError(t, err)
	return b
}

func TestParseStatusFile(t *testing.T) {
	up, err := s6.ParseStatusFile(mustHex(t, status211Up))
	require.NoError(t, err)
	assert.True(t, up.Up)
	assert.Equal(t, 5935, up.PID)
	assert.True(t, up.WantUp)
	assert.Equal(t, -1, up.ExitCode)
	assert.Equal(t, 0, up.Signal)
	assert.Equal(t, int64(0x6b023ad8-37), up.Since.Unix())

	down, err := s6.ParseStatusFile(mustHex(t, status211DownSignal))
	require.NoError(t, err)
	assert.False(t, down.Up)
	assert.Zero(t, down.PID)
	assert.False(t, down.WantUp)
	assert.True(t, down.Ready)
	assert.Equal(t, 15, down.Signal)
	assert.Equal(t, -1, down.ExitCode)

	// Exit code 3, built from the 2.11 layout.
	b := mustHex(t, status211DownSignal)
	b[32], b[33] = 3, 0
	exited, err := s6.ParseStatusFile(b)
	require.NoError(t, err)
	assert.Equal(t, 3, exited.ExitCode)
	assert.Equal(t, 0, exited.Signal)

	// The newer layout: pid, then pgid, then wstat and flags 8 bytes later.
	newer := make([]byte, 43)
	copy(newer, mustHex(t, status211Up)[:24])
	newer[31] = 0x2a // pid 42
	newer[39] = 0x2a // pgid 42
	newer[42] = 0x04 | 0x08
	st, err := s6.ParseStatusFile(newer)
	require.NoError(t, err)
	assert.True(t, st.Up)
	assert.Equal(t, 42, st.PID)
	assert.True(t, st.Ready)

	// Finishing: the pid is the finish script's, the service is not up.
	fin := mustHex(t, status211Up)
	fin[34] |= 0x02
	st, err = s6.ParseStatusFile(fin)
	require.NoError(t, err)
	assert.False(t, st.Up)
	assert.True(t, st.Finishing)

	_, err = s6.ParseStatusFile(make([]byte, 20))
	assert.ErrorContains(t, err, "unknown layout")
}

func TestParseSvstat(t *testing.T) {
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want s6.Status
	}{
		{"up (pid 42) 17 seconds\n", s6.Status{Supervised: true, Up: true, PID: 42, NormallyUp: true, WantUp: true, ExitCode: -1, Since: now.Add(-17 * time.Second)}},
		{"up (pid 4242) 17 seconds\n", s6.Status{Supervised: true, Up: true, PID: 4242, NormallyUp: true, WantUp: true, ExitCode: -1, Since: now.Add(-17 * time.Second)}},
		{"up (pid 42 pgid 42) 3 seconds, normally down, want down, ready 3 seconds", s6.Status{Supervised: true, Up: true, PID: 42, Ready: true, ExitCode: -1, Since: now.Add(-3 * time.Second)}},
		{"up (pid 5269) 1 seconds, want down", s6.Status{Supervised: true, Up: true, PID: 5269, NormallyUp: true, ExitCode: -1, Since: now.Add(-time.Second)}},
		{"up (pid 5952) 0 seconds, paused", s6.Status{Supervised: true, Up: true, PID: 5952, NormallyUp: true, WantUp: true, Paused: true, ExitCode: -1, Since: now}},
		{"down (exitcode 0) 3 seconds, normally up, ready 3 seconds", s6.Status{Supervised: true, NormallyUp: true, Ready: true, ExitCode: 0, Since: now.Add(-3 * time.Second)}},
		{"down (signal SIGTERM) 0 seconds, normally up, ready 0 seconds", s6.Status{Supervised: true, NormallyUp: true, Ready: true, ExitCode: -1, Signal: 15, Since: now}},
		{"down 5 seconds\n", s6.Status{Supervised: true, ExitCode: -1, Since: now.Add(-5 * time.Second)}},
		{"down (exitcode 1) 2 seconds, normally up, want up", s6.Status{Supervised: true, NormallyUp: true, WantUp: true, ExitCode: 1, Since: now.Add(-2 * time.Second)}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := s6.ParseSvstat(tt.in, now)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	for _, bad := range []string{"", "running", "up 5 seconds", "up (pid x) 3 seconds"} {
		_, err := s6.ParseSvstat(bad, now)
		assert.Error(t, err, bad)
	}
}

func TestParseSvstatFields(t *testing.T) {
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	fields := []string{"up", "wantedup", "normallyup", "ready", "paused", "pid", "exitcode", "signum", "updownfor"}
	// Captured from s6-svstat 2.11: a down service killed by SIGTERM, then the same service up.
	down, err := s6.ParseSvstatFields(fields, "false false false false false -1 -1 15 0\n", now)
	require.NoError(t, err)
	assert.Equal(t, s6.Status{Supervised: true, ExitCode: -1, Signal: 15, Since: now}, down)
	up, err := s6.ParseSvstatFields(fields, "true true true false false 5952 -1 -1 12\n", now)
	require.NoError(t, err)
	assert.Equal(t, s6.Status{Supervised: true, Up: true, WantUp: true, NormallyUp: true, PID: 5952, ExitCode: -1, Since: now.Add(-12 * time.Second)}, up)

	_, err = s6.ParseSvstatFields(fields, "true 1", now)
	assert.Error(t, err)
	_, err = s6.ParseSvstatFields([]string{"pid"}, "abc", now)
	assert.Error(t, err)
}

func TestDetect(t *testing.T) {
	setup := func(t *testing.T, comm *string, basedir bool) (string, string) {
		root := t.TempDir()
		proc := filepath.Join(root, "proc")
		require.NoError(t, os.MkdirAll(filepath.Join(proc, "1"), 0o755))
		if comm != nil {
			require.NoError(t, os.WriteFile(filepath.Join(proc, "1", "comm"), []byte(*comm+"\n"), 0o644))
		}
		base := filepath.Join(root, "run", "s6", "basedir")
		if basedir {
			require.NoError(t, os.MkdirAll(base, 0o755))
		}
		return proc, base
	}
	str := func(s string) *string { return &s }
	tests := []struct {
		name    string
		comm    *string
		basedir bool
		want    bool
	}{
		{"s6-svscan and basedir", str("s6-svscan"), true, true},
		{"systemd with a stray basedir", str("systemd"), true, false},
		{"s6-svscan name without basedir", str("s6-svscan"), false, false},
		{"no /proc/1/comm", nil, false, false},
		{"no /proc/1/comm but basedir", nil, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proc, base := setup(t, tt.comm, tt.basedir)
			assert.Equal(t, tt.want, s6.Detect(proc, base))
		})
	}
	assert.False(t, s6.Detect(filepath.Join(t.TempDir(), "no-proc"), "/"), "missing /proc means not s6")

	// docker run --init: PID 1 is docker-init; /init recorded the s6-svscan it started.
	proc, base := setup(t, str("docker-init"), true)
	assert.False(t, s6.Detect(proc, base), "no svscan.pid yet")
	require.NoError(t, os.MkdirAll(filepath.Join(proc, "7"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(proc, "7", "comm"), []byte("s6-svscan\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(filepath.Dir(base), "svscan.pid"), []byte("7\n"), 0o644))
	assert.True(t, s6.Detect(proc, base), "the recorded s6-svscan is alive")
	require.NoError(t, os.WriteFile(filepath.Join(proc, "7", "comm"), []byte("sleep\n"), 0o644))
	assert.False(t, s6.Detect(proc, base), "a recycled PID that is not s6-svscan")
	// Unreadable comm (as /proc hides PID 1 from an unprivileged user): fail closed, never
	// panic or error. A directory in its place makes the read fail for root too.
	unreadable, base := setup(t, nil, true)
	require.NoError(t, os.Mkdir(filepath.Join(unreadable, "1", "comm"), 0o755))
	assert.False(t, s6.Detect(unreadable, base))
}

func TestCommandErrorCarriesRCAndStderr(t *testing.T) {
	cmdDir := s6test.CommandDir(t, map[string]string{
		"s6-svc": s6test.FailingTool(t, 111, "s6-svc: fatal: unable to control supervise/control: Permission denied"),
	})
	err := s6.Tools{Dir: cmdDir}.Run(context.Background(), "gateway-coder", "start", "s6-svc", "-u", "/x")
	require.Error(t, err)
	var ce *s6.CommandError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "gateway-coder", ce.Object)
	assert.Equal(t, "start", ce.Action)
	assert.Equal(t, 111, ce.ExitCode)
	assert.Contains(t, ce.Stderr, "Permission denied")
	assert.Contains(t, err.Error(), "rc=111")
	assert.Contains(t, err.Error(), "Permission denied")
	assert.Contains(t, err.Error(), "gateway-coder")

	err = s6.Tools{Dir: t.TempDir()}.Run(context.Background(), "x", "start", "s6-svc")
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, -1, ce.ExitCode, "a missing tool has no exit code")
	assert.Error(t, ce.Err)
}

func TestRealS6StatusAndControl(t *testing.T) {
	s6test.Require(t)
	scan := s6test.StartScan(t, filepath.Join(t.TempDir(), "scan"))
	svc := filepath.Join(scan.Dir, "svc")
	require.NoError(t, os.Mkdir(svc, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(svc, "run"), []byte("#!/bin/sh\nexec sleep 1000\n"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(svc, "down"), nil, 0o644))
	tools := s6.Tools{Dir: s6test.ToolsDir}
	ctx := context.Background()
	scanDir, err := safedir.Open(scan.Dir, "")
	require.NoError(t, err)
	defer scanDir.Close()
	// ReadStatusAt (through the open scan directory) must say what ReadStatus says. Polled:
	// a read in the middle of a transition may differ from the next, and s6-supervise holds
	// its lock a moment before it writes its first status file (ErrNoStatus until then).
	readStatus := func() (s6.Status, error) {
		t.Helper()
		var st, at s6.Status
		var err, errAt error
		s6test.Eventually(t, 5*time.Second, "ReadStatus and ReadStatusAt to agree on a reading", func() bool {
			st, err = tools.ReadStatus(ctx, svc)
			at, errAt = tools.ReadStatusAt(ctx, scanDir, "svc")
			return reflect.DeepEqual(st, at) && fmt.Sprint(err) == fmt.Sprint(errAt) && !errors.Is(err, s6.ErrNoStatus)
		})
		live, lerr := s6.SupervisedAt(scanDir, "svc")
		assert.NoError(t, lerr)
		assert.Equal(t, !errors.Is(err, s6.ErrNotSupervised), live, "SupervisedAt")
		return st, err
	}

	supervised, err := s6.Supervised(svc)
	require.NoError(t, err)
	assert.False(t, supervised, "not scanned yet")
	_, err = readStatus()
	assert.ErrorIs(t, err, s6.ErrNotSupervised)

	require.NoError(t, tools.Run(ctx, scan.Dir, "rescan", "s6-svscanctl", "-a", scan.Dir))
	s6test.Eventually(t, 5*time.Second, "s6-supervise on svc", func() bool { ok, _ := s6.Supervised(svc); return ok })

	st, err := readStatus()
	require.NoError(t, err)
	assert.False(t, st.Up)
	assert.False(t, st.NormallyUp, "./down exists")

	require.NoError(t, tools.Run(ctx, "svc", "start", "s6-svc", "-u", "-wu", "-T", "5000", svc))
	st, err = readStatus()
	require.NoError(t, err)
	assert.True(t, st.Up)
	assert.True(t, st.WantUp)
	assert.Positive(t, st.PID)

	// The direct read agrees with s6-svstat's own view.
	out, err := tools.Output(ctx, "svc", "status", "s6-svstat", svc)
	require.NoError(t, err)
	viaTool, err := s6.ParseSvstat(string(out), time.Now())
	require.NoError(t, err)
	assert.Equal(t, st.PID, viaTool.PID)

	require.NoError(t, tools.Run(ctx, "svc", "stop", "s6-svc", "-d", "-wD", "-T", "5000", svc))
	st, err = readStatus()
	require.NoError(t, err)
	assert.False(t, st.Up)
	assert.Equal(t, 15, st.Signal)

	// A real failure: s6-svc on a directory nobody supervises.
	err = tools.Run(ctx, "nosvc", "start", "s6-svc", "-u", t.TempDir())
	var ce *s6.CommandError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, s6.RCUsage, ce.ExitCode)
	assert.Contains(t, ce.Stderr, "supervisor not listening")
}
