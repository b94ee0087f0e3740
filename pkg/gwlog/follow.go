package gwlog

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
	"time"
)

// PollInterval is how often Follow and FollowAll look for new lines.
const PollInterval = 200 * time.Millisecond

// Line is one line of a merged stream: its text and the name of the log it comes from.
type Line struct {
	Source string
	Text   string
}

// String is the line as `gateway logs --all` prints it: "SOURCE | TEXT", or just the text
// when it has no source.
func (l Line) String() string {
	if l.Source == "" {
		return l.Text
	}
	return l.Source + " | " + l.Text
}

// Source is one named log of a merged stream. The caller opens and closes Log.
type Source struct {
	Name string
	Log  *Log
}

// TailAll returns the last n lines of the merged stream of srcs: every source's lines in
// their own order, interleaved by their s6-log timestamps (Merge). n must not be negative.
func TailAll(srcs []Source, n int) ([]Line, error) {
	per := make([][]string, len(srcs))
	for i, s := range srcs {
		lines, err := s.Log.Tail(n)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Log.Path(), err)
		}
		per[i] = lines
	}
	return lastN(Merge(names(srcs), per, nil), n), nil
}

func names(srcs []Source) []string {
	out := make([]string, len(srcs))
	for i, s := range srcs {
		out[i] = s.Name
	}
	return out
}

func lastN(lines []Line, n int) []Line {
	if len(lines) > n {
		return lines[len(lines)-n:]
	}
	return lines
}

// Merge interleaves the lines of several sources (per[i] comes from the source called
// names[i], oldest first) into one stream in timestamp order. Each source's own order is
// kept: a line without a timestamp sorts with the line before it in its source (or, for a
// source's first line, with after[i] when after is not nil: the last timestamp seen from it).
// Lines with equal timestamps come in source order.
func Merge(names []string, per [][]string, after []string) []Line {
	keys := make([][]string, len(per))
	total := 0
	for i, lines := range per {
		prev := ""
		if after != nil {
			prev = after[i]
		}
		keys[i] = make([]string, len(lines))
		for j, l := range lines {
			if ts := Timestamp(l); ts != "" {
				prev = ts
			}
			keys[i][j] = prev
		}
		total += len(lines)
	}
	out := make([]Line, 0, total)
	next := make([]int, len(per))
	for len(out) < total {
		best := -1
		for i := range per {
			if next[i] < len(per[i]) && (best < 0 || keys[i][next[i]] < keys[best][next[best]]) {
				best = i
			}
		}
		out = append(out, Line{Source: names[best], Text: per[best][next[best]]})
		next[best]++
	}
	return out
}

// Follow prints the last n lines of the s6-log directory dir through emit, then every new
// line as s6-log writes it, across rotations, until ctx ends (then it returns nil) or emit
// or a read fails (then it returns that error). Lines have no trailing newline. A missing
// directory is an error wrapping fs.ErrNotExist.
func Follow(ctx context.Context, dir string, n int, emit func(string) error) error {
	l, err := Open(filepath.Dir(dir), filepath.Base(dir))
	if err != nil {
		return err
	}
	defer l.Close()
	return FollowAll(ctx, []Source{{Log: l}}, n, func(line Line) error { return emit(line.Text) })
}

// FollowAll is Follow for several logs at once: it emits the last n lines of their merged
// stream (TailAll), then, every PollInterval, the lines written since, merged in timestamp
// order. A log without a current file yet is followed from the moment one appears.
func FollowAll(ctx context.Context, srcs []Source, n int, emit func(Line) error) error {
	if n < 0 {
		return fmt.Errorf("negative line count %d", n)
	}
	fls := make([]*follower, len(srcs))
	defer func() {
		for _, fl := range fls {
			if fl != nil {
				fl.close()
			}
		}
	}()
	per := make([][]string, len(srcs))
	for i, s := range srcs {
		fl, lines, err := startFollower(s.Log, n)
		if err != nil {
			return fmt.Errorf("%s: %w", s.Log.Path(), err)
		}
		fls[i], per[i] = fl, lines
	}
	keys := make([]string, len(srcs))
	emitAll := func(lines []Line) error {
		for _, l := range lines {
			if err := emit(l); err != nil {
				return err
			}
		}
		return nil
	}
	remember := func() {
		for i, lines := range per {
			for j := len(lines) - 1; j >= 0; j-- {
				if ts := Timestamp(lines[j]); ts != "" {
					keys[i] = ts
					break
				}
			}
		}
	}
	if err := emitAll(lastN(Merge(names(srcs), per, keys), n)); err != nil {
		return err
	}
	remember()
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		for i, fl := range fls {
			lines, err := fl.poll()
			if err != nil {
				return fmt.Errorf("%s: %w", srcs[i].Log.Path(), err)
			}
			per[i] = lines
		}
		if err := emitAll(Merge(names(srcs), per, keys)); err != nil {
			return err
		}
		remember()
	}
}

// follower reads one log's current file from where it got to, and notices when s6-log
// rotates it.
type follower struct {
	log     *Log
	cur     *file // nil while the log has no current file
	off     int64 // how far cur has been read
	partial []byte
	buf     []byte
}

