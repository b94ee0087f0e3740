//go:build linux

package safedir_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/safedir"
)

// The descriptor-level functions never follow a symlink planted at the last component: the
// promise the packages walking trees by descriptor (aside, svscan, profileuid) rely on.
func TestDescriptorFunctionsNeverFollowASymlink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(dir, "victim")
	require.NoError(t, os.Mkdir(victim, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(victim, "f"), []byte("x"), 0o644))
	require.NoError(t, os.Symlink(victim, filepath.Join(dir, "link")))
	require.NoError(t, os.Symlink(filepath.Join(victim, "f"), filepath.Join(dir, "flink")))
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(dfd)

	_, err = safedir.OpenAt(dfd, "flink", unix.O_RDONLY, 0)
	assert.ErrorIs(t, err, unix.ELOOP, "OpenAt adds O_NOFOLLOW")
	_, err = safedir.OpenDirAt(dfd, "link")
	assert.ErrorIs(t, err, safedir.ErrSymlink)
	assert.ErrorIs(t, safedir.ChmodDirAt(dfd, "link", 0o700), safedir.ErrSymlink)
	st, err := safedir.LstatAt(dfd, "link")
	require.NoError(t, err)
	assert.Equal(t, uint32(unix.S_IFLNK), st.Mode&unix.S_IFMT)
	require.NoError(t, safedir.UnlinkAt(dfd, "link"))

	fi, err := os.Stat(victim)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm(), "the symlink's target is untouched")
	assert.FileExists(t, filepath.Join(victim, "f"))

	require.NoError(t, safedir.MkdirAt(dfd, "d", 0o755))
	require.NoError(t, safedir.ChmodDirAt(dfd, "d", 0o700))
	fi, err = os.Stat(filepath.Join(dir, "d"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "ChmodDirAt changes a real directory")

	require.NoError(t, safedir.RenameAt(dfd, "d", dfd, "e", true))
	require.NoError(t, safedir.MkdirAt(dfd, "d", 0o700))
	assert.ErrorIs(t, safedir.RenameAt(dfd, "d", dfd, "e", true), unix.EEXIST, "noReplace never replaces")
	require.NoError(t, safedir.RmdirAt(dfd, "d"))
}
