package pidlock_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/pkg/pidlock"
	"github.com/s6gate/s6gate/pkg/safedir"
)

func home(t *testing.T) (*safedir.Dir, string) {
	t.Helper()
	root := t.TempDir()
	d, err := safedir.Open(root, "")
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	return d, root
}

// A dead gateway's identity is cleared (the lock file emptied, never removed); a live one's
// is left alone and reported.
func TestSweepStale(t *testing.T) {
	d, root := home(t)
	require.NoError(t, os.WriteFile(filepath.Join(root, pidlock.LockFile), []byte("4242\n"), 0o640))
	require.NoError(t, os.WriteFile(filepath.Join(root, pidlock.PIDFile), []byte(`{"pid":4242}`), 0o640))

	live, cleared, err := pidlock.SweepStale(d)
	require.NoError(t, err)
	assert.False(t, live)
	assert.ElementsMatch(t, []string{pidlock.LockFile, pidlock.PIDFile}, cleared)
	assert.NoFileExists(t, filepath.Join(root, pidlock.PIDFile))
	b, err := os.ReadFile(filepath.Join(root, pidlock.LockFile))
	require.NoError(t, err)
	assert.Empty(t, b, "lock file emptied, not removed")

	l, err := pidlock.TryLock(d)
	require.NoError(t, err)
	require.NoError(t, l.Record(os.Getpid(), nil))
	live, cleared, err = pidlock.SweepStale(d)
	require.NoError(t, err)
	assert.True(t, live, "a held profile lock is a live gateway")
	assert.Empty(t, cleared)
	assert.FileExists(t, filepath.Join(root, pidlock.PIDFile))
	l.Release()
	assert.NoFileExists(t, filepath.Join(root, pidlock.PIDFile), "Release removes the pid file")
}

// One holder at a time; without replace a held lock names its holder.
func TestTryLockAndAcquire(t *testing.T) {
	d, _ := home(t)
	l, err := pidlock.TryLock(d)
	require.NoError(t, err)
	defer l.Release()
	_, err = pidlock.TryLock(d)
	assert.ErrorIs(t, err, pidlock.ErrLocked)
	_, err = pidlock.Acquire(d, false, 0, func(string, ...any) {})
	assert.ErrorIs(t, err, pidlock.ErrLocked)
	assert.Contains(t, err.Error(), "--replace")
	assert.Equal(t, os.Getpid(), pidlock.Holder(d), "the holder is read from /proc/locks")
	_, err = pidlock.Acquire(d, true, 0, func(string, ...any) {})
	assert.ErrorIs(t, err, pidlock.ErrLocked, "replace never signals this very process")
}

// A symlink or FIFO planted as the lock file is refused, never followed or waited on.
func TestLockFileMustBeRegular(t *testing.T) {
	d, root := home(t)
	require.NoError(t, os.Symlink(filepath.Join(t.TempDir(), "victim"), filepath.Join(root, pidlock.LockFile)))
	_, err := pidlock.TryLock(d)
	require.Error(t, err)
	assert.ErrorIs(t, err, safedir.ErrSymlink)
}
