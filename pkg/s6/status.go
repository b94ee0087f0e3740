package s6

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/safedir"
)

// Status is a service's state as s6-supervise publishes it.
type Status struct {
	Supervised bool      // an s6-supervise process runs on the service directory
	Up         bool      // the service process is running
	PID        int       // its PID when Up
	Since      time.Time // when it last went up or down (zero if unknown)
	// Stamped: Since is s6-supervise's own timestamp, read from its status file, so two
	// readings with equal Since saw no change. s6-svstat prints whole seconds only, and Since
	// is then worked out from the clock at the time of reading: it moves between readings.
	Stamped    bool
	Ready      bool // it notified readiness (or has no notification-fd)
	WantUp     bool // s6-supervise will (re)start it
	NormallyUp bool // no ./down file
	Paused     bool
	Finishing  bool // ./finish is running
	ExitCode   int  // of the last run when down and it exited; -1 otherwise
	Signal     int  // that killed the last run when down; 0 otherwise
}

// ErrNotSupervised means no s6-supervise runs on the service directory (it was never scanned,
// s6-svscan is not running, or the slot is being removed).
var ErrNotSupervised = errors.New("s6-supervise not running")

// ErrNoStatus means an s6-supervise runs on the service directory but has not written its
// status file yet: it has only just started (it takes its lock and opens its control FIFO
// before its first write), and has acted on no command. A reading comes a moment later.
var ErrNoStatus = errors.New("s6-supervise has not written its status yet")

// Status file layouts: 35 bytes in s6 2.11 (Debian bookworm) and again in 2.15 (the pgid was
// dropped), 43 bytes in the releases between that stored a pgid after the pid.
const (
	statusSize211 = 35
	statusSize212 = 43
	// taiOffset is the TAI64 label skalibs writes for the Unix epoch: 2^62, plus TAI's 10 s
	// head start on UTC in 1970, plus the 27 leap seconds since (none added after 2016).
	taiOffset = 1<<62 + 37
)

const (
	flagPaused    = 1 << 0
	flagFinishing = 1 << 1
	flagWantUp    = 1 << 2
	flagReady     = 1 << 3
)

// ParseStatusFile decodes the binary supervise/status file (35 or 43 bytes). It fills every
// field but Supervised and NormallyUp, which live outside the file.
func ParseStatusFile(b []byte) (Status, error) {
	var pidOff, wstatOff, flagsOff int
	switch len(b) {
	case statusSize211:
		pidOff, wstatOff, flagsOff = 24, 32, 34
	case statusSize212:
		pidOff, wstatOff, flagsOff = 24, 40, 42
	default:
		return Status{}, fmt.Errorf("supervise/status: unknown layout of %d bytes", len(b))
	}
	pid := binary.BigEndian.Uint64(b[pidOff:])
	wstat := binary.BigEndian.Uint16(b[wstatOff:])
	flags := b[flagsOff]
	s := Status{
		PID:       int(pid),
		Since:     tai64n(b[0:12]),
		Ready:     flags&flagReady != 0,
		WantUp:    flags&flagWantUp != 0,
		Paused:    flags&flagPaused != 0,
		Finishing: flags&flagFinishing != 0,
		ExitCode:  -1,
		Stamped:   true,
	}
	s.Up = s.PID != 0 && !s.Finishing
	if !s.Up {
		s.PID = 0
		if sig := int(wstat & 0x7f); sig != 0 && sig != 0x7f {
			s.Signal = sig
		} else if sig == 0 {
			s.ExitCode = int(wstat>>8) & 0xff
		}
	}
	return s, nil
}

func tai64n(b []byte) time.Time {
	secs := binary.BigEndian.Uint64(b[0:8])
	nanos := binary.BigEndian.Uint32(b[8:12])
	if secs < taiOffset {
		return time.Time{}
	}
	return time.Unix(int64(secs-taiOffset), int64(nanos)).UTC()
}

