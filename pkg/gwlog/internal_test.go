package gwlog

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// naiveTail is what tailFile must agree with: split everything, keep the last k.
func naiveTail(content string, k int) []string {
	if content == "" || k == 0 {
		return nil
	}
	lines := strings.Split(strings.TrimSuffix(content, "\n"), "\n")
	if len(lines) > k {
		lines = lines[len(lines)-k:]
	}
	return lines
}

func TestTailFileAgreesWithSplittingAtEveryChunkSize(t *testing.T) {
	contents := []string{
		"", "\n", "\n\n", "a", "a\n", "a\nb", "a\nb\n", "a\n\nb\n\n", "first\nsecond\nthird\n",
		strings.Repeat("x", 100) + "\n" + strings.Repeat("y", 37) + "\nshort\n",
	}
	for _, c := range contents {
		for _, chunk := range []int{1, 2, 3, 7, 64, chunkSize} {
			for k := 0; k <= 6; k++ {
				got, err := tailFile(strings.NewReader(c), int64(len(c)), k, make([]byte, chunk))
				require.NoError(t, err)
				assert.Equal(t, naiveTail(c, k), got, "content %q, chunk %d, k %d", c, chunk, k)
			}
		}
	}
}

func TestLastLineEnd(t *testing.T) {
	for _, tt := range []struct {
		content string
		want    int64
	}{{"", 0}, {"abc", 0}, {"a\n", 2}, {"a\nb", 2}, {"a\nb\n", 4}, {"a\nbc\nde", 5}} {
		got, err := lastLineEnd(strings.NewReader(tt.content), int64(len(tt.content)))
		require.NoError(t, err)
		assert.Equal(t, tt.want, got, "%q", tt.content)
	}
}

// logDir is an s6-log directory a test writes by hand, the way s6-log does.
type logDir struct {
	t   *testing.T
	dir string
	seq int // next line number
	arc int // next archive number
}

func newLogDir(t *testing.T) *logDir {
	return &logDir{t: t, dir: filepath.Join(t.TempDir(), "log")}
}

// line is the text of line i, with a timestamp that sorts like i.
func line(i int) string {
	return fmt.Sprintf("2026-12-01 01:%02d:%02d.%09d  line %d", i/3600%60, i/60%60, i%60, i)
}

