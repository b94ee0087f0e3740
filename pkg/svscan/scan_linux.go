package svscan

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/s6gate/s6gate/pkg/safedir"
	"golang.org/x/sys/unix"
)

// The timings of s6-svscan 2.11 (src/supervision/s6-svscan.c), kept so that the gateways'
// tree behaves the same under either scanner.
const (
	// restartDelay: a supervisor that dies while its directory is still there is started again
	// at the first scan one second after its death (s6-svscan's reap: "restarted in 1 second").
	restartDelay = time.Second
	// dirRetry: a directory that could not be read is looked at again after 3 s
	// (DIR_RETRY_TIMEOUT).
	dirRetry = 3 * time.Second
	// forkRetry: a supervisor whose fork failed is tried again after 4 s (CHECK_RETRY_TIMEOUT).
	forkRetry = 4 * time.Second
	// readyPoll is how often, until readiness is notified, the new supervisors are asked
	// whether they listen.
	readyPoll = 10 * time.Millisecond
)

// service is one directory of the scan directory with its supervisors, as s6-svscan's
// struct svinfo_s: index 0 is the service's supervisor, 1 its logger's.
type service struct {
	name         string // the entry's name when it was found (supervisors run in it by name)
	dev, ino     uint64 // the directory's identity: a renamed directory is the same service
	pid          [2]int
	restartAfter [2]time.Time
	// pipe links the service's stdout to its logger's stdin for the service's lifetime.
	// pipe[0] is -1 once closed for a departing service, -2 when such a service came back
	// (s6-svscan's "BLACK MAGIC": it is started again, with a new pipe, once both old
	// supervisors are gone).
	pipe [2]int
	// logOut is the write end of the logger's stdout, a pipe the forwarder reads (prefixing
	// each line with the gateway's name), kept like pipe; -1 when there is none.
	logOut int
	hasLog bool
	active bool // seen by the last scan
	uid    int  // the real uid of the running service supervisor: 0 when it is the service user's
}

type scanner struct {
	cfg     Config
	log     *slog.Logger
	dir     int // the scan directory, opened once; also gw-svscan's working directory
	svcUID  int
	svcGID  int
	keptEnv []string // Environ as an isolated supervisor gets it (KeepEnv)
	// noSetpriv says why no slot can be isolated ("" when setpriv is there)
	noSetpriv string
	uidMap    []idRange
	gidMap    []idRange
	services  []*service
	fwd       *forwarder // the loggers' lines to gw-svscan's stdout (forward_linux.go)

	wantReap bool
	wantScan bool
	wantKill int // s6-svscan's bits: 1 every service (else only departed ones), 2 TERM the services (else HUP), 4 TERM the loggers
	cont     bool
	waitAll  bool
	deadline time.Time // the next scan without being asked; zero: none

	notifyFD    int // -1 once notified (or never asked)
	readyArmed  bool
	readyBy     time.Time
	readyBefore []string // supervisor directories (NAME or NAME/log) not yet listening
}

// Run supervises cfg.ScanDir until a stop: SIGTERM or SIGINT (or s6-svscanctl -t/-i) bring
// every supervisor down and wait for them, SIGQUIT (-q) too and TERMs the loggers as well,
// SIGABRT (-b) leaves them running. It returns nil after a stop, a *SetupError or
// *SystemError when it cannot start. It must run as root.
func Run(cfg Config) error {
	// Signals first, so a stop that comes during the setup is not the default action (death
	// with the supervisors left behind). SIGCHLD has a channel of its own: coalesced
	// deliveries lose nothing (every wake-up reaps all), and a flood of them never crowds out
	// a stop.
	chld := make(chan os.Signal, 1)
	signal.Notify(chld, unix.SIGCHLD)
	sigc := make(chan os.Signal, 16)
	signal.Notify(sigc, unix.SIGTERM, unix.SIGINT, unix.SIGQUIT, unix.SIGHUP, unix.SIGABRT,
		unix.SIGALRM, unix.SIGUSR1, unix.SIGUSR2, unix.SIGPWR, unix.SIGWINCH, unix.SIGPIPE)
	defer signal.Stop(chld)
	defer signal.Stop(sigc)

	s, ctlFD, err := setup(cfg)
	if err != nil {
		return err
	}
	s.log.Info("supervising", "scandir", cfg.ScanDir, "uid", s.svcUID, "gid", s.svcGID, "isolated_uids", cfg.UIDs.String())
	if s.noSetpriv != "" {
		s.log.Warn("no slot with "+UIDFile+" can start", "reason", s.noSetpriv)
	}
	ctl := make(chan []byte)
	go readControl(ctlFD, ctl)
	s.loop(chld, sigc, ctl)
	return nil
}