// Supervised reports whether an s6-supervise process holds the lock of the service directory
// dir (the test s6-svok makes). A missing lock file means no.
func Supervised(dir string) (bool, error) {
	return supervised(pathFiles(dir))
}

// SupervisedAt is Supervised for the service directory name inside the open directory
// scan: one openat from it instead of a walk of the whole path.
func SupervisedAt(scan *safedir.Dir, name string) (bool, error) {
	return supervised(dirFiles{scan, name})
}

// serviceFiles opens and lstats the files of one service directory: by their paths, or
// relative to an open scan directory. Errors are *os.PathError naming the whole path.
type serviceFiles interface {
	open(rel string, flag int) (int, error)
	lstat(rel string) error
	dir() string // the service directory's path, for messages and s6-svstat
}

// pathFiles is a service directory named by its path.
type pathFiles string

func (p pathFiles) open(rel string, flag int) (int, error) {
	path := filepath.Join(string(p), rel)
	fd, err := unix.Open(path, flag|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return fd, nil
}

func (p pathFiles) lstat(rel string) error {
	_, err := os.Lstat(filepath.Join(string(p), rel))
	return err
}

func (p pathFiles) dir() string { return string(p) }

// dirFiles is the service directory name inside the open directory scan.
type dirFiles struct {
	scan *safedir.Dir
	name string
}

func (d dirFiles) open(rel string, flag int) (int, error) {
	return d.scan.OpenPath(d.name+"/"+rel, flag)
}

func (d dirFiles) lstat(rel string) error {
	_, err := d.scan.LstatPath(d.name + "/" + rel)
	return err
}

func (d dirFiles) dir() string { return d.scan.Join(d.name) }

func supervised(f serviceFiles) (bool, error) {
	fd, err := f.open("supervise/lock", unix.O_RDONLY|unix.O_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	lk := unix.Flock_t{Type: unix.F_WRLCK}
	if err := unix.FcntlFlock(uintptr(fd), unix.F_GETLK, &lk); err != nil {
		return false, &os.PathError{Op: "fcntl", Path: filepath.Join(f.dir(), "supervise", "lock"), Err: err}
	}
	return lk.Type != unix.F_UNLCK, nil
}

// ReadStatus returns the state of the service directory dir, reading supervise/status
// directly. It returns ErrNotSupervised when no s6-supervise runs there, and ErrNoStatus when
// one does but has not written its status file yet. tools is used only when the status file
// has a layout this package does not know.
func (t Tools) ReadStatus(ctx context.Context, dir string) (Status, error) {
	return t.readStatus(ctx, pathFiles(dir))
}

// ReadStatusAt is ReadStatus for the service directory name inside the open directory scan:
// each of its files is one openat from scan instead of a walk of the whole path (`gateway
// status` reads three per gateway). It reads what ReadStatus of scan's path joined with name
// reads.
func (t Tools) ReadStatusAt(ctx context.Context, scan *safedir.Dir, name string) (Status, error) {
	return t.readStatus(ctx, dirFiles{scan, name})
}

func (t Tools) readStatus(ctx context.Context, f serviceFiles) (Status, error) {
	ok, err := supervised(f)
	if err != nil {
		return Status{}, err
	}
	if !ok {
		return Status{}, fmt.Errorf("%s: %w", f.dir(), ErrNotSupervised)
	}
	b, err := readSmall(f, "supervise/status")
	if errors.Is(err, fs.ErrNotExist) {
		// s6-svstat reads the same file: it could only fail too, or — when the file appears
		// while it starts — return a reading whose Since is a guess from the clock, which
		// a caller comparing it with the file's exact stamp a moment later takes for a change.
		return Status{}, fmt.Errorf("%s: %w", f.dir(), ErrNoStatus)
	}
	var s Status
	if err == nil {
		s, err = ParseStatusFile(b)
	}
	if err != nil {
		if errors.Is(err, fs.ErrPermission) {
			return Status{}, err
		}
		// A layout this package does not know (another s6 release): s6-svstat knows it.
		if s, err = t.svstat(ctx, f.dir()); err != nil {
			return Status{}, err
		}
	}
	s.Supervised = true
	s.NormallyUp = errors.Is(f.lstat("down"), fs.ErrNotExist)
	return s, nil
}

// readSmall reads a small file of a service directory (a status file is 35 or 43 bytes) with
// open, read and close only: os.ReadFile's *os.File would add a fstat(2), a fcntl(2) and an
// epoll_ctl(2), and `gateway status` reads one per gateway. A read that returns less than it
// asked for is the end of the file (a regular file's reads are short only there), so a status
// file takes one read. Errors are *os.PathError, as os.ReadFile's.
func readSmall(f serviceFiles, rel string) ([]byte, error) {
	fd, err := f.open(rel, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 64)
	for {
		if len(buf) == cap(buf) {
			if len(buf) >= 1<<20 {
				return nil, &os.PathError{Op: "read", Path: filepath.Join(f.dir(), rel), Err: errors.New("file too large")}
			}
			buf = append(buf, make([]byte, len(buf))...)[:len(buf)]
		}
		want := cap(buf) - len(buf)
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: filepath.Join(f.dir(), rel), Err: err}
		}
		buf = buf[:len(buf)+n]
		if n < want {
			return buf, nil
		}
	}
}

