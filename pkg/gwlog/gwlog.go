package gwlog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/safedir"
)

// Names s6-log gives the files of its directory.
const (
	currentName  = "current"
	previousName = "previous"
)

// chunkSize is how much Tail reads at a time, from the end of a file backwards.
const chunkSize = 64 << 10

// snapshotTries bounds how often a listing is retried when a rotation renames or removes a
// file between the listing and its opening.
const snapshotTries = 20

// errRaced means a file listed a moment ago was gone when opened: a rotation ran meanwhile.
var errRaced = errors.New("the log rotated while it was listed")

// Log is an open s6-log directory.
type Log struct {
	d *safedir.Dir
}

// Open opens the log directory base/rel; base is trusted, and no component of rel may be a
// symbolic link (safedir.Open). A missing directory is an error wrapping fs.ErrNotExist.
func Open(base, rel string) (*Log, error) {
	d, err := safedir.Open(base, rel)
	if err != nil {
		return nil, err
	}
	return &Log{d: d}, nil
}

// OpenProfile opens the log directory of the profile name in the data root root
// (root/logs/gateways/NAME). An invalid name is a *profile.NameError (a usage error) and
// never becomes a path.
func OpenProfile(root, name string) (*Log, error) {
	if err := profile.Validate(name); err != nil {
		return nil, err
	}
	return Open(root, profile.LogRel(name))
}

// Path is the directory's path, for messages.
func (l *Log) Path() string { return l.d.Path() }

// Close releases the directory.
func (l *Log) Close() error { return l.d.Close() }

// Tail returns the last n lines of the s6-log directory dir (archives then current), oldest
// first, without trailing newlines. A missing directory returns (nil, error wrapping
// fs.ErrNotExist). The last component of dir is not followed if it is a symbolic link; use
// Open or OpenProfile to refuse links further up. n must not be negative.
func Tail(dir string, n int) ([]string, error) {
	l, err := Open(filepath.Dir(dir), filepath.Base(dir))
	if err != nil {
		return nil, err
	}
	defer l.Close()
	return l.Tail(n)
}

// Tail returns the last n lines of the log (archives, then current), oldest first, without
// trailing newlines; a last line current has not finished yet is included as it is. It holds
// at most n lines in memory, whatever the size of the files. n must not be negative.
func (l *Log) Tail(n int) ([]string, error) {
	if n < 0 {
		return nil, fmt.Errorf("negative line count %d", n)
	}
	files, err := l.snapshot()
	if err != nil {
		return nil, err
	}
	defer closeAll(files)
	return tailFiles(files, n)
}

// file is one open file of the log directory.
type file struct {
	name string
	f    *os.File
	dev  uint64
	ino  uint64
	end  int64 // how far Tail reads it: its size when opened, or less (Follow's current)
}

func (f *file) same(g *file) bool { return f.dev == g.dev && f.ino == g.ino }

func closeAll(files []*file) {
	for _, f := range files {
		f.f.Close()
	}
}

// open opens the regular file name of the log directory for reading.
func (l *Log) open(name string) (*file, error) {
	f, err := l.d.OpenFile(name, unix.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return nil, &os.PathError{Op: "fstat", Path: l.d.Join(name), Err: err}
	}
	return &file{name: name, f: f, dev: st.Dev, ino: st.Ino, end: st.Size}, nil
}

// isArchive reports whether name is one of s6-log's archives: @<tai64n>.s or @<tai64n>.u.
func isArchive(name string) bool {
	return len(name) > 3 && name[0] == '@' && (strings.HasSuffix(name, ".s") || strings.HasSuffix(name, ".u"))
}

// olderNames lists the files older than current, oldest first: the archives in name order,
// then previous. Only regular files count; symbolic links and directories are ignored.
func (l *Log) olderNames() ([]string, error) {
	entries, err := l.d.ReadDir()
	if err != nil {
		return nil, err
	}
	var names []string
	previous := false
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		switch n := e.Name(); {
		case isArchive(n):
			names = append(names, n)
		case n == previousName:
			previous = true
		}
	}
	slices.Sort(names)
	if previous {
		names = append(names, previousName)
	}
	return names, nil
}

// snapshot opens the log's files in reading order — archives, previous, current — as they
// were when current was opened. A file that a rotation renames or removes between the
// listing and its opening makes it list again.
func (l *Log) snapshot() ([]*file, error) {
	for try := 1; ; try++ {
		files, err := l.trySnapshot()
		if !errors.Is(err, errRaced) || try == snapshotTries {
			return files, err
		}
	}
}

