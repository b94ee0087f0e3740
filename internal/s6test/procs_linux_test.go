package s6test_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/internal/s6test"
)

// A process is seen before its exec; WaitExec returns once it runs the program named, and the
// test's own tree holds it (with its new name and command line) and nothing from outside it.
func TestWaitExecAndOwnProcesses(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "sleep 0.3; exec sleep 1000")
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	pid := cmd.Process.Pid

	s6test.WaitExec(t, pid, "sleep")
	var found *s6test.Proc
	procs := s6test.OwnProcesses()
	for i, p := range procs {
		if p.PID == pid {
			found = &procs[i]
		}
		assert.NotEqual(t, 1, p.PID, "PID 1 is not the test's")
	}
	require.NotNil(t, found, "the test's own child is among its processes: %+v", procs)
	assert.Equal(t, "sleep", found.Comm, "WaitExec returned before the exec")
	assert.Equal(t, []string{"sleep", "1000"}, found.Argv)
	assert.Equal(t, os.Getpid(), found.PPID)
}

// Two supervision trees with a service of the same name: each Scan sees its own s6-supervise
// (and its logger's) only, and so does a search below one test process.
func TestSupervisorsAreScopedToTheirTree(t *testing.T) {
	var scans []*s6test.Scan
	for range 2 {
		dir := t.TempDir()
		s6test.WriteFile(t, filepath.Join(dir, "svc", "run"), "#!/bin/sh\nexec sleep 1000\n")
		s6test.WriteFile(t, filepath.Join(dir, "svc", "log", "run"), "#!/bin/sh\nexec cat >/dev/null\n")
		for _, run := range []string{"svc/run", "svc/log/run"} {
			require.NoError(t, os.Chmod(filepath.Join(dir, run), 0o755))
		}
		scans = append(scans, s6test.StartScan(t, dir))
	}
	var a, b []int
	s6test.Eventually(t, 10*time.Second, "both trees supervising svc and svc/log", func() bool {
		a, b = scans[0].Supervisors("svc"), scans[1].Supervisors("svc")
		return len(a) == 2 && len(b) == 2
	})
	for _, pid := range a {
		assert.NotContains(t, b, pid)
	}
	all := s6test.Supervisors(os.Getpid(), "svc")
	slices.Sort(all)
	both := append(slices.Clone(a), b...)
	slices.Sort(both)
	assert.Equal(t, both, all)
	assert.Empty(t, scans[0].Supervisors("sv"), "the name is matched whole")
}

// An s6-supervise forks to start its service, and until that child has exec'd the run script
// it has the supervisor's command line: it is not a second supervisor. Stood in for here by
// a shell started as "s6-supervise svc" whose child, started the same way, does not exec.
func TestSupervisorsLeaveOutAForkBeforeItsExec(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "s6-supervise")
	require.NoError(t, os.Symlink("/bin/sh", fake))
	s6test.WriteFile(t, filepath.Join(dir, "svc"), `if [ -z "$CHILD" ]; then CHILD=1 `+fake+` svc & wait; else sleep 1000; fi`+"\n")
	cmd := exec.Command(fake, "svc")
	cmd.Dir = dir
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		for _, p := range s6test.Descendants(cmd.Process.Pid) {
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
		}
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	s6test.Eventually(t, 10*time.Second, "the fake supervisor's child running its sleep", func() bool {
		for _, p := range s6test.Descendants(cmd.Process.Pid) {
			if p.Comm == "sleep" {
				return true
			}
		}
		return false
	})
	assert.Equal(t, []int{cmd.Process.Pid}, s6test.Supervisors(os.Getpid(), "svc"))
}