// svstatFields are requested from `s6-svstat -o`; every one exists in s6 2.11 and later.
var svstatFields = []string{"up", "wantedup", "normallyup", "ready", "paused", "pid", "exitcode", "signum", "updownfor"}

func (t Tools) svstat(ctx context.Context, dir string) (Status, error) {
	out, err := t.Output(ctx, filepath.Base(dir), "status", "s6-svstat", "-o", strings.Join(svstatFields, ","), dir)
	if err == nil {
		return ParseSvstatFields(svstatFields, string(out), time.Now())
	}
	out, err2 := t.Output(ctx, filepath.Base(dir), "status", "s6-svstat", dir)
	if err2 != nil {
		return Status{}, err
	}
	return ParseSvstat(string(out), time.Now())
}

// ParseSvstatFields parses the output of `s6-svstat -o <fields>`: one space-separated value
// per requested field, in order. Unknown fields are ignored.
func ParseSvstatFields(fields []string, out string, now time.Time) (Status, error) {
	vals := strings.Fields(out)
	if len(vals) != len(fields) {
		return Status{}, fmt.Errorf("s6-svstat -o: %d values for %d fields in %q", len(vals), len(fields), out)
	}
	s := Status{ExitCode: -1, Supervised: true}
	for i, f := range fields {
		v := vals[i]
		var err error
		switch f {
		case "up":
			s.Up, err = strconv.ParseBool(v)
		case "wantedup":
			s.WantUp, err = strconv.ParseBool(v)
		case "normallyup":
			s.NormallyUp, err = strconv.ParseBool(v)
		case "ready":
			s.Ready, err = strconv.ParseBool(v)
		case "paused":
			s.Paused, err = strconv.ParseBool(v)
		case "pid":
			s.PID, err = strconv.Atoi(v)
		case "exitcode":
			s.ExitCode, err = strconv.Atoi(v)
		case "signum":
			s.Signal, err = strconv.Atoi(v)
		case "updownfor":
			var secs int64
			secs, err = strconv.ParseInt(v, 10, 64)
			s.Since = now.Add(-time.Duration(secs) * time.Second)
		}
		if err != nil {
			return Status{}, fmt.Errorf("s6-svstat -o: field %s=%q: %w", f, v, err)
		}
	}
	if s.Up && s.PID <= 0 {
		return Status{}, fmt.Errorf("s6-svstat -o: up without a valid pid in %q", out)
	}
	if !s.Up {
		s.PID = 0
	}
	if s.Signal < 0 {
		s.Signal = 0
	}
	return s, nil
}