// setup opens the scan directory, takes its owner as the service user, makes .s6-svscan and
// its control FIFO, and returns the scanner with the FIFO's read end.
func setup(cfg Config) (*scanner, int, error) {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	s := &scanner{cfg: cfg, log: cfg.Log, notifyFD: -1, wantReap: true, wantScan: true, cont: true, waitAll: true,
		fwd: newForwarder(1)}
	if cfg.NotifyFD >= 0 {
		if cfg.NotifyFD < 3 {
			return nil, -1, &SetupError{Path: "-d " + strconv.Itoa(cfg.NotifyFD), Reason: "the notification fd must be 3 or more"}
		}
		if _, err := unix.FcntlInt(uintptr(cfg.NotifyFD), unix.F_SETFD, unix.FD_CLOEXEC); err != nil {
			return nil, -1, &SetupError{Path: "-d " + strconv.Itoa(cfg.NotifyFD), Reason: "invalid notification fd: " + err.Error()}
		}
		s.notifyFD = cfg.NotifyFD
	}
	dir, err := unix.Open(cfg.ScanDir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR):
		reason := "is not a directory"
		var st unix.Stat_t
		if unix.Lstat(cfg.ScanDir, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			reason = "is a symbolic link"
		}
		return nil, -1, &SetupError{Path: cfg.ScanDir, Reason: reason}
	case err != nil:
		return nil, -1, &SystemError{&os.PathError{Op: "open", Path: cfg.ScanDir, Err: err}}
	}
	var st unix.Stat_t
	if err := unix.Fstat(dir, &st); err != nil {
		return nil, -1, &SystemError{&os.PathError{Op: "fstat", Path: cfg.ScanDir, Err: err}}
	}
	switch {
	case st.Uid == 0:
		return nil, -1, &SetupError{Path: cfg.ScanDir, Reason: "is owned by root: gw-svscan runs the supervisors as the scan directory's owner and group (the service user), never as root"}
	case st.Gid == 0:
		return nil, -1, &SetupError{Path: cfg.ScanDir, Reason: "belongs to group root: gw-svscan runs the supervisors as the scan directory's owner and group (the service user), never as group root"}
	case st.Mode&0o002 != 0:
		return nil, -1, &SetupError{Path: cfg.ScanDir, Reason: fmt.Sprintf("is world-writable (mode %04o)", st.Mode&0o7777)}
	}
	s.dir, s.svcUID, s.svcGID = dir, int(st.Uid), int(st.Gid)
	// The supervisors run in the scan directory with relative names, as s6-svscan's do; the
	// directory is the one opened above, whatever its path leads to later.
	if err := unix.Fchdir(dir); err != nil {
		return nil, -1, &SystemError{&os.PathError{Op: "fchdir", Path: cfg.ScanDir, Err: err}}
	}
	ctl, err := openControl(dir, cfg.ScanDir, s.svcUID, s.svcGID)
	if err != nil {
		return nil, -1, err
	}
	// Every supervisor inherits this: an isolated slot's command, at its own process limit
	// under the same real uid, must never keep its supervisor from forking ./run or ./finish.
	if err := raiseNproc(); err != nil {
		s.log.Warn("cannot raise RLIMIT_NPROC", "err", err.Error())
	}
	if st, err := os.Stat(cfg.Setpriv); cfg.Setpriv == "" || err != nil || !st.Mode().IsRegular() {
		s.noSetpriv = fmt.Sprintf("no setpriv at %q (util-linux) to start it with", cfg.Setpriv)
	}
	s.keptEnv = KeepEnv(cfg.Environ)
	s.uidMap = readIDMap("/proc/self/uid_map")
	s.gidMap = readIDMap("/proc/self/gid_map")
	return s, ctl, nil
}

