//go:build linux && (amd64 || arm64) && !s6gate_nosettlefork

// Package settlefork records an exec-supervised command as settled without starting a second
// program: a fork of `gateway run` (no exec) that runs a fixed sequence of raw system calls.
//
// Why: under exec supervision `gateway run` execs the command, so someone else must wait out
// the settle time and then record running and tell s6 the slot is ready. A second Go program
// (`gateway watch`) costs a fork, an exec and a Go runtime start per gateway, about a third of
// what a gateway's start costs when a container starts a thousand of them at once. A fork
// that never execs costs a copy of the page tables.
//
// The child cannot use the Go runtime (it is a copy of one thread of a multi-threaded
// process), so everything it needs is prepared before the fork (Plan): the file names, the
// state file's current bytes and the bytes to write, the log line. It compares and swaps:
// only when the state file still holds exactly the bytes `gateway run` last wrote (it names
// this command as starting) does it write the prepared running record, under the same flock
// state.Update takes, with the same temp-file, fsync, rename and directory-fsync steps. When
// the file changed meanwhile (an operator verb wrote it) it hands over to the full watcher,
// whose argv Plan also carries, by an exec: the merge of a changed record is Go code.
//
// The child's code is go:nosplit throughout and allocates nothing, as the syscall package's
// child of a fork is; the linker checks that its stack fits. It is built for linux/amd64 and
// linux/arm64 (where clone's arguments are in the order used here); elsewhere, and with the
// build tag s6gate_nosettlefork (a debugger's -gcflags=all=-N -l makes the child's frames too
// big for go:nosplit), Start fails and the caller starts the watcher program.
package settlefork

