//go:build linux

package profileuid_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/profileuid"
)

func open(t *testing.T, root string, r config.UIDRange) *profileuid.Claims {
	t.Helper()
	c, err := profileuid.Open(root, r, true)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

func TestAllocateIsStableAndUnique(t *testing.T) {
	root := t.TempDir()
	r := config.UIDRange{First: 30000, Last: 30009}
	c := open(t, root, r)

	_, err := c.Lookup("coder")
	require.ErrorIs(t, err, profileuid.ErrNone, "nothing claimed yet")

	seen := map[int]string{}
	for i := range r.Size() {
		name := fmt.Sprintf("p%d", i)
		uid, err := c.Allocate(name)
		require.NoError(t, err)
		require.True(t, r.Contains(uid), uid)
		require.NotContains(t, seen, uid, "uid %d given to %s and %s", uid, seen[uid], name)
		seen[uid] = name
	}
	// The same name gets the same uid back, also from a new Claims (another process).
	c2 := open(t, root, r)
	for uid, name := range seen {
		got, err := c2.Allocate(name)
		require.NoError(t, err)
		assert.Equal(t, uid, got, name)
		got, err = c2.Lookup(name)
		require.NoError(t, err)
		assert.Equal(t, uid, got, name)
	}
	// The range is full: a new name is refused with the fix named.
	_, err = c.Allocate("one-more")
	var full *profileuid.FullError
	require.ErrorAs(t, err, &full)
	assert.Contains(t, err.Error(), "GATEWAY_UID_RANGE=30000-30009")

	// A claim is a symlink named by the uid, pointing at the name, and never followed.
	target, err := os.Readlink(filepath.Join(root, profileuid.DirName, strconv.Itoa(mustLookup(t, c, "p3"))))
	require.NoError(t, err)
	assert.Equal(t, "p3", target)
}

func mustLookup(t *testing.T, c *profileuid.Claims, name string) int {
	uid, err := c.Lookup(name)
	require.NoError(t, err)
	return uid
}

// Two profiles registered at once (different verb locks) never get the same uid.
func TestAllocateConcurrently(t *testing.T) {
	root := t.TempDir()
	r := config.UIDRange{First: 40000, Last: 40063}
	open(t, root, r) // creates the directory
	var wg sync.WaitGroup
	uids := make([]int, 64)
	for i := range uids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := profileuid.Open(root, r, false)
			if !assert.NoError(t, err) {
				return
			}
			defer c.Close()
			uids[i], err = c.Allocate(fmt.Sprintf("n%d", i))
			assert.NoError(t, err)
		}()
	}
	wg.Wait()
	seen := map[int]bool{}
	for i, u := range uids {
		require.False(t, seen[u], "uid %d given twice (n%d)", u, i)
		seen[u] = true
	}
}

// Whoever writes a claim decides a profile's uid: a claims directory another user could
// write, or something planted in it, never makes two profiles share a uid.
func TestClaimsDirectoryIsTheOwnersAlone(t *testing.T) {
	root := t.TempDir()
	r := config.UIDRange{First: 30000, Last: 30003}
	dir := filepath.Join(root, profileuid.DirName)
	require.NoError(t, os.Mkdir(dir, 0o777))
	require.NoError(t, os.Chmod(dir, 0o777))
	_, err := profileuid.Open(root, r, false)
	require.Error(t, err, "a world-writable claims directory is refused")
	assert.Contains(t, err.Error(), "only its owner")
	require.NoError(t, os.Chmod(dir, 0o700))

	// A regular file planted at a uid's name is not a claim, and that uid is never given out.
	c := open(t, root, r)
	for u := r.First; u <= r.Last; u++ {
		require.NoError(t, os.WriteFile(filepath.Join(dir, strconv.Itoa(u)), []byte("x"), 0o600))
	}
	_, err = c.Allocate("coder")
	require.ErrorAs(t, err, new(*profileuid.FullError))

	// A symlinked claims directory is never followed.
	root2 := t.TempDir()
	require.NoError(t, os.Symlink(dir, filepath.Join(root2, profileuid.DirName)))
	_, err = profileuid.Open(root2, r, false)
	require.Error(t, err)
}

func TestBadNamesNeverBecomeClaims(t *testing.T) {
	c := open(t, t.TempDir(), config.UIDRange{First: 30000, Last: 30003})
	for _, n := range []string{"", "../x", "A", "-x", "a/b"} {
		_, err := c.Allocate(n)
		require.Error(t, err, n)
	}
}
