package operator_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/internal/s6test"
	"github.com/s6gate/s6gate/pkg/operator"
	"github.com/s6gate/s6gate/pkg/s6"
)

// unscanned registers names while s6-svscanctl does nothing: slots published, an s6-svscan
// answering on the scan directory, and no supervisor on them — what a boot leaves for the
// moment between the gateways' scanner starting and its first scan reaching them.
func unscanned(t *testing.T, e *s6test.Env, names ...string) {
	t.Helper()
	noop := filepath.Join(t.TempDir(), "s6-svscanctl")
	require.NoError(t, os.WriteFile(noop, []byte("#!/bin/sh\nexit 0\n"), 0o755))
	op := newOperator(t, e, e.CommandDirWith(map[string]string{"s6-svscanctl": noop}))
	op.Timeout = time.Second // Register waits that long for the supervisor, then says "not yet supervised"
	for _, n := range names {
		r, err := op.Register(context.Background(), n, operator.RegisterOptions{})
		require.NoError(t, err)
		require.Equal(t, "registered (not yet supervised)", r.Note)
	}
}

// opened returns a channel that gets a value when a file in dir is opened (inotify).
func opened(t *testing.T, dir string) <-chan struct{} {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	require.NoError(t, err)
	_, err = unix.InotifyAddWatch(fd, dir, unix.IN_OPEN)
	require.NoError(t, err)
	f := os.NewFile(uintptr(fd), "inotify")
	t.Cleanup(func() { f.Close() })
	ch := make(chan struct{}, 1)
	go func() {
		buf := make([]byte, 4096)
		if _, err := f.Read(buf); err == nil {
			ch <- struct{}{}
		}
	}()
	return ch
}

// Status right after the scanner started waits for every registered slot's supervisor
// (bounded by the time-out) instead of reporting each row "not supervised" for the second
// the first scan takes. The scan comes only once status has read a row (its first reading
// of a profile's state), so a status that does not wait sees none.
func TestStatusWaitsForTheFirstScan(t *testing.T) {
	e := s6test.NewEnvAsCaller(t, nil)
	e.Start()
	names := []string{"a1", "a2", "a3"}
	unscanned(t, e, names...)
	op := newOperator(t, e, e.CommandDir)
	read := opened(t, e.ProfileHome("a2"))

	type result struct {
		st  []operator.GatewayStatus
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := op.Status(context.Background(), nil)
		done <- result{st, err}
	}()
	<-read
	require.NoError(t, exec.Command(filepath.Join(s6test.ToolsDir, "s6-svscanctl"), "-a", e.ScanDir).Run())
	r := <-done
	require.NoError(t, r.err)
	require.Len(t, r.st, len(names))
	for _, g := range r.st {
		assert.True(t, g.Supervised, "%s: %s", g.Profile, g.Problem)
		assert.Empty(t, g.Problem, g.Profile)
	}
}

// A slot still without a supervisor once the wait is over says why in the operator's terms:
// a young scanner is still starting supervisors (retry); an older one has scanned, so the
// slot was never scanned or was refused — and status does not wait for it.
func TestStatusNamesWhyASlotHasNoSupervisor(t *testing.T) {
	e := s6test.NewEnvAsCaller(t, nil)
	e.Start()
	unscanned(t, e, "lost")
	op := newOperator(t, e, e.CommandDir)

	op.Timeout = 300 * time.Millisecond
	begin := time.Now()
	st, err := op.Status(context.Background(), []string{"lost"})
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(begin), op.Timeout, "a young scanner is waited for")
	assert.False(t, st[0].Supervised)
	assert.Contains(t, st[0].Problem, "no supervisor yet: the gateways' s6-svscan on "+e.ScanDir+" is still starting the slots' supervisors")
	assert.Contains(t, st[0].Problem, "raise --timeout")

	op.Timeout, op.FirstScan = 10*time.Second, time.Millisecond
	age, ok := s6.ScannerAge(e.ScanDir)
	require.True(t, ok, "the test's s6-svscan holds its lock")
	require.Less(t, age, time.Minute)
	begin = time.Now()
	st, err = op.Status(context.Background(), []string{"lost"})
	require.NoError(t, err)
	assert.Less(t, time.Since(begin), 5*time.Second, "an old scanner has scanned: nothing to wait for")
	assert.Contains(t, st[0].Problem, "no supervisor: the gateways' s6-svscan on "+e.ScanDir+" has run for")
	assert.Contains(t, st[0].Problem, "published without a rescan")
}
