package operator_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/internal/s6test"
	"github.com/s6gate/s6gate/pkg/marker"
	"github.com/s6gate/s6gate/pkg/s6"
)

// freshSupervisor holds a slot in the state an s6-supervise is in for a moment after it
// starts: it holds its lock and listens on its control FIFO, but has not written its status
// file yet (here: the file is moved aside). On a loaded machine a verb meets that state
// right after a register. The file comes back — "s6-supervise writes it" — at the verb's
// second reading, or as soon as s6-svstat runs, which is what s6-svstat sees when the first
// write lands while it starts (restoringSvstat).
type freshSupervisor struct {
	t       *testing.T
	dir     string // the slot
	pid     int    // its s6-supervise
	events  *os.File
	ctl     int // the control FIFO, read end, to see a command waiting in it
	mu      sync.Mutex
	stopped bool
}

// holdFresh moves the slot's status file aside.
func holdFresh(t *testing.T, e *s6test.Env, name string) *freshSupervisor {
	t.Helper()
	dir := e.Slot(name)
	sup := filepath.Join(dir, "supervise")
	lk, err := os.Open(filepath.Join(sup, "lock"))
	require.NoError(t, err)
	fl := unix.Flock_t{Type: unix.F_WRLCK}
	require.NoError(t, unix.FcntlFlock(lk.Fd(), unix.F_GETLK, &fl))
	lk.Close()
	require.NotEqual(t, int16(unix.F_UNLCK), fl.Type, "s6-supervise holds its lock")
	f := &freshSupervisor{t: t, dir: dir, pid: int(fl.Pid)}
	f.ctl, err = unix.Open(filepath.Join(sup, "control"), unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(f.ctl) })

	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	require.NoError(t, err)
	_, err = unix.InotifyAddWatch(fd, sup, unix.IN_OPEN)
	require.NoError(t, err)
	f.events = os.NewFile(uintptr(fd), "inotify") // non-blocking: Close ends a Read
	t.Cleanup(func() { f.events.Close() })

	// Register returns once the supervisor listens, which may be before its first write.
	s6test.Eventually(t, 10*time.Second, "s6-supervise's first status write", func() bool {
		_, err := os.Stat(filepath.Join(sup, "status"))
		return err == nil
	})
	require.NoError(t, os.Rename(filepath.Join(sup, "status"), filepath.Join(sup, "status.hidden")))
	return f
}

// restoringSvstat is a command directory whose s6-svstat puts a status file held aside by
// holdFresh back before it reads it: s6-supervise's first write landing while s6-svstat starts.
func restoringSvstat(t *testing.T) string {
	t.Helper()
	fake := filepath.Join(t.TempDir(), "s6-svstat")
	script := "#!/bin/sh\nfor d; do :; done\nmv \"$d/supervise/status.hidden\" \"$d/supervise/status\" 2>/dev/null\nexec " +
		filepath.Join(s6test.ToolsDir, "s6-svstat") + " \"$@\"\n"
	require.NoError(t, os.WriteFile(fake, []byte(script), 0o755))
	return s6test.CommandDir(t, map[string]string{"s6-svstat": fake})
}

// pause stops the s6-supervise, as a loaded machine may not schedule it: a command sent to
// it waits in its FIFO. It runs again at the end of the test.
func (f *freshSupervisor) pause() {
	require.NoError(f.t, unix.Kill(f.pid, unix.SIGSTOP))
	f.mu.Lock()
	f.stopped = true
	f.mu.Unlock()
	f.t.Cleanup(f.resume)
}

func (f *freshSupervisor) resume() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stopped {
		_ = unix.Kill(f.pid, unix.SIGCONT)
		f.stopped = false
	}
}

// commandWaiting reports whether a command sits unread in the control FIFO.
func (f *freshSupervisor) commandWaiting() bool {
	n, err := unix.IoctlGetInt(f.ctl, unix.TIOCINQ) // FIONREAD
	return err == nil && n > 0
}

