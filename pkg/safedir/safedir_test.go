package safedir_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/safedir"
)

func TestOpenRefusesSymlinkComponents(t *testing.T) {
	base := t.TempDir()
	outside := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(base, "profiles", "real"), 0o755))
	require.NoError(t, os.Symlink(outside, filepath.Join(base, "profiles", "evil")))
	require.NoError(t, os.Symlink(filepath.Join(base, "profiles"), filepath.Join(base, "linkdir")))

	d, err := safedir.Open(base, "profiles/real")
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(base, "profiles", "real"), d.Path())
	require.NoError(t, d.Close())

	for _, rel := range []string{"profiles/evil", "linkdir/real"} {
		_, err := safedir.Open(base, rel)
		require.Error(t, err, rel)
		assert.ErrorIs(t, err, safedir.ErrSymlink, rel)
	}
	for _, rel := range []string{"../x", "/etc", "profiles/../profiles"} {
		_, err := safedir.Open(base, rel)
		assert.Error(t, err, rel)
	}
	_, err = safedir.Open(base, "profiles/missing")
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

func TestMkdirAllCreatesWithExactModeAndReportsCreation(t *testing.T) {
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	base := t.TempDir()

	d, created, err := safedir.MkdirAll(base, "profiles/coder", 0o750)
	require.NoError(t, err)
	assert.True(t, created)
	require.NoError(t, d.Close())
	for _, p := range []string{"profiles", "profiles/coder"} {
		st, err := os.Stat(filepath.Join(base, p))
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o750), st.Mode().Perm(), p)
	}

	d, created, err = safedir.MkdirAll(base, "profiles/coder", 0o750)
	require.NoError(t, err)
	assert.False(t, created, "second call finds the directory")
	require.NoError(t, d.Close())

	require.NoError(t, os.Symlink(t.TempDir(), filepath.Join(base, "profiles", "evil")))
	_, _, err = safedir.MkdirAll(base, "profiles/evil", 0o750)
	assert.ErrorIs(t, err, safedir.ErrSymlink)
}

func TestReadFileRefusesWhatIsNotARegularFile(t *testing.T) {
	base := t.TempDir()
	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("s3cret"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(base, "ok"), []byte("hello"), 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(base, "big"), make([]byte, 100), 0o600))
	require.NoError(t, os.Symlink(secret, filepath.Join(base, "link")))
	require.NoError(t, unix.Mkfifo(filepath.Join(base, "fifo"), 0o600))
	d, err := safedir.Open(base, "")
	require.NoError(t, err)
	defer d.Close()

	b, err := d.ReadFile("ok", 1024)
	require.NoError(t, err)
	assert.Equal(t, "hello", string(b))

	_, err = d.ReadFile("missing", 1024)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	_, err = d.ReadFile("link", 1024)
	assert.ErrorIs(t, err, safedir.ErrSymlink)
	_, err = d.ReadFile("fifo", 1024)
	assert.ErrorIs(t, err, safedir.ErrNotRegular)
	_, err = d.ReadFile("big", 99)
	assert.ErrorIs(t, err, safedir.ErrTooLarge)
	_, err = d.ReadFile("../ok", 1024)
	assert.Error(t, err)
}

func TestWriteFileIsAtomicExactModeAndReplacesSymlinks(t *testing.T) {
	old := unix.Umask(0o777)
	defer unix.Umask(old)
	base := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	require.NoError(t, os.WriteFile(victim, []byte("untouched"), 0o644))
	require.NoError(t, os.Symlink(victim, filepath.Join(base, "state.json")))
	d, err := safedir.Open(base, "")
	require.NoError(t, err)
	defer d.Close()

	require.NoError(t, d.WriteFile("state.json", []byte(`{"a":1}`), 0o640))

	got, err := os.ReadFile(victim)
	require.NoError(t, err)
	assert.Equal(t, "untouched", string(got), "the symlink's target must not be written")
	st, err := os.Lstat(filepath.Join(base, "state.json"))
	require.NoError(t, err)
	assert.True(t, st.Mode().IsRegular(), "the symlink is replaced by a regular file")
	assert.Equal(t, os.FileMode(0o640), st.Mode().Perm(), "mode is exact whatever the umask")
	b, err := d.ReadFile("state.json", 1024)
	require.NoError(t, err)
	assert.Equal(t, `{"a":1}`, string(b))

	entries, err := d.ReadDir()
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temp file left behind")
}

// Root replacing a file keeps its owner: a root process (a test, GATEWAY_USER=root) must not
// take a file away from the user it belongs to. New files are the caller's.
func TestWriteFileOwnershipAsRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root; this test must run there")
		}
		t.Skip("needs root to chown")
	}
	base := t.TempDir()
	d, err := safedir.Open(base, "")
	require.NoError(t, err)
	defer d.Close()

	require.NoError(t, d.WriteFile("new", []byte("x"), 0o640))
	assertOwner(t, filepath.Join(base, "new"), 0, 0)

	require.NoError(t, os.WriteFile(filepath.Join(base, "theirs"), []byte("x"), 0o600))
	require.NoError(t, os.Chown(filepath.Join(base, "theirs"), 5000, 5001))
	require.NoError(t, d.WriteFile("theirs", []byte("y"), 0o640))
	assertOwner(t, filepath.Join(base, "theirs"), 5000, 5001)
	assert.Equal(t, os.FileMode(0o640), mode(t, filepath.Join(base, "theirs")), "the exact mode survives the chown")
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	st, err := os.Lstat(p)
	require.NoError(t, err)
	return st.Mode()
}

