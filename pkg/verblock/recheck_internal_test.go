package verblock

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The lock file is deleted and made again at its name between Acquire's open and its flock
// (by hand, or by a buggy tool): the flock is granted on the deleted file, which nobody else
// can ever lock, so Acquire must not keep it. It notices under the lock that the file at the
// name is another one, drops it and locks that one: a second caller has to wait.
func TestRecheckAfterTheLockDropsAReplacedFile(t *testing.T) {
	scan := t.TempDir()
	locks, err := OpenLocks(scan)
	require.NoError(t, err)
	defer locks.Close()
	path := filepath.Join(scan, Dir, "coder")
	opens := 0
	locks.opened = func(profile string) {
		opens++
		if opens == 1 {
			require.NoError(t, os.Remove(path))
			require.NoError(t, os.WriteFile(path, nil, 0o600))
		}
	}
	l, err := locks.Acquire(context.Background(), "coder")
	require.NoError(t, err)
	defer l.Release()
	assert.Equal(t, 2, opens, "the lock on the replaced file was dropped and the file at the name opened")

	held, err := l.f.Stat()
	require.NoError(t, err)
	at, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, at.Sys().(*syscall.Stat_t).Ino, held.Sys().(*syscall.Stat_t).Ino, "the lock held is on the file at the name")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = Acquire(ctx, scan, "coder")
	assert.ErrorAs(t, err, new(*BusyError), "a second caller got the lock: the first holds a deleted file")
}
