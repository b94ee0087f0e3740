package proc_test

import (
	"io/fs"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/pkg/proc"
)

// Captured from real processes on Debian 12 (kernel 6.x).
const (
	statCat    = "3417 (cat) R 3411 3411 3408 0 -1 4194304 89 0 0 0 0 0 0 0 20 0 1 0 62431 5627904 224 18446744073709551615 94723052261376 94723052276561 140726646245248 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 94723052290992 94723052292224 94723081465856 140726646253071 140726646253091 140726646253091 140726646259691 0\n"
	statWeird  = "77 (a) b (c)) S 1 77 77 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 987654 1000 10 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0\n"
	statZombie = "12 (sleep) Z 1 12 12 0 -1 4227084 50 0 0 0 0 0 0 0 20 0 1 0 555 0 0 18446744073709551615 0 0 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want proc.Stat
	}{
		{"plain", statCat, proc.Stat{PID: 3417, Comm: "cat", State: 'R', PPID: 3411, StartTime: 62431}},
		{"comm with spaces and parens", statWeird, proc.Stat{PID: 77, Comm: "a) b (c)", State: 'S', PPID: 1, StartTime: 987654}},
		{"zombie", statZombie, proc.Stat{PID: 12, Comm: "sleep", State: 'Z', PPID: 1, StartTime: 555}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := proc.ParseStat([]byte(tt.in))
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	for _, bad := range []string{"", "12 cat R 1", "x (cat) R 1 2 3", "12 (cat) R 1 2 3 4"} {
		_, err := proc.ParseStat([]byte(bad))
		assert.Error(t, err, bad)
	}
}

func TestReadSelfAndAlive(t *testing.T) {
	st, err := proc.Read(os.Getpid())
	require.NoError(t, err)
	assert.Equal(t, os.Getpid(), st.PID)
	assert.NotZero(t, st.StartTime)
	assert.True(t, proc.Alive(os.Getpid(), &st.StartTime))
	other := st.StartTime + 1
	assert.False(t, proc.Alive(os.Getpid(), &other), "same PID, other start time: not the same process")
	assert.True(t, proc.Alive(os.Getpid(), nil))

	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	_, err = proc.Read(cmd.Process.Pid)
	assert.ErrorIs(t, err, fs.ErrNotExist, "reaped process is gone")
	assert.False(t, proc.Alive(cmd.Process.Pid, nil))
}

// A zombie (a process that exited and was not reaped yet) is not alive, with or without its
// start time: an exec-supervised command that died is a zombie until s6-supervise reaps it.
func TestZombieIsNotAlive(t *testing.T) {
	cmd := exec.Command("true")
	require.NoError(t, cmd.Start())
	pid := cmd.Process.Pid
	var st proc.Stat
	require.Eventually(t, func() bool {
		s, err := proc.Read(pid) // not reaped yet: still there
		st = s
		return err == nil && s.State == 'Z'
	}, 10*time.Second, 10*time.Millisecond, "the child to exit")
	assert.False(t, proc.Alive(pid, nil))
	assert.False(t, proc.Alive(pid, &st.StartTime))
	require.NoError(t, cmd.Wait())
}