import (
	"errors"
	"runtime"
	"slices"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The runtime's fork hooks, as package syscall uses them (go.dev/issue/67401 keeps them):
// signals blocked across the fork, the child's handlers reset and its mask restored.
//
//go:linkname runtimeBeforeFork syscall.runtime_BeforeFork
func runtimeBeforeFork()

//go:linkname runtimeAfterFork syscall.runtime_AfterFork
func runtimeAfterFork()

//go:linkname runtimeAfterForkInChild syscall.runtime_AfterForkInChild
func runtimeAfterForkInChild()

// TimeLayout and LogTimeLayout are the layouts of the two timestamps the child fills in (UTC):
// the state file's updated_at and the log line's time.
const (
	TimeLayout    = "2006-01-02T15:04:05Z"
	LogTimeLayout = "2006-01-02T15:04:05.000Z"
)

// Plan is everything the child does, prepared by the parent.
type Plan struct {
	Name string // the child's process name (prctl PR_SET_NAME), at most 15 bytes

	HomeFD   int // the profile home: the state file's directory, and its flock
	ExecFD   int // read end of a pipe whose write end the command's exec closes; -1: none
	NotifyFD int // s6's readiness descriptor; -1: none
	LogFD    int // where the log line goes (2)

	PID       int    // the command's PID (the parent's)
	StartTime uint64 // its start time (/proc/PID/stat field 22)
	Deadline  int64  // CLOCK_MONOTONIC nanoseconds at which the command has settled

	StateFile string // the state file's name in HomeFD
	TempFile  string // the temp file's name (a name the boot sweep recognises)
	Mode      uint32 // the state file's mode

	Expect      []byte // the state file as it must still be
	Next        []byte // what to write instead
	NextTimeAt  int    // offset of a TimeLayout timestamp in Next to fill in
	LogLine     []byte // the log line, written once the record is durable
	LogTimeAt   int    // offset of a LogTimeLayout timestamp in LogLine to fill in
	HandOffLine []byte // the log line before handing over to the full watcher
	HandOffAt   int    // offset of a LogTimeLayout timestamp in HandOffLine to fill in

	// The full watcher: path, argv and environment for the hand-over exec. NotifyFD is moved
	// to descriptor 3 for it.
	Path string
	Argv []string
	Env  []string
}

// prepared is a Plan in the form the child uses: C strings and buffers, nothing to allocate.
type prepared struct {
	name                               *byte
	homeFD, execFD, notifyFD, logFD    int
	pid                                int
	startTime                          uint64
	deadline                           int64
	stateFile, tempFile, procStat, dot *byte
	mode                               uint32
	expect, next, logLine, handOff     []byte
	nextTimeAt, logTimeAt, handOffAt   int
	readBuf, statBuf                   []byte
	keep                               []int // descriptors kept open, sorted
	path                               *byte
	argv, env                          []*byte
	ts                                 unix.Timespec
}

// Start forks the child and returns its PID. It is a sibling of this process (CLONE_PARENT):
// s6-supervise, this process's parent, reaps it, never the command this process becomes.
func Start(p *Plan) (int, error) {
	c, err := prepare(p)
	if err != nil {
		return 0, err
	}
	// As package syscall forks: under ForkLock, no thread lock (runtimeBeforeFork keeps this
	// goroutine on its thread until the fork is done).
	syscall.ForkLock.Lock()
	pid, errno := forkChild(c)
	syscall.ForkLock.Unlock()
	runtime.KeepAlive(c)
	if errno != 0 {
		return 0, errno
	}
	return pid, nil
}

func prepare(p *Plan) (*prepared, error) {
	switch {
	case p.HomeFD < 0 || p.LogFD < 0 || p.PID <= 0:
		return nil, errors.New("settlefork: plan without a home, a log or a PID")
	case p.NextTimeAt < 0 || p.NextTimeAt+len(TimeLayout) > len(p.Next):
		return nil, errors.New("settlefork: the record's timestamp lies outside it")
	case p.LogTimeAt < 0 || p.LogTimeAt+len(LogTimeLayout) > len(p.LogLine),
		p.HandOffAt < 0 || p.HandOffAt+len(LogTimeLayout) > len(p.HandOffLine):
		return nil, errors.New("settlefork: the log line's timestamp lies outside it")
	case len(p.Expect) == 0 || len(p.Next) == 0 || len(p.Argv) == 0:
		return nil, errors.New("settlefork: empty plan")
	}
	c := &prepared{
		homeFD: p.HomeFD, execFD: p.ExecFD, notifyFD: p.NotifyFD, logFD: p.LogFD,
		pid: p.PID, startTime: p.StartTime, deadline: p.Deadline, mode: p.Mode,
		expect: p.Expect, next: slices.Clone(p.Next), logLine: slices.Clone(p.LogLine), handOff: slices.Clone(p.HandOffLine),
		nextTimeAt: p.NextTimeAt, logTimeAt: p.LogTimeAt, handOffAt: p.HandOffAt,
		readBuf: make([]byte, len(p.Expect)+1), statBuf: make([]byte, 1024),
	}
	var err error
	for _, s := range []struct {
		dst **byte
		v   string
	}{
		{&c.name, p.Name}, {&c.stateFile, p.StateFile}, {&c.tempFile, p.TempFile},
		{&c.procStat, "/proc/" + itoa(p.PID) + "/stat"}, {&c.dot, "."}, {&c.path, p.Path},
	} {
		if *s.dst, err = syscall.BytePtrFromString(s.v); err != nil {
			return nil, err
		}
	}
	if c.argv, err = syscall.SlicePtrFromStrings(p.Argv); err != nil {
		return nil, err
	}
	if c.env, err = syscall.SlicePtrFromStrings(p.Env); err != nil {
		return nil, err
	}
	c.keep = []int{0, 1, 2, p.HomeFD, p.LogFD}
	if p.ExecFD >= 0 {
		c.keep = append(c.keep, p.ExecFD)
	}
	if p.NotifyFD >= 0 {
		c.keep = append(c.keep, p.NotifyFD)
	}
	slices.Sort(c.keep)
	c.keep = slices.Compact(c.keep)
	return c, nil
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// forkChild forks; in the child it runs the plan and never returns.
//
//go:norace
//go:nosplit
func forkChild(c *prepared) (int, syscall.Errno) {
	runtimeBeforeFork()
	pid, _, errno := syscall.RawSyscall6(unix.SYS_CLONE, uintptr(unix.CLONE_PARENT|unix.SIGCHLD), 0, 0, 0, 0, 0)
	if errno != 0 || pid != 0 {
		runtimeAfterFork()
		return int(pid), errno
	}
	runtimeAfterForkInChild()
	child(c)
	exit(0)
	return 0, 0
}

// child is the forked process: wait, check, compare and swap, report; or hand over.
//
//go:norace
//go:nosplit
func child(c *prepared) {
	_, _, _ = syscall.RawSyscall6(unix.SYS_PRCTL, unix.PR_SET_NAME, uintptr(unsafe.Pointer(c.name)), 0, 0, 0, 0)
	closeOthers(c)
	// Until the exec the process is `gateway run`: wait for it to become the command (the
	// exec closes the pipe's write end). A failed exec is recorded by `gateway run` itself,
	// and the record then no longer matches.
	if c.execFD >= 0 {
		for {
			n, _, e := syscall.RawSyscall(unix.SYS_READ, uintptr(c.execFD), uintptr(unsafe.Pointer(&c.statBuf[0])), 1)
			if e != unix.EINTR && (e != 0 || n == 0) {
				break
			}
		}
		closeFD(c.execFD)
	}
	c.ts.Sec, c.ts.Nsec = c.deadline/1e9, c.deadline%1e9
	for {
		_, _, e := syscall.RawSyscall6(unix.SYS_CLOCK_NANOSLEEP, unix.CLOCK_MONOTONIC, unix.TIMER_ABSTIME, uintptr(unsafe.Pointer(&c.ts)), 0, 0, 0)
		if e != unix.EINTR {
			break
		}
	}
	if !alive(c) {
		return // the command ended: the slot's finish records how
	}
	lock := openat(c.homeFD, c.dot, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if lock < 0 {
		handOff(c, -1)
	}
	for {
		_, _, e := syscall.RawSyscall(unix.SYS_FLOCK, uintptr(lock), unix.LOCK_EX, 0)
		if e != unix.EINTR {
			if e != 0 {
				handOff(c, lock)
			}
			break
		}
	}
	// Again under the lock, as the watcher program checks: the wait for it may have been long.
	if !alive(c) {
		closeFD(lock)
		return
	}
	if !unchanged(c) {
		handOff(c, lock)
	}
	now := realtime(c)
	putTime(c.next, c.nextTimeAt, now/1e9, -1)
	putTime(c.logLine, c.logTimeAt, now/1e9, (now%1e9)/1e6)
	if !swap(c) {
		handOff(c, lock)
	}
	closeFD(lock)
	if c.notifyFD >= 0 {
		writeAll(c.notifyFD, newline[:])
		closeFD(c.notifyFD)
	}
	writeAll(c.logFD, c.logLine)
}

var newline = [1]byte{'\n'}

// closeOthers closes every descriptor but the ones the plan keeps: the profile lock and
// everything else `gateway run` had open belong to the command.
//
//go:norace
//go:nosplit
func closeOthers(c *prepared) {
	from := 0
	for i := 0; i < len(c.keep); i++ {
		k := c.keep[i]
		if k > from {
			closeRange(from, k-1)
		}
		from = k + 1
	}
	closeRange(from, 1<<31-1)
}

//go:norace
//go:nosplit
func closeRange(lo, hi int) {
	_, _, e := syscall.RawSyscall(unix.SYS_CLOSE_RANGE, uintptr(lo), uintptr(hi), 0)
	if e == 0 {
		return
	}
	// No close_range (Linux < 5.9): one by one, as far as descriptors usually go.
	if hi > 4095 {
		hi = 4095
	}
	for fd := lo; fd <= hi; fd++ {
		closeFD(fd)
	}
}

// alive reports whether the command still runs: /proc/PID/stat names a process that is not a
// zombie and started when the command did.
//
//go:norace
//go:nosplit
func alive(c *prepared) bool {
	fd := openat(unix.AT_FDCWD, c.procStat, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if fd < 0 {
		return false
	}
	n := readFull(fd, c.statBuf)
	closeFD(fd)
	b := c.statBuf[:n]
	// The name (field 2) may hold anything; fields 3 on follow its last ')'.
	i := len(b) - 1
	for i >= 0 && b[i] != ')' {
		i--
	}
	if i < 0 || i+2 >= len(b) {
		return false
	}
	if st := b[i+2]; st == 'Z' || st == 'X' {
		return false
	}
	// Field 22 is the 20th after the ')' (field 3 is the first).
	field := 2
	for i++; i < len(b) && field < 22; i++ {
		if b[i] == ' ' {
			field++
		}
	}
	var start uint64
	digits := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		start = start*10 + uint64(b[i]-'0')
		digits++
	}
	return digits > 0 && start == c.startTime
}

// unchanged reports whether the state file holds exactly c.expect.
//
//go:norace
//go:nosplit
func unchanged(c *prepared) bool {
	fd := openat(c.homeFD, c.stateFile, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if fd < 0 {
		return false
	}
	n := readFull(fd, c.readBuf)
	closeFD(fd)
	if n != len(c.expect) {
		return false
	}
	for i := 0; i < n; i++ {
		if c.readBuf[i] != c.expect[i] {
			return false
		}
	}
	return true
}

// swap writes c.next as the state file: a temp file (exact mode), fsync, rename, fsync of the
// directory. On failure the temp file is removed and nothing changed.
//
//go:norace
//go:nosplit
func swap(c *prepared) bool {
	fd := openat(c.homeFD, c.tempFile, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o600)
	if fd < 0 {
		return false
	}
	_, _, e := syscall.RawSyscall(unix.SYS_FCHMOD, uintptr(fd), uintptr(c.mode), 0)
	ok := e == 0 && writeAll(fd, c.next)
	if ok {
		_, _, e = syscall.RawSyscall(unix.SYS_FSYNC, uintptr(fd), 0, 0)
		ok = e == 0
	}
	closeFD(fd)
	if ok {
		_, _, e = syscall.RawSyscall6(unix.SYS_RENAMEAT, uintptr(c.homeFD), uintptr(unsafe.Pointer(c.tempFile)),
			uintptr(c.homeFD), uintptr(unsafe.Pointer(c.stateFile)), 0, 0)
		ok = e == 0
	}
	if !ok {
		_, _, _ = syscall.RawSyscall(unix.SYS_UNLINKAT, uintptr(c.homeFD), uintptr(unsafe.Pointer(c.tempFile)), 0)
		return false
	}
	// The rename is durable once the directory is; a failure here (EINVAL: a file system
	// without fsync on directories) leaves the new record in place, as safedir.WriteFile does.
	_, _, _ = syscall.RawSyscall(unix.SYS_FSYNC, uintptr(c.homeFD), 0, 0)
	return true
}

// handOff execs the full watcher with s6's descriptor at 3 (lock, if open, is released
// first), or exits when even that fails: the gateway then stays starting, which `gateway
// status` shows and the next start replaces.
//
//go:norace
//go:nosplit
func handOff(c *prepared, lock int) {
	if lock >= 0 {
		closeFD(lock)
	}
	now := realtime(c)
	putTime(c.handOff, c.handOffAt, now/1e9, (now%1e9)/1e6)
	writeAll(c.logFD, c.handOff)
	if c.notifyFD >= 0 && c.notifyFD != 3 {
		_, _, _ = syscall.RawSyscall(unix.SYS_DUP3, uintptr(c.notifyFD), 3, 0)
	} else if c.notifyFD == 3 {
		_, _, _ = syscall.RawSyscall(unix.SYS_FCNTL, 3, unix.F_SETFD, 0)
	}
	_, _, _ = syscall.RawSyscall(unix.SYS_EXECVE, uintptr(unsafe.Pointer(c.path)),
		uintptr(unsafe.Pointer(&c.argv[0])), uintptr(unsafe.Pointer(&c.env[0])))
	exit(111)
}

//go:norace
//go:nosplit
func openat(dir int, name *byte, flags int, mode uint32) int {
	for {
		fd, _, e := syscall.RawSyscall6(unix.SYS_OPENAT, uintptr(dir), uintptr(unsafe.Pointer(name)), uintptr(flags), uintptr(mode), 0, 0)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return -1
		}
		return int(fd)
	}
}

// readFull reads into b until it is full or the file ends; it returns the count (0 on error).
//
//go:norace
//go:nosplit
func readFull(fd int, b []byte) int {
	n := 0
	for n < len(b) {
		r, _, e := syscall.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&b[n])), uintptr(len(b)-n))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0
		}
		if r == 0 {
			break
		}
		n += int(r)
	}
	return n
}