func (s *scanner) loop(chld, sigc <-chan os.Signal, ctl <-chan []byte) {
	for s.cont {
		s.reap()
		s.scan()
		s.killThem()
		s.notifyReady()
		var timer *time.Timer
		var timeout, poll <-chan time.Time
		if !s.deadline.IsZero() {
			timer = time.NewTimer(time.Until(s.deadline))
			timeout = timer.C
		}
		if s.notifyFD >= 0 {
			poll = time.After(readyPoll)
		}
		select {
		case <-chld:
			s.wantReap = true
		case sig := <-sigc:
			s.signal(sig.(syscall.Signal))
		case b := <-ctl:
			s.control(b)
		case <-timeout:
			s.wantScan = true
		case <-poll:
		}
		if timer != nil {
			timer.Stop()
		}
	}
	// The stop, as s6-svscan's finish phase (without its finish script: gw-svscan never runs
	// anything from the scan directory).
	s.killThem()
	s.closePipes()
	if s.waitAll {
		s.waitThem()
		s.fwd.drain() // the loggers' last lines (a gateway's "exiting") reach docker logs
	} else {
		s.wantReap = true
		s.reap()
	}
}

// signal is s6-svscan's handle_signals for a scan directory without .s6-svscan/SIG* scripts:
// gw-svscan never runs them.
func (s *scanner) signal(sig syscall.Signal) {
	switch sig {
	case unix.SIGALRM:
		s.wantScan = true
	case unix.SIGABRT:
		s.cont, s.waitAll = false, false
	case unix.SIGHUP:
		s.wantKill, s.wantScan = 2, true
	case unix.SIGINT, unix.SIGTERM:
		s.cont, s.waitAll, s.wantKill = false, true, 3
	case unix.SIGQUIT:
		s.cont, s.waitAll, s.wantKill = false, true, 7
	}
	// SIGUSR1, SIGUSR2, SIGPWR, SIGWINCH: only scripts of s6-svscan's answer them. SIGPIPE:
	// a write to a closed pipe fails instead of killing gw-svscan.
}

// control is s6-svscan's handle_control: the commands of s6-svscanctl.
func (s *scanner) control(b []byte) {
	for _, c := range b {
		switch c {
		case 'z':
			s.wantReap = true
		case 'a':
			s.wantScan = true
		case 'b':
			s.signal(unix.SIGABRT)
		case 'h':
			s.signal(unix.SIGHUP)
		case 'i', 't':
			s.signal(unix.SIGTERM)
		case 'q':
			s.signal(unix.SIGQUIT)
		case 'n':
			s.wantKill = 2
		case 'N':
			s.wantKill = 6
		default:
			s.log.Warn("unknown control command ignored", "command", strconv.QuoteRune(rune(c)))
		}
	}
}

// later makes the loop scan at t at the latest.
func (s *scanner) later(t time.Time) {
	if s.deadline.IsZero() || t.Before(s.deadline) {
		s.deadline = t
	}
}