// Compiled on first use: package initialisation runs in every process of the multi-call
// binary (cmd/s6gate), with-contenv included.
var svstatRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^(up|down)(?: \(([^)]*)\))? (\d+) seconds?(.*)$`) })

// ParseSvstat parses the human line of `s6-svstat DIR`:
//
//	up (pid 42) 17 seconds                                   s6 2.11
//	up (pid 42 pgid 42) 17 seconds, normally down, want down  newer s6
//	down (exitcode 0) 3 seconds, normally up, ready 3 seconds
//	down (signal SIGTERM) 0 seconds, normally up
//	down 5 seconds
func ParseSvstat(out string, now time.Time) (Status, error) {
	line := strings.TrimSpace(out)
	m := svstatRE().FindStringSubmatch(line)
	if m == nil {
		return Status{}, fmt.Errorf("s6-svstat: unrecognised output %q", line)
	}
	s := Status{Supervised: true, Up: m[1] == "up", ExitCode: -1}
	secs, _ := strconv.ParseInt(m[3], 10, 64)
	s.Since = now.Add(-time.Duration(secs) * time.Second)
	paren := strings.Fields(m[2])
	for i := 0; i+1 < len(paren); i += 2 {
		switch paren[i] {
		case "pid":
			pid, err := strconv.Atoi(paren[i+1])
			if err != nil {
				return Status{}, fmt.Errorf("s6-svstat: pid %q: %w", paren[i+1], err)
			}
			s.PID = pid
		case "exitcode":
			s.ExitCode, _ = strconv.Atoi(paren[i+1])
		case "signal":
			s.Signal = int(unix.SignalNum(paren[i+1]))
		}
	}
	if s.Up && s.PID <= 0 {
		return Status{}, fmt.Errorf("s6-svstat: %q: up without a valid pid", line)
	}
	// Defaults when the line does not say otherwise: s6-svstat prints "normally X" and
	// "want X" only when they differ from the current state.
	s.NormallyUp, s.WantUp = s.Up, s.Up
	for _, part := range strings.Split(m[4], ",") {
		switch p := strings.TrimSpace(part); {
		case p == "normally up":
			s.NormallyUp = true
		case p == "normally down":
			s.NormallyUp = false
		case p == "want up":
			s.WantUp = true
		case p == "want down":
			s.WantUp = false
		case p == "paused":
			s.Paused = true
		case strings.HasPrefix(p, "ready"):
			s.Ready = true
		case strings.HasPrefix(p, "finish"):
			s.Finishing = true
		}
	}
	return s, nil
}

// ScannerUp reports whether an s6-svscan listens on scandir: whether its control FIFO,
// scandir/.s6-svscan/control, has a reader (the test s6-svscanctl makes before it writes). It
// spawns nothing and writes nothing, and follows no symlink below scandir's parent: root may
// ask this about a directory the service user owns. Anything but a FIFO with a reader means
// no; a FIFO this process may not open is an error.
func ScannerUp(scandir string) (bool, error) {
	return hasReader(scandir, ".s6-svscan", "control")
}

// Listening reports whether the s6-supervise of the service directory dir accepts commands:
// whether supervise/control has a reader, the test s6-svc makes. It is stronger than
// Supervised (the supervisor holds its lock a moment before it opens its control FIFO), so a
// caller that is about to run s6-svc waits for this.
func Listening(dir string) (bool, error) {
	return hasReader(dir, "supervise", "control")
}

// hasReader opens dir/sub (dir's parent is trusted, nothing below it is followed) and asks
// whether the FIFO fifo in it has a reader.
func hasReader(dir, sub, fifo string) (bool, error) {
	d, err := safedir.Open(filepath.Dir(dir), filepath.Join(filepath.Base(dir), sub))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, safedir.ErrSymlink) || errors.Is(err, unix.ENOTDIR) {
			return false, nil
		}
		return false, err
	}
	defer d.Close()
	return d.HasReader(fifo)
}
