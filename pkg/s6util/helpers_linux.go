package s6util

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/contenv"
)

// Defaults of s6-overlay's helpers.
const (
	DefaultLoggingScript = "n20 s1000000 T" // S6_LOGGING_SCRIPT
	defaultRetries       = 3
	defaultRetryTimeout  = 500 // ms
	nobodyID             = 65534
)

// exec replaces the process with argv (looked up in environ's PATH); it returns only on
// failure, with 127 (not found) or 126.
func (p *proc) exec(argv, environ []string) int {
	err := contenv.Exec(argv, environ)
	fmt.Fprintf(p.Stderr, "%s: fatal: unable to exec %s: %s\n", p.name, argv[0], errText(errors.Unwrap(err)))
	return contenv.ExecCode(err)
}

// with-retries [ -n retries ] [ -t millisecs ] prog...: runs prog up to `retries` times (3),
// each attempt killed (SIGTERM) after `millisecs` ms (500; 0 = no limit), until one exits 0.
// Exit 0 when one did, 1 when none did (or retries is 0), 100 on a usage error.
func withRetriesMain(p *proc) int {
	opts, argv, ok := getopt(p.Args, "n:t:")
	if !ok || len(argv) == 0 {
		return p.dieUsage()
	}
	n, t := defaultRetries, defaultRetryTimeout
	for _, o := range opts {
		v, err := strconv.Atoi(o.val)
		if err != nil || v < 0 {
			return p.dieUsage()
		}
		if o.name == 'n' {
			n = v
		} else {
			t = v
		}
	}
	path, _ := lookupEnv(p.Environ, "PATH")
	if path == "" {
		path = contenv.DefaultPath
	}
	for i := 0; i < n; i++ {
		if attempt(p, argv, path, time.Duration(t)*time.Millisecond) {
			return 0
		}
	}
	return 1
}

