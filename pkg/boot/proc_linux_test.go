package boot

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/internal/s6test"
	"github.com/s6gate/s6gate/pkg/proc"
)

func TestDescendants(t *testing.T) {
	procs := []proc.Stat{{PID: 1}, {PID: 10, PPID: 1}, {PID: 11, PPID: 10}, {PID: 12, PPID: 11}, {PID: 20, PPID: 1}, {PID: 30, PPID: 99}}
	got := descendants(procs, 10)
	slices.Sort(got)
	assert.Equal(t, []int{11, 12}, got)
	got = descendants(procs, 1)
	slices.Sort(got)
	assert.Equal(t, []int{10, 11, 12, 20}, got)
	assert.Empty(t, descendants(procs, 12))
}

func TestListProcsSeesSelf(t *testing.T) {
	procs, err := listProcs("/proc")
	require.NoError(t, err)
	found := false
	for _, p := range procs {
		if p.PID == os.Getpid() {
			found = true
			assert.Equal(t, os.Getppid(), p.PPID)
		}
	}
	assert.True(t, found)
}

func TestStatusCode(t *testing.T) {
	for _, tc := range []struct {
		script string
		code   int
	}{
		{"exit 0", 0},
		{"exit 7", 7},
		{"exit 255", 255},
		{"kill -TERM $$", 143},
		{"kill -KILL $$", 137},
	} {
		err := exec.Command("/bin/sh", "-c", tc.script).Run()
		var ws syscall.WaitStatus
		if ee, ok := err.(*exec.ExitError); ok {
			ws = ee.Sys().(syscall.WaitStatus)
		}
		assert.Equal(t, tc.code, statusCode(ws), tc.script)
	}
}

func TestWaitGone(t *testing.T) {
	cmd := exec.Command("sleep", "0.1")
	require.NoError(t, cmd.Start())
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	start := time.Now()
	assert.True(t, waitGone(cmd.Process.Pid, time.Now().Add(5*time.Second)))
	assert.Less(t, time.Since(start), 3*time.Second, "returns when the process ends, not at the deadline")
	<-done

	long := exec.Command("sleep", "10")
	require.NoError(t, long.Start())
	t.Cleanup(func() { _ = long.Process.Kill(); _ = long.Wait() })
	assert.False(t, waitGone(long.Process.Pid, time.Now().Add(50*time.Millisecond)))
}

func TestPidFile(t *testing.T) {
	p := t.TempDir() + "/x.pid"
	assert.Zero(t, readPidFile(p))
	require.NoError(t, writePidFile(p, 1234))
	assert.Equal(t, 1234, readPidFile(p))
	require.NoError(t, os.WriteFile(p, []byte("garbage"), 0o644))
	assert.Zero(t, readPidFile(p))
}

// The reaper runs children to completion, kills them on time-out, and — the reason it exists —
// reaps orphans that a sub-reaper (or PID 1) inherits. This test makes the test process a
// child sub-reaper, so it must not run in parallel with tests that use os/exec.
func TestReaper(t *testing.T) {
	require.NoError(t, unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0))
	t.Cleanup(func() { _ = unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0) })
	r := newReaper()
	t.Cleanup(r.stop)
	devnull, err := os.Open(os.DevNull)
	require.NoError(t, err)
	defer devnull.Close()
	files := []*os.File{devnull, devnull, os.Stderr}

	ws, timedOut, err := r.run(context.Background(), procSpec{Argv: []string{"/bin/sh", "-c", "exit 3"}, Files: files})
	require.NoError(t, err)
	assert.False(t, timedOut)
	assert.Equal(t, 3, statusCode(ws))

	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	ws, timedOut, err = r.run(ctx, procSpec{Argv: []string{"/bin/sleep", "10"}, Files: files})
	require.NoError(t, err)
	assert.True(t, timedOut)
	assert.Equal(t, 137, statusCode(ws))
	assert.Less(t, time.Since(start), 5*time.Second)

	_, _, err = r.run(context.Background(), procSpec{Argv: []string{"/nonexistent"}, Files: files})
	assert.Error(t, err)

	// Three orphans: their parent shell exits at once, they are re-parented to us.
	ws, _, err = r.run(context.Background(), procSpec{Argv: []string{"/bin/sh", "-c", "for i in 1 2 3; do (sleep 0.05 &); done"}, Files: files})
	require.NoError(t, err)
	assert.Equal(t, 0, statusCode(ws))
	// Eventually every orphan has exited and been reaped: this process has no child left, not
	// even a zombie. Without the reaper the zombies would stay until the deadline.
	// This process's children, zombies included, read from its own children lists: not a walk
	// of every process of the host, which takes as long as the host is busy.
	children := func() []s6test.Proc {
		var c []s6test.Proc
		for _, p := range s6test.Descendants(os.Getpid()) {
			if p.PPID == os.Getpid() {
				c = append(c, p)
			}
		}
		return c
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(children()) > 0 && time.Now().Before(deadline) {
		r.waitChanged(10 * time.Millisecond)
	}
	assert.Empty(t, children(), "children left (zombies if state Z)")
	assert.GreaterOrEqual(t, r.orphanCount(), 3)
	assert.Empty(t, r.waiting, "no waiter left behind")
}
