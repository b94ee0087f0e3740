package gwlog_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/internal/s6test"
	"github.com/s6gate/s6gate/pkg/gwlog"
	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/safedir"
)

// stamped is a line as s6-log's T directive writes it, at second sec of the day.
func stamped(sec int, text string) string {
	return fmt.Sprintf("2026-12-01 %02d:%02d:%02d.%09d  %s", sec/3600, sec/60%60, sec%60, sec, text)
}

// writeLog lays out an s6-log directory: files maps a name to its lines.
func writeLog(t *testing.T, dir string, files map[string][]string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for name, lines := range files {
		content := ""
		for _, l := range lines {
			content += l + "\n"
		}
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
}

// numbered returns lines from..to-1, stamped with their number.
func numbered(from, to int) []string {
	var out []string
	for i := from; i < to; i++ {
		out = append(out, stamped(i, fmt.Sprintf("line %d", i)))
	}
	return out
}

func TestTailReadsArchivesInNameOrderThenPreviousThenCurrent(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "coder")
	all := numbered(0, 25)
	// Written out of order on purpose: only the names give the order.
	writeLog(t, dir, map[string][]string{
		"current":                     all[20:],
		"previous":                    all[17:20],
		"@400000006b0e25a30000000a.s": all[12:17],
		"@400000006b0e25a200000000.u": all[5:12],
		"@400000006b0e25a100000000.s": all[0:5],
		"lock":                        {"not a log line"},
		"state":                       {"not a log line"},
		"processed":                   {"not a log line"},
		"@junk":                       {"not an archive"},
	})
	outside := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(outside, []byte("secret\n"), 0o644))
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "@400000006b0e25a300000000.s")))
	require.NoError(t, os.Mkdir(filepath.Join(dir, "@400000006b0e25a300000001.s"), 0o755))

	for _, tt := range []struct {
		name string
		n    int
		want []string
	}{
		{"zero", 0, nil},
		{"within current", 3, all[22:]},
		{"all of current", 5, all[20:]},
		{"into previous", 6, all[19:]},
		{"across every boundary", 20, all[5:]},
		{"exactly everything", 25, all},
		{"more than there is", 1000, all},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := gwlog.Tail(dir, tt.n)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestTailEdgeCases(t *testing.T) {
	base := t.TempDir()
	t.Run("missing directory", func(t *testing.T) {
		got, err := gwlog.Tail(filepath.Join(base, "nope"), 10)
		assert.Nil(t, got)
		assert.ErrorIs(t, err, fs.ErrNotExist)
	})
	t.Run("empty directory", func(t *testing.T) {
		dir := filepath.Join(base, "empty")
		require.NoError(t, os.Mkdir(dir, 0o755))
		got, err := gwlog.Tail(dir, 10)
		require.NoError(t, err)
		assert.Empty(t, got)
	})
	t.Run("an unfinished last line and empty lines", func(t *testing.T) {
		dir := filepath.Join(base, "partial")
		require.NoError(t, os.Mkdir(dir, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "@400000006b0e25a100000000.s"), []byte("a\n\n"), 0o644))
		require.NoError(t, os.WriteFile(filepath.Join(dir, "current"), []byte("b\nhalf"), 0o644))
		got, err := gwlog.Tail(dir, 10)
		require.NoError(t, err)
		assert.Equal(t, []string{"a", "", "b", "half"}, got)
	})
	t.Run("previous linked to its archive (s6-log between link and unlink)", func(t *testing.T) {
		dir := filepath.Join(base, "linked")
		writeLog(t, dir, map[string][]string{
			"@400000006b0e25a100000000.s": {"a"},
			"@400000006b0e25a200000000.s": {"b"},
			"current":                     {"c"},
		})
		require.NoError(t, os.Link(filepath.Join(dir, "@400000006b0e25a200000000.s"), filepath.Join(dir, "previous")))
		got, err := gwlog.Tail(dir, 10)
		require.NoError(t, err)
		assert.Equal(t, []string{"a", "b", "c"}, got, "read once")
	})
	t.Run("negative count", func(t *testing.T) {
		_, err := gwlog.Tail(base, -1)
		assert.Error(t, err)
	})
	t.Run("the directory is a symlink", func(t *testing.T) {
		real := filepath.Join(base, "real")
		writeLog(t, real, map[string][]string{"current": {"x"}})
		require.NoError(t, os.Symlink(real, filepath.Join(base, "link")))
		_, err := gwlog.Tail(filepath.Join(base, "link"), 10)
		assert.ErrorIs(t, err, safedir.ErrSymlink)
	})
	t.Run("current is a symlink", func(t *testing.T) {
		dir := filepath.Join(base, "curlink")
		require.NoError(t, os.Mkdir(dir, 0o755))
		require.NoError(t, os.Symlink("/etc/passwd", filepath.Join(dir, "current")))
		_, err := gwlog.Tail(dir, 10)
		assert.ErrorIs(t, err, safedir.ErrSymlink)
	})
}

