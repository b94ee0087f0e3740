package aside

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/internal/s6test"
)

func TestMain(m *testing.M) {
	if os.Getenv("ASIDE_IDLE_CHILD") == "1" {
		os.Exit(idleChild())
	}
	os.Exit(m.Run())
}

// oldTree lays out what an earlier boot's scan directory may hold: slots, files where s6 wants
// directories and the reverse, a FIFO, symlinks to what must survive, a directory without
// rights, and a chain of depth directories.
func oldTree(t *testing.T, dir, outside string, depth int) {
	t.Helper()
	for _, d := range []string{"gateway-a/supervise", "gateway-b/supervise/lock", "gateway-b/supervise/control", "gateway-b/status", ".s6-svscan/control"} {
		require.NoError(t, os.MkdirAll(filepath.Join(dir, d), 0o755))
	}
	for i := range 50 {
		require.NoError(t, os.WriteFile(filepath.Join(dir, "gateway-a", fmt.Sprintf("f%d", i)), []byte("x"), 0o644))
	}
	require.NoError(t, unix.Mkfifo(filepath.Join(dir, "gateway-a/supervise/control"), 0o600))
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "gateway-a/link-to-outside")))
	require.NoError(t, os.Symlink(outside, filepath.Join(dir, "gateway-b/supervise/lock/link")))
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "locked/inner"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "locked/inner/f"), nil, 0o644))
	require.NoError(t, os.Chmod(filepath.Join(dir, "locked/inner"), 0o500))
	require.NoError(t, os.Chmod(filepath.Join(dir, "locked"), 0))
	deepChain(t, filepath.Join(dir, "deep"), depth)
}

// deepChain makes dir/d/d/…/d, depth levels, with a file at the bottom, by descriptors (the
// path of the bottom is longer than PATH_MAX).
func deepChain(t *testing.T, dir string, depth int) {
	t.Helper()
	require.NoError(t, os.Mkdir(dir, 0o755))
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	require.NoError(t, err)
	for range depth {
		require.NoError(t, unix.Mkdirat(fd, "d", 0o755))
		next, err := unix.Openat(fd, "d", unix.O_RDONLY|unix.O_DIRECTORY, 0)
		require.NoError(t, err)
		unix.Close(fd)
		fd = next
	}
	f, err := unix.Openat(fd, "bottom", unix.O_CREAT|unix.O_WRONLY, 0o644)
	require.NoError(t, err)
	unix.Close(f)
	unix.Close(fd)
}

// One rename takes the old tree away, whatever it holds; it is sealed (0700, root's when root),
// the directory is free for a fresh one, and Leftovers finds the tree until Remove removed it
// all — without following a symlink, with a bounded number of descriptors at 2,000 levels.
func TestSetAsideThenRemove(t *testing.T) {
	base := t.TempDir()
	outside := filepath.Join(base, "outside")
	require.NoError(t, os.MkdirAll(filepath.Join(outside, "keep"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(outside, "keep", "file"), []byte("keep"), 0o644))
	dir := filepath.Join(base, "run", "gateways")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	const depth = 2000
	oldTree(t, dir, outside, depth)

	old, err := SetAside(dir)
	require.NoError(t, err)
	assert.Regexp(t, `/run/\.gateways\.old-[0-9a-f]{12}$`, old)
	assert.NoDirExists(t, dir, "the name is free for a fresh directory")
	st, err := os.Lstat(old)
	require.NoError(t, err)
	assert.Equal(t, os.ModeDir|0o700, st.Mode(), "sealed")
	if os.Geteuid() == 0 {
		assert.Zero(t, st.Sys().(*syscall.Stat_t).Uid, "root's")
	}
	assert.FileExists(t, filepath.Join(old, "gateway-a", "f7"), "moved whole, nothing deleted yet")

	require.NoError(t, os.Mkdir(dir, 0o755))
	left, err := Leftovers(dir)
	require.NoError(t, err)
	assert.Equal(t, []string{old}, left)

	// The descriptors Remove may hold: what is open now, MaxDepth, and a few for the runtime.
	var lim unix.Rlimit
	require.NoError(t, unix.Getrlimit(unix.RLIMIT_NOFILE, &lim))
	open, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	tight := lim
	tight.Cur = uint64(len(open) + MaxDepth + 16)
	require.NoError(t, unix.Setrlimit(unix.RLIMIT_NOFILE, &tight))
	n, err := Remove(old)
	require.NoError(t, unix.Setrlimit(unix.RLIMIT_NOFILE, &lim))
	require.NoError(t, err)
	assert.Greater(t, n, int64(depth+50))
	assert.NoFileExists(t, old)
	assert.NoDirExists(t, old)
	b, err := os.ReadFile(filepath.Join(outside, "keep", "file"))
	require.NoError(t, err, "a symlink's target is never touched")
	assert.Equal(t, "keep", string(b))
	left, err = Leftovers(dir)
	require.NoError(t, err)
	assert.Empty(t, left)
	entries, err := os.ReadDir(filepath.Dir(dir))
	require.NoError(t, err)
	require.Len(t, entries, 1, "only the fresh directory is left")

	n, err = Remove(old)
	assert.NoError(t, err, "a missing tree is nothing to do")
	assert.Zero(t, n)
	got, err := SetAside(filepath.Join(base, "never-there"))
	assert.NoError(t, err)
	assert.Empty(t, got)
}

// A symlink where the directory was is set aside as the symlink, and removed as one.
func TestSetAsideNeverFollowsASymlink(t *testing.T) {
	base := t.TempDir()
	target := filepath.Join(base, "target")
	require.NoError(t, os.MkdirAll(filepath.Join(target, "sub"), 0o755))
	dir := filepath.Join(base, "gateways")
	require.NoError(t, os.Symlink(target, dir))
	old, err := SetAside(dir)
	require.NoError(t, err)
	st, err := os.Lstat(old)
	require.NoError(t, err)
	assert.Equal(t, os.ModeSymlink, st.Mode().Type())
	_, err = Remove(old)
	require.NoError(t, err)
	assert.DirExists(t, filepath.Join(target, "sub"))
	tst, err := os.Stat(target)
	require.NoError(t, err)
	assert.Equal(t, os.ModeDir|0o755, tst.Mode(), "the target was not sealed either")
}

// A directory that cannot be renamed (a mount point) keeps its place: its entries move into a
// sealed dot directory inside it, which Leftovers finds and Remove removes.
func TestMoveEntriesOfADirectoryThatCannotMove(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "service")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	oldTree(t, dir, base, 10)
	for i := range 3000 { // more than one directory read
		require.NoError(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("top%d", i)), nil, 0o644))
	}
	pfd, err := unix.Open(base, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	require.NoError(t, err)
	defer unix.Close(pfd)
	old, err := moveEntries(pfd, dir)
	require.NoError(t, err)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1)
	assert.Equal(t, filepath.Join(dir, entries[0].Name()), old)
	assert.True(t, strings.HasPrefix(entries[0].Name(), ".old-"))
	st, err := os.Lstat(old)
	require.NoError(t, err)
	assert.Equal(t, os.ModeDir|0o700, st.Mode())
	assert.FileExists(t, filepath.Join(old, "top2999"))
	left, err := Leftovers(dir)
	require.NoError(t, err)
	assert.Equal(t, []string{old}, left)
	_, err = Remove(old)
	require.NoError(t, err)
	entries, err = os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries)
}