// attempt runs argv once and reports whether it exited 0 within limit (0: no limit).
func attempt(p *proc, argv []string, path string, limit time.Duration) bool {
	prog, err := contenv.LookPath(argv[0], path)
	if err != nil {
		p.warn("unable to spawn %s: %s", argv[0], errText(err))
		return false
	}
	cmd := &exec.Cmd{Path: prog, Args: argv, Env: p.Environ, Stdin: p.Stdin, Stdout: p.Stdout, Stderr: p.Stderr}
	if err := cmd.Start(); err != nil {
		p.warn("unable to spawn %s: %s", argv[0], errText(err))
		return false
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var timeout <-chan time.Time
	if limit > 0 {
		tm := time.NewTimer(limit)
		defer tm.Stop()
		timeout = tm.C
	}
	select {
	case err := <-done:
		return err == nil
	case <-timeout:
	}
	// A signal that arrives between fork and exec is lost (the child still runs Go's
	// handlers), so TERM is repeated for a moment; a prog that survives TERM is left running,
	// as s6-maximumtime does.
	for range 20 {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Process.Signal(syscall.SIGCONT)
		select {
		case <-done:
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
	return false
}

// logutil-service [ -f fifo ] logdir: execs into `s6-log -b -- $S6_LOGGING_SCRIPT logdir`
// with an empty environment, as nobody (65534:65534 when there is no such user) when run as
// root, reading the fifo instead of stdin with -f. S6_LOGGING_SCRIPT comes from the container
// environment (printcontenv), "n20 s1000000 T" when unset.
func logutilServiceMain(p *proc) int {
	opts, args, ok := getopt(p.Args, "f:")
	if !ok || len(args) == 0 {
		return p.dieUsage()
	}
	script, set, _ := contenv.Lookup(p.Environ, contenv.DefaultDir, "S6_LOGGING_SCRIPT")
	if !set || strings.TrimSpace(script) == "" {
		script = DefaultLoggingScript
	}
	for _, o := range opts {
		if o.val == "" {
			continue
		}
		fd, err := unix.Open(o.val, unix.O_RDONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			return p.fatal(111, "unable to open %s: %s", o.val, errText(err))
		}
		if err := unix.SetNonblock(fd, false); err != nil {
			return p.fatal(111, "unable to set %s blocking: %s", o.val, errText(err))
		}
		if err := unix.Dup2(fd, 0); err != nil {
			return p.fatal(111, "unable to read from %s: %s", o.val, errText(err))
		}
		_ = unix.Close(fd)
	}
	if os.Geteuid() == 0 {
		uid, gid, groups := nobodyID, nobodyID, []int{}
		if u, err := user.Lookup("nobody"); err == nil {
			uid, _ = strconv.Atoi(u.Uid)
			gid, _ = strconv.Atoi(u.Gid)
			groups = supplementary(u)
		}
		if err := dropTo(uid, gid, groups); err != nil {
			return p.fatal(111, "unable to drop privileges to %d:%d: %s", uid, gid, errText(err))
		}
	}
	argv := append(append([]string{"s6-log", "-b", "--"}, strings.FieldsFunc(script, func(r rune) bool { return r == ' ' || r == '\t' })...), args[0])
	return p.exec(argv, []string{"PATH=" + contenv.DefaultPath})
}

func supplementary(u *user.User) []int {
	ids, err := u.GroupIds()
	if err != nil {
		return []int{}
	}
	out := []int{}
	for _, s := range ids {
		if n, err := strconv.Atoi(s); err == nil {
			out = append(out, n)
		}
	}
	return out
}

// dropTo sets groups, gid, then uid (every thread: Go's syscall package does that on Linux).
func dropTo(uid, gid int, groups []int) error {
	if err := syscall.Setgroups(groups); err != nil {
		return err
	}
	if err := syscall.Setgid(gid); err != nil {
		return err
	}
	return syscall.Setuid(uid)
}

// logutil-newfifo [ -m mode ] [ -o owner ] fifo: (deprecated upstream, and says so) replaces
// fifo with a new FIFO of mode (0600) owned by owner (root; "user" or "user:group").
func logutilNewfifoMain(p *proc) int {
	opts, args, ok := getopt(p.Args, "m:o:")
	if !ok {
		return p.dieUsage()
	}
	mode, owner := uint32(0o600), "root"
	for _, o := range opts {
		if o.name == 'm' {
			m, ok := parseOctal(o.val)
			if !ok {
				return p.dieUsage()
			}
			mode = m
		} else {
			owner = o.val
		}
	}
	if len(args) == 0 {
		return 1
	}
	fifo := args[0]
	p.warn("this binary is deprecated, use s6-mkfifo and s6-chown instead")
	if err := os.RemoveAll(fifo); err != nil {
		return p.fatal(111, "unable to remove %s: %s", fifo, errText(err))
	}
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		return p.fatal(111, "unable to mkfifo %s: %s", fifo, errText(err))
	}
	if err := unix.Chmod(fifo, mode); err != nil {
		return p.fatal(111, "unable to chmod %s: %s", fifo, errText(err))
	}
	uid, gid, err := ResolveAccount(owner)
	if err != nil {
		return p.fatal(1, "%v", err)
	}
	if err := os.Chown(fifo, uid, gid); err != nil {
		return p.fatal(111, "unable to chown %s: %s", fifo, errText(err))
	}
	return 0
}

// ResolveAccount turns an account spec of s6-overlay's fix-attrs.d files (and s6-envuidgid)
// into a uid and a gid: "user" (the user's uid and primary group), "user:group", each part a
// name or a number, optionally followed by ",UID:GID", the fallback for parts that do not
// resolve ("nobody,32768:32768", "daemon:unexisting,3:4" → daemon's uid, gid 4).
func ResolveAccount(spec string) (uid, gid int, err error) {
	account, fallback, hasFallback := strings.Cut(spec, ",")
	defUID, defGID := -1, -1
	if hasFallback {
		u, g, ok := strings.Cut(fallback, ":")
		du, e1 := strconv.Atoi(u)
		dg, e2 := strconv.Atoi(g)
		if !ok || e1 != nil || e2 != nil || du < 0 || dg < 0 {
			return 0, 0, fmt.Errorf("invalid fallback %q in account %q (want UID:GID)", fallback, spec)
		}
		defUID, defGID = du, dg
	}
	userPart, groupPart, hasGroup := strings.Cut(account, ":")
	uid, primary, okU := lookupUser(userPart)
	if !okU {
		if defUID < 0 {
			return 0, 0, fmt.Errorf("unknown user %q in account %q", userPart, spec)
		}
		uid = defUID
	}
	if !hasGroup {
		if okU && primary >= 0 {
			return uid, primary, nil
		}
		if defGID < 0 {
			return 0, 0, fmt.Errorf("no group for %q in account %q", userPart, spec)
		}
		return uid, defGID, nil
	}
	gid, okG := lookupGroup(groupPart)
	if !okG {
		if defGID < 0 {
			return 0, 0, fmt.Errorf("unknown group %q in account %q", groupPart, spec)
		}
		gid = defGID
	}
	return uid, gid, nil
}

// lookupUser returns a user's uid and primary gid (-1 when the name is a bare number).
func lookupUser(name string) (uid, gid int, ok bool) {
	if u, err := user.Lookup(name); err == nil {
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
		return uid, gid, true
	}
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		if u, err := user.LookupId(name); err == nil {
			g, _ := strconv.Atoi(u.Gid)
			return n, g, true
		}
		return n, -1, true
	}
	return 0, 0, false
}

func lookupGroup(name string) (int, bool) {
	if g, err := user.LookupGroup(name); err == nil {
		n, _ := strconv.Atoi(g.Gid)
		return n, true
	}
	if n, err := strconv.Atoi(name); err == nil && n >= 0 {
		return n, true
	}
	return 0, false
}