func TestOpenProfile(t *testing.T) {
	root := t.TempDir()
	writeLog(t, filepath.Join(root, profile.LogRel("coder")), map[string][]string{"current": {"hello"}})
	l, err := gwlog.OpenProfile(root, "coder")
	require.NoError(t, err)
	defer l.Close()
	got, err := l.Tail(1)
	require.NoError(t, err)
	assert.Equal(t, []string{"hello"}, got)

	_, err = gwlog.OpenProfile(root, "../../etc")
	var ne *profile.NameError
	assert.ErrorAs(t, err, &ne, "validated before it becomes a path")
	_, err = gwlog.OpenProfile(root, "other")
	assert.ErrorIs(t, err, fs.ErrNotExist)
	// A symlinked logs/ is refused, not followed.
	other := t.TempDir()
	writeLog(t, filepath.Join(other, profile.LogRel("coder")), map[string][]string{"current": {"elsewhere"}})
	require.NoError(t, os.RemoveAll(filepath.Join(root, "logs")))
	require.NoError(t, os.Symlink(filepath.Join(other, "logs"), filepath.Join(root, "logs")))
	_, err = gwlog.OpenProfile(root, "coder")
	assert.ErrorIs(t, err, safedir.ErrSymlink)
}

func TestTimestamp(t *testing.T) {
	assert.Equal(t, "2026-12-01 01:02:03.123456789", gwlog.Timestamp("2026-12-01 01:02:03.123456789  text"))
	assert.Equal(t, "2026-12-01 01:02:03.123456789", gwlog.Timestamp("2026-12-01 01:02:03.123456789"))
	for _, s := range []string{"", "text", "2026-12-01 01:02:03.12345678", "2026-12-01T01:02:03.123456789 x", "x026-12-01 01:02:03.123456789 x"} {
		assert.Empty(t, gwlog.Timestamp(s), s)
	}
}

// sources opens one log per name under root/logs/gateways.
func sources(t *testing.T, root string, names ...string) []gwlog.Source {
	t.Helper()
	var out []gwlog.Source
	for _, n := range names {
		l, err := gwlog.OpenProfile(root, n)
		require.NoError(t, err)
		t.Cleanup(func() { l.Close() })
		out = append(out, gwlog.Source{Name: n, Log: l})
	}
	return out
}

func texts(lines []gwlog.Line) []string {
	var out []string
	for _, l := range lines {
		out = append(out, l.String())
	}
	return out
}

func TestTailAllMergesByTimestampWithPrefixes(t *testing.T) {
	root := t.TempDir()
	logs := func(name string) string { return filepath.Join(root, profile.LogRel(name)) }
	writeLog(t, logs("a"), map[string][]string{
		"@400000006b0e25a100000000.s": {stamped(1, "a1"), stamped(4, "a4")},
		"current":                     {stamped(6, "a6"), "a continuation without a timestamp", stamped(9, "a9")},
	})
	writeLog(t, logs("b"), map[string][]string{
		"current": {stamped(2, "b2"), stamped(4, "b4"), stamped(7, "b7")},
	})
	writeLog(t, logs("c"), map[string][]string{})
	want := []string{
		"a | " + stamped(1, "a1"),
		"b | " + stamped(2, "b2"),
		"a | " + stamped(4, "a4"),
		"b | " + stamped(4, "b4"), // a tie: source order
		"a | " + stamped(6, "a6"),
		"a | a continuation without a timestamp", // stays with its line
		"b | " + stamped(7, "b7"),
		"a | " + stamped(9, "a9"),
	}
	srcs := sources(t, root, "a", "b", "c")
	for _, n := range []int{0, 1, 3, 8, 100} {
		got, err := gwlog.TailAll(srcs, n)
		require.NoError(t, err)
		exp := want[max(0, len(want)-n):]
		if n == 0 {
			exp = nil
		}
		assert.Equal(t, exp, texts(got), "n=%d", n)
	}
}

