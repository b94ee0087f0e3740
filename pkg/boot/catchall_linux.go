package boot

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// The catch-all logger (S6_LOGGING=1 or 2), as s6-linux-init makes it for s6-overlay: a
// service <scandir>/s6-svscan-log reading a FIFO that s6-svscan's stdout and stderr (so every
// service's that has no logger of its own), stage 2's (cont-init.d, the hook) and the CMD's
// are written to, logging with s6-log into /run/uncaught-logs. With 1 the logger also copies
// every line to the container's stderr (docker logs); with 2 nothing reaches it.
const (
	catchallService = "s6-svscan-log"
	catchallDir     = "uncaught-logs"
	catchallConsole = 4 // stage 2's fd of the container's stderr, for S6_CMD_USE_TERMINAL
)

func (l layout) catchallLogs() string { return filepath.Join(l.Run, catchallDir) }
func (l layout) catchallSvc() string  { return filepath.Join(l.Scandir, catchallService) }

// catchall is a catch-all logger being set up: the FIFO opened read-write (so writers never
// get EPIPE nor block on open) and a copy of the container's stderr.
type catchall struct {
	Mode    int
	FIFO    *os.File
	Console *os.File
}

// loggingKnobs reads S6_LOGGING, S6_LOGGING_SCRIPT's timestamp words and S6_CATCHALL_USER.
func loggingKnobs(lookup func(string) (string, bool)) (mode int, stamps []string, user string, warn string) {
	v, _ := lookup(envLogging)
	v = strings.TrimSpace(v)
	if v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			warn = fmt.Sprintf("%s=%q is not 0, 1 or 2: using 0", envLogging, v)
		} else {
			mode = min(n, 2)
		}
	}
	// As s6-overlay's stage 0: the first t and the first T of S6_LOGGING_SCRIPT choose the
	// catch-all logger's timestamps (none when the variable is unset).
	script, _ := lookup("S6_LOGGING_SCRIPT")
	var t, T bool
	for _, w := range strings.Fields(script) {
		t, T = t || w == "t", T || w == "T"
	}
	if t {
		stamps = append(stamps, "t")
	}
	if T {
		stamps = append(stamps, "T")
	}
	user, _ = lookup(envCatchallUser)
	return mode, stamps, strings.TrimSpace(user), warn
}

// setupCatchall makes the logger's service directory and log directory and opens its FIFO.
// uid is /init's: S6_CATCHALL_USER applies only to root, as in s6-overlay.
func setupCatchall(l layout, log *logger, mode int, stamps []string, userName string, uid int) (*catchall, error) {
	if userName != "" && uid != 0 {
		log.printf("boot: warning: %s=%s ignored: /init does not run as root", envCatchallUser, userName)
		userName = ""
	}
	if userName == "root" {
		userName = ""
	}
	owner, group := os.Getuid(), os.Getgid()
	if userName != "" {
		u, err := user.Lookup(userName)
		if err != nil {
			return nil, fmt.Errorf("%s=%s: %v", envCatchallUser, userName, err)
		}
		owner, _ = strconv.Atoi(u.Uid)
		group, _ = strconv.Atoi(u.Gid)
	}
	logs := l.catchallLogs()
	if err := os.MkdirAll(logs, 0o750); err != nil {
		return nil, err
	}
	if err := os.Chown(logs, owner, group); err != nil {
		return nil, err
	}
	if err := unix.Chmod(logs, 0o2750); err != nil {
		return nil, err
	}
	svc := l.catchallSvc()
	if err := os.MkdirAll(svc, 0o755); err != nil {
		return nil, err
	}
	fifo := filepath.Join(svc, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		return nil, fmt.Errorf("mkfifo %s: %w", fifo, err)
	}
	if err := os.WriteFile(filepath.Join(svc, "notification-fd"), []byte("3\n"), 0o644); err != nil {
		return nil, err
	}
	var run strings.Builder
	run.WriteString("#!/usr/bin/execlineb -P\n/usr/lib/execline/bin/fdmove -c 1 2\n/usr/lib/execline/bin/redirfd -rnb 0 fifo\n")
	if userName != "" { // numeric: resolved here, no NSS lookup in the logger
		fmt.Fprintf(&run, "%s -u %d -g %d -G %d\n", filepath.Join(filepath.Dir(l.Svscan), "s6-applyuidgid"), owner, group, group)
	}
	words := []string{filepath.Join(filepath.Dir(l.Svscan), "s6-log"), "-bd3", "--"}
	if mode == 1 {
		words = append(words, "1") // a copy of every line on the container's stderr
	}
	words = append(append(words, stamps...), logs)
	run.WriteString(strings.Join(words, " ") + "\n")
	if err := os.WriteFile(filepath.Join(svc, "run"), []byte(run.String()), 0o755); err != nil {
		return nil, err
	}
	fd, err := unix.Open(fifo, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", fifo, err)
	}
	console, err := unix.FcntlInt(2, unix.F_DUPFD_CLOEXEC, 3)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	c := &catchall{Mode: mode, FIFO: os.NewFile(uintptr(fd), fifo), Console: os.NewFile(uintptr(console), "console")}
	return c, nil
}

// redirect makes s6-svscan's stdout and stderr the FIFO and keeps the console open across
// exec: s6-svscan -X gives it to the logger as its stderr, and puts it back as stdout and
// stderr when it execs into .s6-svscan/finish, so stage 3's lines reach docker logs.
// It returns the -X argument.
func (c *catchall) redirect() (string, error) {
	fd := int(c.FIFO.Fd())
	for _, to := range []int{1, 2} {
		if err := unix.Dup3(fd, to, 0); err != nil {
			return "", err
		}
	}
	if _, err := unix.FcntlInt(c.Console.Fd(), unix.F_SETFD, 0); err != nil {
		return "", err
	}
	return "-X" + strconv.Itoa(int(c.Console.Fd())), nil
}

// stage2Console is the container's stderr as stage 2 got it (fd 4) with a catch-all logger,
// or nil. Without one (no FIFO made at this boot: /run/service is emptied at every boot) fd 4
// may be anything the Go runtime opened.
func stage2Console(l layout) *os.File {
	if _, err := os.Lstat(filepath.Join(l.catchallSvc(), "fifo")); err != nil {
		return nil
	}
	if _, err := unix.FcntlInt(catchallConsole, unix.F_GETFD, 0); err != nil {
		return nil
	}
	return os.NewFile(catchallConsole, "console")
}

// startCatchall sets the catch-all logger up when S6_LOGGING asks for one; nil otherwise, or
// when it cannot be set up (then everything goes to the container's stdout/stderr).
func startCatchall(l layout, log *logger, lookup func(string) (string, bool), uid int) *catchall {
	mode, stamps, userName, warn := loggingKnobs(lookup)
	if warn != "" {
		log.printf("boot: warning: %s", warn)
	}
	if mode == 0 {
		return nil
	}
	c, err := setupCatchall(l, log, mode, stamps, userName, uid)
	if err != nil {
		log.printf("boot: warning: cannot set the catch-all logger up (%s=%d): %v; logging to stdout/stderr", envLogging, mode, err)
		return nil
	}
	where := "only there"
	if mode == 1 {
		where = "and to stderr"
	}
	log.printf("boot: %s=%d: stage 2, services and the CMD log to %s %s", envLogging, mode, l.catchallLogs(), where)
	return c
}