// reap waits for every child that has exited. A supervisor of a directory still there is
// started again at the first scan one second later; once a departed service has no
// supervisor left it is forgotten, and its pipe closed as soon as either side is gone.
func (s *scanner) reap() {
	if !s.wantReap {
		return
	}
	s.wantReap = false
	next := time.Now().Add(restartDelay)
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		i, which := s.byPID(pid)
		if i < 0 {
			continue
		}
		sv := s.services[i]
		sv.pid[which] = 0
		sv.restartAfter[which] = next
		if sv.active {
			s.later(next)
			continue
		}
		if sv.hasLog {
			if sv.pipe[0] >= 0 {
				s.closePipe(sv)
			} else if sv.pipe[0] == -2 {
				s.wantScan = true
			}
		}
		if sv.pid[0] == 0 && (!sv.hasLog || sv.pid[1] == 0) {
			s.forget(i)
		}
	}
}

func (s *scanner) byPID(pid int) (int, int) {
	for i, sv := range s.services {
		for j := range sv.pid {
			if sv.pid[j] == pid {
				return i, j
			}
		}
	}
	return -1, 0
}

func (s *scanner) forget(i int) {
	last := len(s.services) - 1
	s.services[i] = s.services[last]
	s.services = s.services[:last]
}

func (s *scanner) closePipe(sv *service) {
	unix.Close(sv.pipe[1])
	unix.Close(sv.pipe[0])
	sv.pipe = [2]int{-1, -1}
	if sv.logOut >= 0 {
		unix.Close(sv.logOut) // the forwarder ends once the logger has closed its copy too
		sv.logOut = -1
	}
}

// scan reads the scan directory and starts what is missing, as s6-svscan's scan and check.
func (s *scanner) scan() {
	if !s.wantScan {
		return
	}
	s.wantScan = false
	s.deadline = time.Time{}
	if s.cfg.Rescan > 0 {
		s.deadline = time.Now().Add(s.cfg.Rescan)
	}
	names, err := s.readNames()
	if err != nil {
		s.log.Warn("cannot read the scan directory; retrying in 3 s", "err", err.Error())
		s.later(time.Now().Add(dirRetry))
		return
	}
	for _, sv := range s.services {
		sv.active = false
	}
	for _, name := range names {
		s.check(name)
	}
	for i := 0; i < len(s.services); i++ {
		sv := s.services[i]
		if sv.active || sv.pid[0] != 0 {
			continue
		}
		if sv.hasLog {
			if sv.pid[1] != 0 {
				continue
			}
			if sv.pipe[0] >= 0 {
				s.closePipe(sv)
			}
		}
		s.forget(i)
		i--
	}
}

// readNames lists the scan directory through a descriptor of its own (the directory opened
// at start, never its path).
func (s *scanner) readNames() ([]string, error) {
	fd, err := safedir.OpenAt(s.dir, ".", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), s.cfg.ScanDir)
	defer f.Close()
	return f.Readdirnames(-1)
}