// collector gathers what Follow emits, for a test to wait on.
type collector struct {
	mu    sync.Mutex
	lines []string
}

func (c *collector) add(s string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = append(c.lines, s)
	return nil
}

func (c *collector) get() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.lines...)
}

// follow runs fn (Follow or FollowAll) until the test ends, and returns what it emits.
func follow(t *testing.T, fn func(ctx context.Context, emit func(string) error) error) *collector {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c := &collector{}
	done := make(chan error, 1)
	go func() { done <- fn(ctx, c.add) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			assert.NoError(t, err, "Follow ends with nil when its context ends")
		case <-time.After(5 * time.Second):
			t.Error("Follow did not return within 5 s of its context's end")
		}
	})
	return c
}

func appendLines(t *testing.T, p string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	require.NoError(t, err)
	defer f.Close()
	for _, l := range lines {
		_, err := f.WriteString(l + "\n")
		require.NoError(t, err)
	}
}

func TestFollowAllInterleavesNewLinesWithPrefixes(t *testing.T) {
	root := t.TempDir()
	cur := func(name string) string { return filepath.Join(root, profile.LogRel(name), "current") }
	writeLog(t, filepath.Dir(cur("a")), map[string][]string{"current": {stamped(1, "a1"), stamped(3, "a3")}})
	writeLog(t, filepath.Dir(cur("b")), map[string][]string{"current": {stamped(2, "b2")}})
	srcs := sources(t, root, "a", "b")
	c := follow(t, func(ctx context.Context, emit func(string) error) error {
		return gwlog.FollowAll(ctx, srcs, 2, func(l gwlog.Line) error { return emit(l.String()) })
	})
	s6test.Eventually(t, 5*time.Second, "the last 2 merged lines", func() bool { return len(c.get()) == 2 })
	assert.Equal(t, []string{"b | " + stamped(2, "b2"), "a | " + stamped(3, "a3")}, c.get())

	// Written in one go, between two polls: merged by timestamp, not by source.
	appendLines(t, cur("b"), stamped(5, "b5"), stamped(6, "b6"))
	appendLines(t, cur("a"), stamped(4, "a4"), stamped(7, "a7"))
	s6test.Eventually(t, 5*time.Second, "4 more lines", func() bool { return len(c.get()) >= 6 })
	assert.Equal(t, []string{
		"b | " + stamped(2, "b2"), "a | " + stamped(3, "a3"),
		"a | " + stamped(4, "a4"), "b | " + stamped(5, "b5"), "b | " + stamped(6, "b6"), "a | " + stamped(7, "a7"),
	}, c.get())
}

// Follow on a directory that s6-log's rotation (rename current away, create a new one) keeps
// changing under it: every line exactly once, in order.
func TestFollowSurvivesRotation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	all := numbered(0, 3)
	writeLog(t, dir, map[string][]string{"current": all})
	c := follow(t, func(ctx context.Context, emit func(string) error) error { return gwlog.Follow(ctx, dir, 10, emit) })
	s6test.Eventually(t, 5*time.Second, "the existing lines", func() bool { return len(c.get()) == 3 })
	cur := filepath.Join(dir, "current")
	for round := range 5 {
		more := numbered(len(all), len(all)+4)
		appendLines(t, cur, more[:2]...)
		require.NoError(t, os.Rename(cur, filepath.Join(dir, "previous")))
		require.NoError(t, os.WriteFile(cur, nil, 0o644))
		require.NoError(t, os.Rename(filepath.Join(dir, "previous"), filepath.Join(dir, fmt.Sprintf("@400000006b0e25a1%08x.s", round))))
		appendLines(t, cur, more[2:]...)
		all = append(all, more...)
		s6test.Eventually(t, 5*time.Second, fmt.Sprintf("round %d's lines", round), func() bool { return len(c.get()) >= len(all) })
	}
	assert.Equal(t, all, c.get())
	tail, err := gwlog.Tail(dir, 1000)
	require.NoError(t, err)
	assert.Equal(t, all, tail, "Tail reads the rotated directory back in order too")
}