func (l *Log) trySnapshot() ([]*file, error) {
	// current first: whatever is listed afterwards is at least as old as it.
	cur, err := l.open(currentName)
	if errors.Is(err, fs.ErrNotExist) {
		cur, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	names, err := l.olderNames()
	var files []*file
	for _, name := range names {
		if err != nil {
			break
		}
		var f *file
		f, err = l.open(name)
		if errors.Is(err, fs.ErrNotExist) {
			err = fmt.Errorf("%s: %w", l.d.Join(name), errRaced)
			break
		}
		if err != nil {
			break
		}
		if cur != nil && f.same(cur) {
			// current was rotated after it was opened: it is read below, once, and what
			// follows it is newer than this snapshot.
			f.f.Close()
			break
		}
		if len(files) > 0 && f.same(files[len(files)-1]) {
			// s6-log archives previous with link(2), then unlink(2): between the two, the
			// archive and previous are one file.
			f.f.Close()
			continue
		}
		files = append(files, f)
	}
	if cur != nil {
		files = append(files, cur)
	}
	if err != nil {
		closeAll(files)
		return nil, err
	}
	return files, nil
}

// tailFiles returns the last n lines of files read in order, reading from the end backwards.
func tailFiles(files []*file, n int) ([]string, error) {
	var parts [][]string // newest file first
	need := n
	buf := make([]byte, chunkSize)
	for i := len(files) - 1; i >= 0 && need > 0; i-- {
		lines, err := tailFile(files[i].f, files[i].end, need, buf)
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", files[i].f.Name(), err)
		}
		need -= len(lines)
		parts = append(parts, lines)
	}
	var out []string
	for i := len(parts) - 1; i >= 0; i-- {
		out = append(out, parts[i]...)
	}
	return out, nil
}

// tailFile returns the last k lines of the first size bytes of r, oldest first, reading
// len(buf) bytes at a time from the end into buf. A final newline ends the last line; bytes
// after the last newline are a line of their own.
func tailFile(r io.ReaderAt, size int64, k int, buf []byte) ([]string, error) {
	if k <= 0 || size <= 0 {
		return nil, nil
	}
	var rev []string // newest first
	var frag []byte  // the end of the line being put together, as read so far
	chunk := len(buf)
	pos := size
	last := true
	for pos > 0 {
		c := min(int64(chunk), pos)
		pos -= c
		b := buf[:c]
		if _, err := r.ReadAt(b, pos); err != nil {
			if errors.Is(err, io.EOF) {
				err = fmt.Errorf("file shrank while read: %w", io.ErrUnexpectedEOF)
			}
			return nil, err
		}
		if last {
			last = false
			b = bytes.TrimSuffix(b, []byte{'\n'})
		}
		for {
			i := bytes.LastIndexByte(b, '\n')
			if i < 0 {
				frag = append(append([]byte(nil), b...), frag...)
				break
			}
			rev = append(rev, string(b[i+1:])+string(frag))
			frag = nil
			if len(rev) == k {
				slices.Reverse(rev)
				return rev, nil
			}
			b = b[:i]
		}
	}
	rev = append(rev, string(frag)) // the file's first line
	slices.Reverse(rev)
	return rev, nil
}

// lastLineEnd is the offset just after the last newline among the first size bytes of r
// (0 if there is none): where a reader that wants whole lines only stops.
func lastLineEnd(r io.ReaderAt, size int64) (int64, error) {
	buf := make([]byte, chunkSize)
	for pos := size; pos > 0; {
		c := min(int64(chunkSize), pos)
		pos -= c
		if _, err := r.ReadAt(buf[:c], pos); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:c], '\n'); i >= 0 {
			return pos + int64(i) + 1, nil
		}
	}
	return 0, nil
}

// Timestamp returns the timestamp s6-log's T directive put at the start of line
// ("2026-12-01 01:02:03.123456789"), or "" if the line does not start with one. Such
// timestamps sort in time order as strings.
func Timestamp(line string) string {
	const layout = "dddd-dd-dd dd:dd:dd.ddddddddd"
	if len(line) < len(layout) {
		return ""
	}
	for i := 0; i < len(layout); i++ {
		c := line[i]
		if layout[i] == 'd' {
			if c < '0' || c > '9' {
				return ""
			}
		} else if c != layout[i] {
			return ""
		}
	}
	return line[:len(layout)]
}