func assertOwner(t *testing.T, p string, uid, gid uint32) {
	t.Helper()
	st, err := os.Lstat(p)
	require.NoError(t, err)
	sys := st.Sys().(*syscall.Stat_t)
	assert.Equal(t, uid, sys.Uid, p)
	assert.Equal(t, gid, sys.Gid, p)
}

func TestRemove(t *testing.T) {
	base := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(base, "f"), nil, 0o600))
	d, err := safedir.Open(base, "")
	require.NoError(t, err)
	defer d.Close()
	require.NoError(t, d.Remove("f"))
	require.NoError(t, d.Remove("f"), "missing is fine")
	_, err = os.Stat(filepath.Join(base, "f"))
	assert.True(t, errors.Is(err, fs.ErrNotExist))
}

func TestLockExcludes(t *testing.T) {
	base := t.TempDir()
	d1, err := safedir.Open(base, "")
	require.NoError(t, err)
	defer d1.Close()
	d2, err := safedir.Open(base, "")
	require.NoError(t, err)
	defer d2.Close()

	unlock, err := d1.Lock()
	require.NoError(t, err)
	var acquired atomic.Bool
	done := make(chan struct{})
	go func() {
		u, err := d2.Lock()
		if err == nil {
			acquired.Store(true)
			u()
		}
		close(done)
	}()
	// The second locker must still be waiting while the first holds the lock.
	select {
	case <-done:
		t.Fatal("second Lock returned while the first was held")
	case <-time.After(50 * time.Millisecond):
	}
	unlock()
	<-done
	assert.True(t, acquired.Load())
}

// The descriptor-relative creators set exact modes whatever the umask, and refuse what is
// already there instead of writing through it.
func TestCreateAndMkdirExactAndExclusive(t *testing.T) {
	old := unix.Umask(0o777)
	defer unix.Umask(old)
	base := t.TempDir()
	d, err := safedir.Open(base, "")
	require.NoError(t, err)
	defer d.Close()

	require.NoError(t, d.Create("run", []byte("#!/bin/sh\n"), 0o750))
	assert.Equal(t, os.FileMode(0o750), mode(t, filepath.Join(base, "run")))
	b, err := os.ReadFile(filepath.Join(base, "run"))
	require.NoError(t, err)
	assert.Equal(t, "#!/bin/sh\n", string(b))
	assert.ErrorIs(t, d.Create("run", nil, 0o644), fs.ErrExist, "never over an existing file")
	victim := filepath.Join(t.TempDir(), "victim")
	require.NoError(t, os.Symlink(victim, filepath.Join(base, "link")))
	assert.Error(t, d.Create("link", []byte("x"), 0o644))
	assert.NoFileExists(t, victim, "nothing written through a symlink")

	sub, err := d.Mkdir("event", 0o730|os.ModeSetgid|os.ModeSticky)
	require.NoError(t, err)
	defer sub.Close()
	assert.Equal(t, os.ModeDir|os.ModeSetgid|os.ModeSticky|0o730, mode(t, filepath.Join(base, "event")))
	require.NoError(t, sub.Chmod(0o755))
	assert.Equal(t, os.ModeDir|0o755, mode(t, filepath.Join(base, "event")))
	_, err = d.Mkdir("event", 0o755)
	assert.ErrorIs(t, err, fs.ErrExist)
	for _, bad := range []string{"", ".", "..", "a/b"} {
		assert.Error(t, d.Create(bad, nil, 0o644), bad)
		_, err := d.Mkdir(bad, 0o755)
		assert.Error(t, err, bad)
	}
}