// watch follows the readings of the slot's status (every reading opens supervise/lock first):
// at the second it puts the status file back; once a command waits in the FIFO it lets the
// s6-supervise run again at the second reading after that, so the verb has taken a whole
// reading of a supervisor that has not acted on its command yet. It returns when the event
// file is closed.
func (f *freshSupervisor) watch() {
	buf := make([]byte, 4096)
	readings, afterCommand := 0, 0
	for {
		n, err := f.events.Read(buf)
		if err != nil {
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if name != "lock" {
				continue
			}
			readings++
			if readings == 2 {
				_ = os.Rename(filepath.Join(f.dir, "supervise", "status.hidden"), filepath.Join(f.dir, "supervise", "status"))
			}
			if f.commandWaiting() {
				if afterCommand++; afterCommand == 2 {
					f.resume()
				}
			}
		}
	}
}

// A start right after s6-supervise started, before it wrote its status file, on a machine too
// busy to run it at once: the verb must not take the s6-svstat reading it gets then (whole
// seconds back from the clock) for the state before its command, and the exact stamp it reads
// next for "s6 acted and gave up". It waits for the status file and succeeds once s6 has
// started the gateway. With the s6-svstat fallback, it failed at once with "failed to start
// and s6 will not retry it".
func TestStartBeforeTheSupervisorWroteItsStatus(t *testing.T) {
	e := s6test.NewEnvAsCaller(t, nil)
	e.Start()
	op := newOperator(t, e, e.CommandDir)
	registerSleeper(t, e, op, "fresh")
	f := holdFresh(t, e, "fresh")
	op.Tools = s6.Tools{Dir: restoringSvstat(t)}
	f.pause()
	go f.watch()

	r, err := op.Start(context.Background(), "fresh")
	require.NoError(t, err, "the gateway did start")
	assert.Equal(t, "started", r.Note)
	assert.Positive(t, r.PID)
	st, err := s6.Tools{Dir: e.CommandDir}.ReadStatus(context.Background(), e.Slot("fresh"))
	require.NoError(t, err)
	assert.True(t, st.Up)
	assert.Equal(t, r.PID, st.PID)
}

// The same state met by stop: the PID its planned-stop marker names comes from s6-supervise's
// status, so it waits for the first write instead of sending an unmarked stop (which the
// gateway would take for a container restart, and persist running).
func TestStopBeforeTheSupervisorWroteItsStatus(t *testing.T) {
	e := s6test.NewEnvAsCaller(t, nil)
	e.Start()
	op := newOperator(t, e, e.CommandDir)
	registerSleeper(t, e, op, "fresh")
	r, err := op.Start(context.Background(), "fresh")
	require.NoError(t, err)
	f := holdFresh(t, e, "fresh")
	// s6-svstat fails on a missing status file, as the real one does (without opening the
	// lock: the readings counted are the verb's).
	svstat := s6test.FailingTool(t, 111, "s6-svstat: fatal: unable to read status for "+e.Slot("fresh")+": No such file or directory")
	op.Tools = s6.Tools{Dir: s6test.CommandDir(t, map[string]string{"s6-svstat": svstat})}
	go f.watch()

	_, err = op.Stop(context.Background(), "fresh")
	require.NoError(t, err)
	b, err := os.ReadFile(filepath.Join(e.ProfileHome("fresh"), marker.FileName))
	require.NoError(t, err, "stop marked the stop planned")
	var m marker.Marker
	require.NoError(t, json.Unmarshal(b, &m))
	assert.Equal(t, r.PID, m.TargetPID)
}

// ReadStatus on a supervised slot without a status file says so, and runs no s6-svstat (it
// could only fail, or read a file that appeared meanwhile with a stamp guessed from the clock).
func TestReadStatusWithoutStatusFileIsErrNoStatus(t *testing.T) {
	e := s6test.NewEnvAsCaller(t, nil)
	e.Start()
	op := newOperator(t, e, e.CommandDir)
	registerSleeper(t, e, op, "fresh")
	holdFresh(t, e, "fresh")
	cmdDir, calls := recorder(t)
	_, err := s6.Tools{Dir: cmdDir}.ReadStatus(context.Background(), e.Slot("fresh"))
	require.ErrorIs(t, err, s6.ErrNoStatus)
	assert.NoFileExists(t, calls, "no s6-svstat ran")
}
