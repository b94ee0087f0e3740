package marker_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
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

	"github.com/s6gate/s6gate/pkg/marker"
	"github.com/s6gate/s6gate/pkg/safedir"
)

// fsEvent is one inotify event on an entry of a watched directory.
type fsEvent struct {
	Mask   uint32
	Cookie uint32
	Name   string
}

func (e fsEvent) String() string {
	return fmt.Sprintf("%s %s (cookie %d)", maskName(e.Mask), e.Name, e.Cookie)
}

var maskNames = []struct {
	bit  uint32
	name string
}{
	{unix.IN_ACCESS, "IN_ACCESS"}, {unix.IN_MODIFY, "IN_MODIFY"}, {unix.IN_ATTRIB, "IN_ATTRIB"},
	{unix.IN_CLOSE_WRITE, "IN_CLOSE_WRITE"}, {unix.IN_CLOSE_NOWRITE, "IN_CLOSE_NOWRITE"},
	{unix.IN_OPEN, "IN_OPEN"}, {unix.IN_MOVED_FROM, "IN_MOVED_FROM"}, {unix.IN_MOVED_TO, "IN_MOVED_TO"},
	{unix.IN_CREATE, "IN_CREATE"}, {unix.IN_DELETE, "IN_DELETE"}, {unix.IN_ISDIR, "IN_ISDIR"},
}

func maskName(m uint32) string {
	var parts []string
	for _, n := range maskNames {
		if m&n.bit != 0 {
			parts = append(parts, n.name)
		}
	}
	return strings.Join(parts, "|")
}

// watchDir starts watching the entries of dir with inotify. The returned function returns
// every event queued so far. inotify queues an event before the system call that caused it
// returns, so once a call has returned its events are all there: no waiting is needed.
func watchDir(t *testing.T, dir string) func() []fsEvent {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	_, err = unix.InotifyAddWatch(fd, dir, unix.IN_ALL_EVENTS|unix.IN_ONLYDIR)
	require.NoError(t, err)
	return func() []fsEvent {
		t.Helper()
		var events []fsEvent
		buf := make([]byte, 64*1024)
		for {
			n, err := unix.Read(fd, buf)
			if errors.Is(err, unix.EAGAIN) {
				return events
			}
			require.NoError(t, err)
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				raw := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				name := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(raw.Len)]
				require.Zero(t, raw.Mask&unix.IN_Q_OVERFLOW, "inotify queue overflowed")
				events = append(events, fsEvent{Mask: raw.Mask, Cookie: raw.Cookie, Name: string(bytes.TrimRight(name, "\x00"))})
				off += unix.SizeofInotifyEvent + int(raw.Len)
			}
		}
	}
}

// TestConsumeClaimsByRenameBeforeReading pins Consume's claim (SPEC §4, "a marker is removed
// once evaluated"): the public name .gateway-planned-stop.json is only ever renamed away
// (IN_MOVED_FROM) to a private name, which alone is then read and removed. It is never opened,
// read or removed under the public name, so a marker that a concurrent stop writes a moment
// later is never deleted unread, whatever the verdict on the one claimed.
func TestConsumeClaimsByRenameBeforeReading(t *testing.T) {
	pid := os.Getpid()
	now := time.Now()
	own := marker.For(pid, now)
	require.NotNil(t, own.TargetStartTime)
	tests := []struct {
		name    string
		content func(t *testing.T) []byte
		planned bool
	}{
		{name: "matching marker", planned: true, content: func(t *testing.T) []byte { return mustJSON(t, own) }},
		{name: "marker for another pid", content: func(t *testing.T) []byte {
			m := own
			m.TargetPID = pid + 1
			return mustJSON(t, m)
		}},
		{name: "stale marker", content: func(t *testing.T) []byte {
			m := own
			m.WrittenAt = now.Add(-2 * marker.TTL).UTC().Format(time.RFC3339Nano)
			return mustJSON(t, m)
		}},
		{name: "malformed marker", content: func(t *testing.T) []byte { return []byte(`{"target_pid":`) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, dir := home(t)
			require.NoError(t, os.WriteFile(filepath.Join(dir, marker.FileName), tt.content(t), marker.Mode))
			events := watchDir(t, dir)

			planned, reason, err := marker.Consume(d, pid, own.TargetStartTime, now)
			require.NoError(t, err)
			assert.Equal(t, tt.planned, planned, reason)

			evs := events()
			var public []fsEvent
			var claimed string
			var cookie uint32
			for _, e := range evs {
				switch {
				case e.Name == marker.FileName:
					public = append(public, e)
					cookie = e.Cookie
				case e.Mask&unix.IN_MOVED_TO != 0 && e.Cookie == cookie && cookie != 0:
					claimed = e.Name
				}
			}
			require.Len(t, public, 1, "the public name sees exactly one event\n%v", evs)
			assert.Equal(t, uint32(unix.IN_MOVED_FROM), public[0].Mask, "the public name is only renamed away, never opened, read or removed\n%v", evs)
			require.NotEmpty(t, claimed, "the marker is renamed to a private name in the same directory\n%v", evs)
			assert.True(t, strings.HasPrefix(claimed, marker.FileName+".claimed-"), claimed)

			var private []uint32
			for _, e := range evs {
				if e.Name == claimed {
					private = append(private, e.Mask)
				}
			}
			require.NotEmpty(t, private)
			assert.Equal(t, uint32(unix.IN_MOVED_TO), private[0], "the private name appears by the rename\n%v", evs)
			assert.Contains(t, private, uint32(unix.IN_OPEN), "the private copy is what is read\n%v", evs)
			assert.Equal(t, uint32(unix.IN_DELETE), private[len(private)-1], "the private copy is removed\n%v", evs)
			entries, err := d.ReadDir()
			require.NoError(t, err)
			assert.Empty(t, entries, "nothing is left behind")
		})
	}
}

func mustJSON(t *testing.T, m marker.Marker) []byte {
	t.Helper()
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return b
}

// TestConcurrentConsumersNeverBothPlanned pins "two consumers never both see one marker"
// (Consume's contract): however consumers of one marker interleave, exactly one of them gets
// planned=true. Races are probabilistic by nature; many rounds make a read-then-remove claim
// fail here (TestConsumeClaimsByRenameBeforeReading catches it deterministically).
func TestConcurrentConsumersNeverBothPlanned(t *testing.T) {
	const rounds, consumers = 300, 4
	d, dir := home(t)
	pid := os.Getpid()
	for round := range rounds {
		m := marker.For(pid, time.Now())
		require.NoError(t, marker.Write(d, m))

		var wg sync.WaitGroup
		var mu sync.Mutex
		var reasons []string
		planned := 0
		start := make(chan struct{})
		for range consumers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				// A Dir of its own, as each gateway process has.
				h, err := safedir.Open(dir, "")
				if !assert.NoError(t, err) {
					return
				}
				defer h.Close()
				<-start
				ok, reason, err := marker.Consume(h, pid, m.TargetStartTime, time.Now())
				assert.NoError(t, err)
				mu.Lock()
				defer mu.Unlock()
				reasons = append(reasons, reason)
				if ok {
					planned++
				}
			}()
		}
		close(start)
		wg.Wait()
		require.Equal(t, 1, planned, "round %d: exactly one consumer claims the marker: %q", round, reasons)
		entries, err := d.ReadDir()
		require.NoError(t, err)
		require.Empty(t, entries, "round %d: nothing is left behind", round)
	}
}