// OpenFile opens regular files only: a symlink is ErrSymlink, a FIFO is ErrNotRegular and is
// never waited on.
func TestOpenFileRegularOnly(t *testing.T) {
	base := t.TempDir()
	d, err := safedir.Open(base, "")
	require.NoError(t, err)
	defer d.Close()
	f, err := d.OpenFile("log", unix.O_WRONLY|unix.O_CREAT|unix.O_APPEND, 0o640)
	require.NoError(t, err)
	_, err = f.WriteString("line\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())

	require.NoError(t, unix.Mkfifo(filepath.Join(base, "fifo"), 0o600))
	done := make(chan error, 1)
	go func() {
		_, err := d.OpenFile("fifo", unix.O_WRONLY|unix.O_CREAT, 0o640)
		done <- err
	}()
	select {
	case err := <-done:
		assert.ErrorIs(t, err, safedir.ErrNotRegular)
	case <-time.After(5 * time.Second):
		t.Fatal("OpenFile blocked on a FIFO")
	}
	require.NoError(t, os.Symlink(filepath.Join(base, "log"), filepath.Join(base, "link")))
	_, err = d.OpenFile("link", unix.O_RDONLY, 0)
	assert.ErrorIs(t, err, safedir.ErrSymlink)
}

func TestRename(t *testing.T) {
	base := t.TempDir()
	d, err := safedir.Open(base, "")
	require.NoError(t, err)
	defer d.Close()
	for _, n := range []string{"a", "b"} {
		require.NoError(t, os.WriteFile(filepath.Join(base, n), []byte(n), 0o600))
	}
	err = d.Rename("a", "b", true)
	assert.ErrorIs(t, err, fs.ErrExist, "no-replace refuses an existing target")
	require.NoError(t, d.Rename("a", "b", false))
	b, err := os.ReadFile(filepath.Join(base, "b"))
	require.NoError(t, err)
	assert.Equal(t, "a", string(b))
	assert.ErrorIs(t, d.Rename("gone", "c", false), fs.ErrNotExist)
	assert.Error(t, d.Rename("b", "../escape", false))
}

func TestIsTempName(t *testing.T) {
	for name, want := range map[string]bool{
		".gateway_state.json123": true, ".profile.json9": true, "..gateway-planned-stop.json42": true,
		".gateway_state.json": false, ".gateway_state.jsonX1": false, "gateway_state.json123": false,
		".gateway_state.json-1": false, ".other123": false,
	} {
		assert.Equal(t, want, safedir.IsTempName(name, "gateway_state.json", "profile.json", ".gateway-planned-stop.json"), name)
	}
}

// posixACL is a system.posix_acl_* extended attribute: user::u, group::g, other::o.
func posixACL(u, g, o uint16) []byte {
	b := []byte{2, 0, 0, 0} // version 2, little endian
	for _, e := range [][2]uint16{{0x01, u}, {0x04, g}, {0x20, o}} {
		b = append(b, byte(e[0]), byte(e[0]>>8), byte(e[1]), byte(e[1]>>8), 0xff, 0xff, 0xff, 0xff)
	}
	return b
}

// Create and Mkdir skip their chmod where creating with the mode gives exactly that mode, and
// only there: the result is the exact mode whatever the umask, a default ACL on the directory
// (which replaces the umask) or a set-gid directory (whose subdirectories inherit the bit).
func TestCreateAndMkdirExactWhateverUmaskACLOrSetgid(t *testing.T) {
	for _, tc := range []struct {
		name  string
		umask int
		setup func(t *testing.T, dir string) // on the directory the files are created in
	}{
		{"umask 0", 0, nil},
		{"umask 022", 0o022, nil},
		{"umask 027", 0o027, nil},
		{"umask 077", 0o077, nil},
		{"umask 0777", 0o777, nil},
		{"set-gid directory", 0o022, func(t *testing.T, dir string) {
			require.NoError(t, os.Chmod(dir, 0o755|os.ModeSetgid))
		}},
		{"default ACL narrower than the umask", 0o022, func(t *testing.T, dir string) {
			if err := unix.Setxattr(dir, "system.posix_acl_default", posixACL(7, 0, 0), 0); err != nil {
				t.Skipf("no POSIX ACLs here: %v", err)
			}
		}},
		{"default ACL wider than the umask", 0o077, func(t *testing.T, dir string) {
			if err := unix.Setxattr(dir, "system.posix_acl_default", posixACL(7, 7, 7), 0); err != nil {
				t.Skipf("no POSIX ACLs here: %v", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			old := unix.Umask(tc.umask)
			defer unix.Umask(old)
			base := t.TempDir()
			if tc.setup != nil {
				tc.setup(t, base)
			}
			d, err := safedir.Open(base, "")
			require.NoError(t, err)
			defer d.Close()
			for _, m := range []os.FileMode{0o644, 0o750, 0o755, 0o600, 0o777, 0o640} {
				name := "f" + m.String()
				require.NoError(t, d.Create(name, []byte("x"), m))
				assert.Equal(t, m, mode(t, filepath.Join(base, name)), "Create %s", name)
			}
			stage, err := d.Mkdir("stage", 0o700)
			require.NoError(t, err)
			defer stage.Close()
			assert.Equal(t, os.ModeDir|0o700, mode(t, filepath.Join(base, "stage")))
			log, err := stage.Mkdir("log", 0o755)
			require.NoError(t, err)
			defer log.Close()
			assert.Equal(t, os.ModeDir|0o755, mode(t, filepath.Join(base, "stage", "log")))
			require.NoError(t, log.Create("run", []byte("x"), 0o755))
			assert.Equal(t, os.FileMode(0o755), mode(t, filepath.Join(base, "stage", "log", "run")))
			require.NoError(t, stage.Create("run", []byte("x"), 0o750))
			assert.Equal(t, os.FileMode(0o750), mode(t, filepath.Join(base, "stage", "run")))
		})
	}
}