// startFollower returns a follower positioned after the last whole line of the log's current
// file, and the last n whole lines before that point.
func startFollower(l *Log, n int) (*follower, []string, error) {
	files, err := l.snapshot()
	if err != nil {
		return nil, nil, err
	}
	fl := &follower{log: l, buf: make([]byte, chunkSize)}
	if k := len(files); k > 0 && files[k-1].name == currentName {
		cur := files[k-1]
		// A line s6-log is still writing is printed whole, once it is finished.
		if cur.end, err = lastLineEnd(cur.f, cur.end); err != nil {
			closeAll(files)
			return nil, nil, err
		}
		fl.cur, fl.off = cur, cur.end
		files = files[:k-1]
	}
	defer closeAll(files)
	all := files
	if fl.cur != nil {
		all = append(all[:len(all):len(all)], fl.cur)
	}
	lines, err := tailFiles(all, n)
	if err != nil {
		fl.close()
		return nil, nil, err
	}
	return fl, lines, nil
}

func (fl *follower) close() {
	if fl.cur != nil {
		fl.cur.f.Close()
		fl.cur = nil
	}
}

// read appends the whole lines written to cur since the last read to lines.
func (fl *follower) read(lines []string) ([]string, error) {
	for {
		k, err := fl.cur.f.ReadAt(fl.buf, fl.off)
		if k > 0 {
			fl.off += int64(k)
			data := append(fl.partial, fl.buf[:k]...)
			for {
				i := indexNewline(data)
				if i < 0 {
					break
				}
				lines = append(lines, string(data[:i]))
				data = data[i+1:]
			}
			fl.partial = append(fl.partial[:0:0], data...)
		}
		if errors.Is(err, io.EOF) || (err == nil && k < len(fl.buf)) {
			return lines, nil
		}
		if err != nil {
			return lines, fmt.Errorf("read %s: %w", fl.cur.f.Name(), err)
		}
	}
}

func indexNewline(b []byte) int {
	for i, c := range b {
		if c == '\n' {
			return i
		}
	}
	return -1
}

// flush ends the partial line of a file that will not grow any more.
func (fl *follower) flush(lines []string) []string {
	if len(fl.partial) > 0 {
		lines = append(lines, string(fl.partial))
		fl.partial = nil
	}
	return lines
}

// poll returns the whole lines written since the last poll, oldest first.
func (fl *follower) poll() ([]string, error) {
	if fl.cur == nil {
		// No current file yet (s6-log has not started): the first one is read from its start.
		cur, err := fl.log.open(currentName)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		fl.cur, fl.off, fl.partial = cur, 0, nil
	}
	// Looked at before the file is read: a rotation renames the file before s6-log opens the
	// new one, so once current is another file, the old one has all it will ever have.
	st, err := fl.log.d.Lstat(currentName)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return fl.read(nil) // mid-rotation: current is renamed, the new one not created yet
	case err != nil:
		return nil, err
	case st.Dev == fl.cur.dev && st.Ino == fl.cur.ino:
		if st.Size < fl.off { // truncated in place: start again from its beginning
			fl.off, fl.partial = 0, nil
		}
		return fl.read(nil)
	}
	// Rotated: current is another file.
	next, err := fl.log.open(currentName)
	if errors.Is(err, fs.ErrNotExist) {
		return fl.read(nil) // replaced and renamed again since the Lstat: next poll
	}
	if err != nil {
		return nil, err
	}
	lines, err := fl.read(nil)
	if err != nil {
		next.f.Close()
		return lines, err
	}
	lines = fl.flush(lines)
	// Files that were current and rotated between two polls, after the old one.
	missed, err := fl.between(fl.cur, next)
	if err != nil {
		next.f.Close()
		return lines, err
	}
	for i, m := range missed {
		fl.cur.f.Close()
		fl.cur, fl.off = m, 0
		if lines, err = fl.read(lines); err != nil {
			closeAll(missed[i+1:])
			next.f.Close()
			return lines, err
		}
		lines = fl.flush(lines)
	}
	fl.cur.f.Close()
	fl.cur, fl.off, fl.partial = next, 0, nil
	return fl.read(lines)
}

// between opens the files that come after old and before next in the log's order (archives,
// previous), found by inode. It finds none if old is gone (pruned by s6-log's n limit).
func (fl *follower) between(old, next *file) ([]*file, error) {
	for try := 1; ; try++ {
		files, err := fl.tryBetween(old, next)
		if !errors.Is(err, errRaced) || try == snapshotTries {
			return files, err
		}
	}
}

func (fl *follower) tryBetween(old, next *file) ([]*file, error) {
	names, err := fl.log.olderNames()
	if err != nil {
		return nil, err
	}
	var out []*file
	found := false
	for _, name := range names {
		f, err := fl.log.open(name)
		if errors.Is(err, fs.ErrNotExist) {
			closeAll(out)
			return nil, fmt.Errorf("%s: %w", fl.log.d.Join(name), errRaced)
		}
		if err != nil {
			closeAll(out)
			return nil, err
		}
		switch {
		case f.same(old):
			found = true
			f.f.Close()
		case f.same(next):
			f.f.Close()
			return out, nil
		case found && (len(out) == 0 || !f.same(out[len(out)-1])): // previous may be the last archive (link, then unlink)
			out = append(out, f)
		default:
			f.f.Close()
		}
	}
	return out, nil
}
