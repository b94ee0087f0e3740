package verblock_test

import (
	"context"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/verblock"
)

// One holder at a time per profile; other profiles are not held up.
func TestLockExcludesPerProfile(t *testing.T) {
	scan := t.TempDir()
	ctx := context.Background()
	a, err := verblock.Acquire(ctx, scan, "coder")
	require.NoError(t, err)

	other, err := verblock.Acquire(ctx, scan, "writer")
	require.NoError(t, err, "another profile is free")
	other.Release()

	var got atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		b, err := verblock.Acquire(ctx, scan, "coder")
		if err == nil {
			got.Store(true)
			b.Release()
		}
	}()
	select {
	case <-done:
		t.Fatal("a second holder got the lock while the first held it")
	case <-time.After(100 * time.Millisecond):
	}
	a.Release()
	<-done
	assert.True(t, got.Load(), "the waiter gets the lock once it is released")
}

// A waiter whose deadline passes gets a *BusyError naming the profile (exit code 1).
func TestBusyAfterTheDeadline(t *testing.T) {
	scan := t.TempDir()
	held, err := verblock.Acquire(context.Background(), scan, "coder")
	require.NoError(t, err)
	defer held.Release()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = verblock.Acquire(ctx, scan, "coder")
	var busy *verblock.BusyError
	require.ErrorAs(t, err, &busy)
	assert.Equal(t, "coder", busy.Profile)
	assert.Contains(t, err.Error(), "another command is acting on gateway 'coder'")
	assert.Equal(t, exitcode.Failed, exitcode.Of(err))
}

// A lock file deleted and made again by hand while a verb holds it and another waits: the
// waiter ends up holding the file that is at the name now — never a deleted inode — so a third
// caller still has to wait for it. (A waiter opens the name anew on every try; a swap between
// its open and its lock is TestRecheckAfterTheLockDropsAReplacedFile's.)
func TestLockFileDeletedWhileWaitingIsRelocked(t *testing.T) {
	scan := t.TempDir()
	held, err := verblock.Acquire(context.Background(), scan, "coder")
	require.NoError(t, err)
	path := filepath.Join(scan, verblock.Dir, "coder")
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	acquired := make(chan *verblock.Lock)
	go func() {
		l, err := verblock.Acquire(context.Background(), scan, "coder")
		if err == nil {
			acquired <- l
		}
	}()
	// While the waiter waits, the file is swapped: release the old holder only after.
	require.NoError(t, os.Remove(path))
	require.NoError(t, os.WriteFile(path, nil, 0o600))
	held.Release()
	l := <-acquired
	defer l.Release()
	// The waiter holds the file that is at the name now: a third caller must wait for it.
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = verblock.Acquire(ctx, scan, "coder")
	assert.ErrorAs(t, err, new(*verblock.BusyError), "the lock the waiter holds is the live one")
}

// A symlink planted at the lock's name is refused, never followed.
func TestSymlinkAtTheLockIsRefused(t *testing.T) {
	scan := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(scan, verblock.Dir), 0o700))
	victim := filepath.Join(t.TempDir(), "victim")
	require.NoError(t, os.Symlink(victim, filepath.Join(scan, verblock.Dir, "coder")))
	_, err := verblock.Acquire(context.Background(), scan, "coder")
	require.Error(t, err)
	assert.NoFileExists(t, victim)
}