//go:norace
//go:nosplit
func writeAll(fd int, b []byte) bool {
	for n := 0; n < len(b); {
		w, _, e := syscall.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&b[n])), uintptr(len(b)-n))
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return false
		}
		n += int(w)
	}
	return true
}

//go:norace
//go:nosplit
func closeFD(fd int) {
	_, _, _ = syscall.RawSyscall(unix.SYS_CLOSE, uintptr(fd), 0, 0)
}

//go:norace
//go:nosplit
func exit(code int) {
	for {
		_, _, _ = syscall.RawSyscall(unix.SYS_EXIT_GROUP, uintptr(code), 0, 0)
	}
}

// realtime is CLOCK_REALTIME in nanoseconds since the epoch.
//
//go:norace
//go:nosplit
func realtime(c *prepared) int64 {
	_, _, _ = syscall.RawSyscall(unix.SYS_CLOCK_GETTIME, unix.CLOCK_REALTIME, uintptr(unsafe.Pointer(&c.ts)), 0)
	return c.ts.Sec*1e9 + c.ts.Nsec
}

// putTime writes sec (UTC) into b at off as TimeLayout, or as LogTimeLayout with ms when
// ms >= 0. The caller made sure the layout fits.
//
//go:norace
//go:nosplit
func putTime(b []byte, off int, sec, ms int64) {
	days, s := sec/86400, sec%86400
	if s < 0 {
		days, s = days-1, s+86400
	}
	// Civil date from days since 1970-01-01 (H. Hinnant's days_from_civil, inverted).
	z := days + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if mp >= 10 {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	put(b, off, y, 4)
	put(b, off+5, m, 2)
	put(b, off+8, d, 2)
	put(b, off+11, s/3600, 2)
	put(b, off+14, s/60%60, 2)
	put(b, off+17, s%60, 2)
	if ms >= 0 {
		put(b, off+20, ms, 3)
	}
}

//go:norace
//go:nosplit
func put(b []byte, off int, v int64, width int) {
	for i := off + width - 1; i >= off; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
}