// check is s6-svscan's check of one entry, except that only real directories count: a
// symbolic link is skipped (s6-svscan follows it), and so is a symlinked log.
func (s *scanner) check(name string) {
	if strings.HasPrefix(name, ".") {
		return
	}
	st, err := safedir.LstatAt(s.dir, name)
	if err != nil {
		s.log.Warn("cannot stat an entry; retrying in 3 s", "entry", name, "err", err.Error())
		s.later(time.Now().Add(dirRetry))
		return
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return
	}
	var sv *service
	for _, x := range s.services {
		if x.dev == st.Dev && x.ino == st.Ino {
			sv = x
			break
		}
	}
	if sv != nil && sv.hasLog && sv.pipe[0] < 0 {
		// It departed and came back before both old supervisors were gone: it starts again
		// once they are (reap).
		sv.pipe[0] = -2
		return
	}
	if sv == nil {
		if len(s.services) >= s.cfg.Max {
			s.log.Warn("too many services: not supervised", "entry", name, "max", s.cfg.Max)
			return
		}
		hasLog, err := s.hasLog(name, st.Dev, st.Ino)
		if err != nil {
			s.log.Warn("cannot stat a log directory; retrying in 3 s", "entry", name, "err", err.Error())
			s.later(time.Now().Add(dirRetry))
			return
		}
		now := time.Now()
		sv = &service{name: name, dev: st.Dev, ino: st.Ino, hasLog: hasLog, pipe: [2]int{-1, -1}, logOut: -1, restartAfter: [2]time.Time{now, now}}
		if hasLog {
			var p [2]int
			if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
				s.log.Warn("cannot make a pipe; retrying in 3 s", "entry", name, "err", err.Error())
				s.later(time.Now().Add(dirRetry))
				return
			}
			r, w, err := s.fwd.pipe()
			if err != nil {
				unix.Close(p[0])
				unix.Close(p[1])
				s.log.Warn("cannot make a pipe; retrying in 3 s", "entry", name, "err", err.Error())
				s.later(time.Now().Add(dirRetry))
				return
			}
			sv.pipe, sv.logOut = p, w
			s.fwd.copy(r, name)
		}
		s.services = append(s.services, sv)
	}
	sv.active = true
	now := time.Now()
	if sv.hasLog && sv.pid[1] == 0 {
		if !sv.restartAfter[1].After(now) {
			s.start(sv, true)
		} else {
			s.later(sv.restartAfter[1])
		}
	}
	if sv.pid[0] == 0 {
		if !sv.restartAfter[0].After(now) {
			s.start(sv, false)
		} else {
			s.later(sv.restartAfter[0])
		}
	}
}

// openEntry opens the service directory name, without following a symlink, and checks that
// it is still the directory dev/ino.
func (s *scanner) openEntry(name string, dev, ino uint64) (int, error) {
	fd, err := safedir.OpenAt(s.dir, name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if st.Dev != dev || st.Ino != ino {
		unix.Close(fd)
		return -1, errors.New("replaced while it was being looked at")
	}
	return fd, nil
}

// hasLog reports whether the service directory has a log directory (not a symlink to one).
func (s *scanner) hasLog(name string, dev, ino uint64) (bool, error) {
	fd, err := s.openEntry(name, dev, ino)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	st, err := safedir.LstatAt(fd, "log")
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	return st.Mode&unix.S_IFMT == unix.S_IFDIR, nil
}

// start forks the service's (or its logger's) s6-supervise, with the service's pipe as the
// service's stdout or the logger's stdin. The logger, and a service without UIDFile, run as the
// service user; a service with one runs isolated (isolation), or not at all.
func (s *scanner) start(sv *service, log bool) {
	which, dir := 0, sv.name
	if log {
		which, dir = 1, sv.name+"/log"
	}
	files := []uintptr{0, 1, 2}
	if sv.hasLog {
		if log {
			files[0] = uintptr(sv.pipe[0])
			if sv.logOut >= 0 {
				files[1] = uintptr(sv.logOut)
			}
		} else {
			files[1] = uintptr(sv.pipe[1])
		}
	}
	uid := 0
	if !log {
		var err error
		if uid, err = s.isolation(sv); err != nil {
			s.log.Error("isolated slot not started (retried at the next scan)", "slot", sv.name, "reason", err.Error())
			return
		}
	}
	var pid int
	var err error
	if uid == 0 {
		pid, err = syscall.ForkExec(s.cfg.Supervise, []string{"s6-supervise", dir}, &syscall.ProcAttr{
			Env: s.cfg.Environ, Files: files,
			Sys: &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(s.svcUID), Gid: uint32(s.svcGID), Groups: []uint32{}}},
		})
	} else {
		pid, err = syscall.ForkExec(s.cfg.Setpriv, IsolatedArgs(uid, s.svcUID, s.svcGID, s.cfg.Supervise, dir), &syscall.ProcAttr{
			Env: s.keptEnv, Files: files,
		})
	}
	if err != nil {
		s.log.Warn("cannot start a supervisor; retrying in 4 s", "dir", dir, "err", err.Error())
		sv.restartAfter[which] = time.Now().Add(forkRetry)
		s.later(sv.restartAfter[which])
		return
	}
	sv.pid[which] = pid
	if !log {
		sv.uid = uid
	}
}

