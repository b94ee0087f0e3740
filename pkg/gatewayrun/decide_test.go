package gatewayrun

import (
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The persist-decision table of SPEC §7.
func TestDecide(t *testing.T) {
	tests := []struct {
		reason Reason
		state  string
		code   int
	}{
		{Unplanned, "running", 1},
		{Planned, "stopped", 0},
		{Restart, "stopped", 75},
		{FatalConfig, "startup_failed", 78},
		{ChildExited, "", -1},
		{Reason(99), "running", 1},
	}
	for _, tt := range tests {
		t.Run(tt.reason.String(), func(t *testing.T) {
			d := Decide(tt.reason)
			assert.Equal(t, tt.state, d.State)
			assert.Equal(t, tt.code, d.ExitCode)
		})
	}
}

func TestExitStatus(t *testing.T) {
	code, why := exitStatus(nil)
	assert.Equal(t, 0, code)
	assert.Contains(t, why, "0")

	err := exec.Command("sh", "-c", "exit 7").Run()
	code, why = exitStatus(err)
	assert.Equal(t, 7, code)
	assert.Contains(t, why, "status 7")

	err = exec.Command("sh", "-c", "kill -TERM $$").Run()
	code, why = exitStatus(err)
	assert.Equal(t, 128+15, code)
	assert.Contains(t, why, "terminated")
}

func TestNotifierWritesNewlineAndCloses(t *testing.T) {
	// The write end is a bare descriptor that notifier owns and closes. An *os.File must not
	// own it too: its GC cleanup would close the same number again later, by then reused by
	// some other file of this test process (a gateway's output pipe, which then never sees EOF).
	var p [2]int
	require.NoError(t, unix.Pipe2(p[:], unix.O_CLOEXEC))
	r := os.NewFile(uintptr(p[0]), "notify-r")
	defer r.Close()
	notify := notifier(p[1])
	notify()
	buf := make([]byte, 4)
	n, err := r.Read(buf)
	require.NoError(t, err)
	assert.Equal(t, "\n", string(buf[:n]))
	_, err = r.Read(buf)
	assert.Error(t, err, "the write end is closed after the notification")

	notifier(-1)()  // no descriptor: no-op
	notifier(999)() // not open: no-op, no panic
}