// write appends k lines to current (creating the directory and current if needed) and
// returns them.
func (l *logDir) write(k int) []string {
	l.t.Helper()
	require.NoError(l.t, os.MkdirAll(l.dir, 0o755))
	f, err := os.OpenFile(filepath.Join(l.dir, currentName), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	require.NoError(l.t, err)
	defer f.Close()
	var out []string
	for range k {
		out = append(out, line(l.seq))
		_, err := f.WriteString(line(l.seq) + "\n")
		require.NoError(l.t, err)
		l.seq++
	}
	return out
}

// writeRaw appends s to current as it is.
func (l *logDir) writeRaw(s string) {
	l.t.Helper()
	f, err := os.OpenFile(filepath.Join(l.dir, currentName), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	require.NoError(l.t, err)
	defer f.Close()
	_, err = f.WriteString(s)
	require.NoError(l.t, err)
}

// rotateStart renames current to previous and creates a new, empty current (s6-log's first
// rotation steps); rotateEnd renames previous to the next archive.
func (l *logDir) rotateStart() {
	l.t.Helper()
	require.NoError(l.t, os.Rename(filepath.Join(l.dir, currentName), filepath.Join(l.dir, previousName)))
	require.NoError(l.t, os.WriteFile(filepath.Join(l.dir, currentName), nil, 0o644))
}

func (l *logDir) rotateEnd() {
	l.t.Helper()
	require.NoError(l.t, os.Rename(filepath.Join(l.dir, previousName), filepath.Join(l.dir, l.archiveName(".s"))))
}

func (l *logDir) rotate() { l.rotateStart(); l.rotateEnd() }

// archiveName is the next archive's name: @ + 24 hex digits (a TAI64N label) + suffix.
func (l *logDir) archiveName(suffix string) string {
	l.arc++
	return fmt.Sprintf("@4000000069%014x%s", l.arc, suffix)
}

func openLog(t *testing.T, dir string) *Log {
	t.Helper()
	lg, err := Open(filepath.Dir(dir), filepath.Base(dir))
	require.NoError(t, err)
	t.Cleanup(func() { lg.Close() })
	return lg
}

// The follower, polled by hand: whatever rotations and truncations happen between two polls,
// every line comes exactly once, in order.
func TestFollowerAcrossRotations(t *testing.T) {
	steps := []struct {
		name string
		do   func(l *logDir) []string // returns the lines it wrote
	}{
		{"appended lines", func(l *logDir) []string { return l.write(3) }},
		{"rotation", func(l *logDir) []string { w := l.write(2); l.rotate(); return append(w, l.write(2)...) }},
		{"rotation caught halfway (previous, then archive)", func(l *logDir) []string {
			w := l.write(1)
			l.rotateStart()
			return append(w, l.write(1)...)
		}},
		{"the halfway rotation finishes", func(l *logDir) []string { l.rotateEnd(); return l.write(1) }},
		{"rotation caught between s6-log's link and unlink of previous", func(l *logDir) []string {
			w := l.write(2)
			l.rotateStart()
			require.NoError(t, os.Link(filepath.Join(l.dir, previousName), filepath.Join(l.dir, l.archiveName(".s"))))
			return append(w, l.write(1)...)
		}},
		{"the unlink", func(l *logDir) []string {
			require.NoError(t, os.Remove(filepath.Join(l.dir, previousName)))
			return l.write(1)
		}},
		{"two rotations between polls, the second one halfway through", func(l *logDir) []string {
			w := l.write(2)
			l.rotate()
			w = append(w, l.write(3)...)
			l.rotateStart()
			require.NoError(t, os.Link(filepath.Join(l.dir, previousName), filepath.Join(l.dir, l.archiveName(".s"))))
			return append(w, l.write(1)...)
		}},
		{"and its end", func(l *logDir) []string {
			require.NoError(t, os.Remove(filepath.Join(l.dir, previousName)))
			return nil
		}},
		{"two rotations between polls", func(l *logDir) []string {
			w := l.write(2)
			l.rotate()
			w = append(w, l.write(3)...)
			l.rotate()
			return append(w, l.write(1)...)
		}},
		{"rotation with an empty new current", func(l *logDir) []string { w := l.write(2); l.rotate(); return w }},
		{"current missing for a moment", func(l *logDir) []string {
			w := l.write(1)
			require.NoError(t, os.Rename(filepath.Join(l.dir, currentName), filepath.Join(l.dir, previousName)))
			return w
		}},
		{"it reappears", func(l *logDir) []string {
			require.NoError(t, os.WriteFile(filepath.Join(l.dir, currentName), nil, 0o644))
			l.rotateEnd()
			return l.write(2)
		}},
		{"a line written in two parts", func(l *logDir) []string {
			l.writeRaw("2026-12-01 02:00:00.000000000  half")
			return nil
		}},
		{"its second part", func(l *logDir) []string {
			l.writeRaw(" and half\n")
			return []string{"2026-12-01 02:00:00.000000000  half and half"}
		}},
		{"a partial line ended by a rotation", func(l *logDir) []string {
			l.writeRaw("2026-12-01 02:00:01.000000000  cut")
			l.rotate()
			return []string{"2026-12-01 02:00:01.000000000  cut"}
		}},
		{"lines before a truncation", func(l *logDir) []string { return l.write(3) }},
		{"truncation in place", func(l *logDir) []string {
			require.NoError(t, os.Truncate(filepath.Join(l.dir, currentName), 0))
			return l.write(1)
		}},
		{"nothing new", func(l *logDir) []string { return nil }},
	}
	l := newLogDir(t)
	before := l.write(4)
	l.rotate()
	before = append(before, l.write(3)...)
	fl, lines, err := startFollower(openLog(t, l.dir), 5)
	require.NoError(t, err)
	defer fl.close()
	assert.Equal(t, before[len(before)-5:], lines)
	for _, s := range steps {
		wrote := s.do(l)
		got, err := fl.poll()
		require.NoError(t, err, s.name)
		assert.Equal(t, wrote, got, s.name)
	}
}

// A line s6-log is in the middle of writing when following starts is not cut in two.
func TestStartFollowerWaitsForAWholeLine(t *testing.T) {
	l := newLogDir(t)
	w := l.write(2)
	l.writeRaw("2026-12-01 03:00:00.000000000  be")
	fl, lines, err := startFollower(openLog(t, l.dir), 10)
	require.NoError(t, err)
	defer fl.close()
	assert.Equal(t, w, lines)
	l.writeRaw("gun\n")
	got, err := fl.poll()
	require.NoError(t, err)
	assert.Equal(t, []string{"2026-12-01 03:00:00.000000000  begun"}, got)
}

// A directory without current (s6-log has not run yet): archives first, then current from
// its first byte once it appears.
func TestFollowerWithoutCurrent(t *testing.T) {
	l := newLogDir(t)
	w := l.write(2)
	require.NoError(t, os.Rename(filepath.Join(l.dir, currentName), filepath.Join(l.dir, l.archiveName(".u"))))
	fl, lines, err := startFollower(openLog(t, l.dir), 10)
	require.NoError(t, err)
	defer fl.close()
	assert.Equal(t, w, lines)
	got, err := fl.poll()
	require.NoError(t, err)
	assert.Empty(t, got)
	w = l.write(2)
	got, err = fl.poll()
	require.NoError(t, err)
	assert.Equal(t, w, got)
}