// killThem is s6-svscan's killthem: it signals the supervisors of the departed services (or
// of all of them), each with SIGTERM (bring the service down, then exit) or SIGHUP (exit
// once the service is down).
func (s *scanner) killThem() {
	if s.wantKill == 0 {
		return
	}
	for _, sv := range s.services {
		if s.wantKill&1 == 0 && sv.active {
			continue
		}
		if sv.pid[0] != 0 {
			sig := unix.SIGHUP
			if s.wantKill&2 != 0 {
				sig = unix.SIGTERM
			}
			_ = unix.Kill(sv.pid[0], sig)
		}
		if sv.hasLog && sv.pid[1] != 0 {
			sig := unix.SIGHUP
			if s.wantKill&4 != 0 {
				sig = unix.SIGTERM
			}
			_ = unix.Kill(sv.pid[1], sig)
		}
	}
	s.wantKill = 0
}

func (s *scanner) closePipes() {
	for _, sv := range s.services {
		if sv.hasLog && sv.pipe[0] >= 0 {
			s.closePipe(sv)
		}
	}
}

// waitThem waits until every supervisor has exited (reaping any other child on the way).
func (s *scanner) waitThem() {
	left := 0
	for _, sv := range s.services {
		for _, pid := range sv.pid {
			if pid != 0 {
				left++
			}
		}
	}
	for left > 0 {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, 0, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return
		}
		if i, which := s.byPID(pid); i >= 0 {
			s.services[i].pid[which] = 0
			left--
		}
	}
}

// notifyReady writes the readiness newline once the first scan is done and every supervisor
// it started listens on its control FIFO, or ReadyTimeout after that scan.
func (s *scanner) notifyReady() {
	if s.notifyFD < 0 {
		return
	}
	if !s.readyArmed {
		s.readyArmed = true
		s.readyBy = time.Now().Add(s.cfg.ReadyTimeout)
		for _, sv := range s.services {
			if sv.pid[0] != 0 {
				s.readyBefore = append(s.readyBefore, sv.name)
			}
			if sv.hasLog && sv.pid[1] != 0 {
				s.readyBefore = append(s.readyBefore, sv.name+"/log")
			}
		}
	}
	var still []string
	for _, d := range s.readyBefore {
		if !s.listening(d) {
			still = append(still, d)
		}
	}
	s.readyBefore = still
	if len(still) > 0 && time.Now().Before(s.readyBy) {
		return
	}
	if len(still) > 0 {
		s.log.Warn("notifying readiness although some supervisors do not listen yet", "waited", s.cfg.ReadyTimeout.String(), "count", len(still), "first", still[0])
	}
	if _, err := unix.Write(s.notifyFD, []byte("\n")); err != nil {
		s.log.Warn("cannot notify readiness", "err", err.Error())
	}
	unix.Close(s.notifyFD)
	s.notifyFD, s.readyBefore = -1, nil
}

// listening reports whether the supervisor of dir (NAME or NAME/log, relative to the scan
// directory) has its supervise/control FIFO open for reading. Nothing on the way is followed
// and nothing but a FIFO is ever opened for writing.
func (s *scanner) listening(dir string) bool {
	fd, err := safedir.OpenAt(s.dir, ".", unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return false
	}
	for _, c := range append(strings.Split(dir, "/"), "supervise") {
		next, err := safedir.OpenAt(fd, c, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		unix.Close(fd)
		if err != nil {
			return false
		}
		fd = next
	}
	p, err := safedir.OpenAt(fd, "control", unix.O_PATH, 0)
	unix.Close(fd)
	if err != nil {
		return false
	}
	defer unix.Close(p)
	var st unix.Stat_t
	if unix.Fstat(p, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return false
	}
	w, err := unix.Open("/proc/self/fd/"+strconv.Itoa(p), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	unix.Close(w)
	return true
}