// A real mount point (a tmpfs in a private mount namespace) cannot be renamed: SetAside moves
// its entries instead, and the mount stays.
func TestSetAsideOfAMountPoint(t *testing.T) {
	s6test.RequireRoot(t)
	base := t.TempDir()
	dir := filepath.Join(base, "service")
	require.NoError(t, os.Mkdir(dir, 0o755))
	type result struct {
		old     string
		err     error
		entries []string
		left    []string
		fstype  int64
	}
	done := make(chan result)
	go func() {
		// This goroutine's thread gets a mount namespace of its own and dies with it (a
		// goroutine that exits locked takes its thread along).
		runtime.LockOSThread()
		var r result
		defer func() { done <- r }()
		if r.err = unix.Unshare(unix.CLONE_NEWNS); r.err != nil {
			return
		}
		if r.err = unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); r.err != nil {
			return
		}
		if r.err = unix.Mount("tmpfs", dir, "tmpfs", 0, "mode=0755"); r.err != nil {
			return
		}
		for _, p := range []string{"slot/supervise/lock", ".s6-svscan/control"} {
			if r.err = os.MkdirAll(filepath.Join(dir, p), 0o755); r.err != nil {
				return
			}
		}
		if r.old, r.err = SetAside(dir); r.err != nil {
			return
		}
		var names []string
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			names = append(names, e.Name())
		}
		r.entries = names
		var st unix.Statfs_t
		_ = unix.Statfs(dir, &st)
		r.fstype = st.Type
		r.left, r.err = Leftovers(dir)
		if r.err == nil {
			_, r.err = Remove(r.old)
		}
		_ = unix.Unmount(dir, unix.MNT_DETACH)
	}()
	r := <-done
	require.NoError(t, r.err)
	assert.Equal(t, int64(unix.TMPFS_MAGIC), r.fstype, "still the mount point")
	require.Len(t, r.entries, 1)
	assert.Equal(t, filepath.Join(dir, r.entries[0]), r.old)
	assert.True(t, strings.HasPrefix(r.entries[0], ".old-"), r.entries[0])
	assert.Equal(t, []string{r.old}, r.left)
}

// Two removers never work on one tree: the second is told at once.
func TestRemoveIsExclusive(t *testing.T) {
	base := t.TempDir()
	tree := filepath.Join(base, ".x.old-1")
	require.NoError(t, os.MkdirAll(filepath.Join(tree, "a"), 0o755))
	fd, err := unix.Open(tree, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	require.NoError(t, err)
	require.NoError(t, unix.Flock(fd, unix.LOCK_EX))
	_, err = Remove(tree)
	assert.ErrorIs(t, err, ErrBusy)
	assert.DirExists(t, filepath.Join(tree, "a"))
	unix.Close(fd)
	_, err = Remove(tree)
	require.NoError(t, err)
	assert.NoDirExists(t, tree)
}

// Idle makes every thread of the process SCHED_IDLE at nice 19 (in a child: the test process
// itself must keep its priority).
func TestIdle(t *testing.T) {
	self, err := os.Executable()
	require.NoError(t, err)
	cmd := exec.Command(self, "-test.run=^$")
	cmd.Env = append(os.Environ(), "ASIDE_IDLE_CHILD=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "idle threads:")
}

func idleChild() int {
	if err := Idle(); err != nil {
		fmt.Println("Idle:", err)
		return 1
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	for _, task := range tasks {
		b, err := os.ReadFile("/proc/self/task/" + task.Name() + "/stat")
		if err != nil {
			fmt.Println(err)
			return 1
		}
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
		// After the command: state is field 3, nice field 19, policy field 41.
		nice, policy := f[19-3], f[41-3]
		if nice != "19" || policy != strconv.Itoa(unix.SCHED_IDLE) {
			fmt.Printf("thread %s: nice %s policy %s\n", task.Name(), nice, policy)
			return 1
		}
	}
	fmt.Println("idle threads:", len(tasks))
	return 0
}