func TestFollowMissingDirectory(t *testing.T) {
	err := gwlog.Follow(context.Background(), filepath.Join(t.TempDir(), "nope"), 10, func(string) error { return nil })
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

// An emit that fails (stdout closed) ends Follow with its error.
func TestFollowStopsWhenEmitFails(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	writeLog(t, dir, map[string][]string{"current": {"x"}})
	boom := fmt.Errorf("boom")
	err := gwlog.Follow(context.Background(), dir, 10, func(string) error { return boom })
	assert.ErrorIs(t, err, boom)
}

// The real s6-log, as the slots run it but with the smallest size limit it accepts (4096
// bytes), so it rotates every few dozen lines while Follow reads: every line comes back
// exactly once, in order, and Tail reads the directory back the same way.
func TestRealS6LogRotatingUnderFollow(t *testing.T) {
	s6test.Require(t)
	dir := filepath.Join(t.TempDir(), "coder")
	cmd := exec.Command(filepath.Join(s6test.ToolsDir, "s6-log"), "n20", "s4096", "T", dir)
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	exited := false
	t.Cleanup(func() {
		if !exited {
			stdin.Close()
			_ = cmd.Wait()
		}
	})
	s6test.Eventually(t, 5*time.Second, "s6-log to create current", func() bool {
		_, err := os.Stat(filepath.Join(dir, "current"))
		return err == nil
	})
	// A first line, so that the test knows when Follow has read the directory: what comes
	// after it is followed, not tailed.
	_, err = fmt.Fprintln(stdin, "hello")
	require.NoError(t, err)
	s6test.Eventually(t, 5*time.Second, "s6-log to write the first line", func() bool {
		b, _ := os.ReadFile(filepath.Join(dir, "current"))
		return len(b) > 0
	})
	c := follow(t, func(ctx context.Context, emit func(string) error) error { return gwlog.Follow(ctx, dir, 10, emit) })
	s6test.Eventually(t, 5*time.Second, "Follow to print the first line", func() bool { return len(c.get()) == 1 })

	const batches, perBatch = 8, 60
	want := []string{"hello"}
	for b := range batches {
		for i := range perBatch {
			msg := fmt.Sprintf("message %04d from the gateway, padded to rotate s6-log often", b*perBatch+i)
			want = append(want, msg)
			_, err := fmt.Fprintln(stdin, msg)
			require.NoError(t, err)
		}
		s6test.Eventually(t, 10*time.Second, fmt.Sprintf("batch %d through s6-log and Follow", b), func() bool { return len(c.get()) >= len(want) })
	}
	archives, err := filepath.Glob(filepath.Join(dir, "@*.s"))
	require.NoError(t, err)
	assert.Greater(t, len(archives), 5, "s6-log rotated while Follow read")

	strip := func(lines []string) []string {
		var out []string
		for _, l := range lines {
			ts := gwlog.Timestamp(l)
			require.NotEmpty(t, ts, "s6-log's T timestamp: %q", l)
			out = append(out, strings.TrimLeft(l[len(ts):], " "))
		}
		return out
	}
	assert.Equal(t, want, strip(c.get()))
	tail, err := gwlog.Tail(dir, len(want))
	require.NoError(t, err)
	assert.Equal(t, want, strip(tail))
	tail, err = gwlog.Tail(dir, 100)
	require.NoError(t, err)
	assert.Equal(t, want[len(want)-100:], strip(tail), "the last 100 lines span several archives")

	// At the end of its input s6-log archives current: still the same lines.
	require.NoError(t, stdin.Close())
	require.NoError(t, cmd.Wait())
	exited = true
	tail, err = gwlog.Tail(dir, len(want)+10)
	require.NoError(t, err)
	assert.Equal(t, want, strip(tail))
}

// Tail reads from the end: the last lines of a full log (10 archives of 1 MB and current)
// cost a few chunks of memory, not the log's 11 MB.
func TestTailMemoryIsBoundedByTheLinesAskedFor(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "big")
	require.NoError(t, os.Mkdir(dir, 0o755))
	line := stamped(0, strings.Repeat("x", 90)) + "\n"
	big := []byte(strings.Repeat(line, 1_000_000/len(line)))
	for i := range 10 {
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("@400000006b0e25a1%08x.s", i)), big, 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "current"), []byte(line+"last\n"), 0o644))
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	got, err := gwlog.Tail(dir, 50)
	runtime.ReadMemStats(&after)
	t.Logf("allocated %d", after.TotalAlloc-before.TotalAlloc)
	assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(256<<10), "bytes allocated by Tail(dir, 50) over an 11 MB log")
	require.NoError(t, err)
	require.Equal(t, 50, len(got))
	assert.Equal(t, "last", got[49])
}
