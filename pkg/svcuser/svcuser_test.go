package svcuser_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/internal/s6test"
	"github.com/s6gate/s6gate/pkg/svcuser"
)

// The child mode of this test binary: become the user named by the environment, then report
// what the process is and whether it can still write where only root can.
func TestMain(m *testing.M) {
	if name := os.Getenv("SVCUSER_TEST_BECOME"); name != "" {
		u, err := svcuser.Become(name)
		out := map[string]any{"uid": os.Getuid(), "euid": os.Geteuid(), "gid": os.Getgid(), "user": u.Name}
		if err != nil {
			out["err"] = err.Error()
		}
		groups, _ := os.Getgroups()
		out["groups"] = groups
		werr := os.WriteFile(filepath.Join(os.Getenv("SVCUSER_TEST_ROOTDIR"), "f"), nil, 0o600)
		out["write_root_dir"] = fmt.Sprint(werr)
		_ = json.NewEncoder(os.Stdout).Encode(out)
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestLookup(t *testing.T) {
	root, err := svcuser.Lookup("root")
	require.NoError(t, err)
	assert.Equal(t, svcuser.User{Name: "root", UID: 0, GID: 0}, root)

	byID, err := svcuser.Lookup("0")
	require.NoError(t, err)
	assert.Equal(t, root, byID)

	_, err = svcuser.Lookup("no-such-user-s6gate")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"no-such-user-s6gate"`)
}

// Root that becomes the service user keeps none of root's rights: its uid, gid and groups are
// the user's, and it can no longer write a root-only directory.
func TestBecomeDropsEverything(t *testing.T) {
	s6test.RequireRoot(t)
	rootDir := t.TempDir()
	require.NoError(t, os.Chmod(rootDir, 0o700))
	nobody, err := svcuser.Lookup("nobody")
	require.NoError(t, err)

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "SVCUSER_TEST_BECOME=nobody", "SVCUSER_TEST_ROOTDIR="+rootDir)
	out, err := cmd.Output()
	require.NoError(t, err)
	var got struct {
		UID, EUID, GID int
		User           string
		Err            string
		Groups         []int
		WriteRootDir   string `json:"write_root_dir"`
	}
	require.NoError(t, json.Unmarshal(out, &got), string(out))
	assert.Empty(t, got.Err)
	assert.Equal(t, nobody.UID, got.UID)
	assert.Equal(t, nobody.UID, got.EUID)
	assert.Equal(t, nobody.GID, got.GID)
	assert.Equal(t, []int{nobody.GID}, got.Groups, "root's supplementary groups are gone")
	assert.Contains(t, got.WriteRootDir, "permission denied")
	assert.NoFileExists(t, filepath.Join(rootDir, "f"))
}

// An unprivileged caller is left as it is: it has nothing to drop and could not switch.
func TestBecomeIsANoOpWhenNotRoot(t *testing.T) {
	if os.Geteuid() == 0 {
		// Root runs the child as nobody, so this branch is exercised in CI too.
		cmd := exec.Command(reachableCopy(t), "-test.run=^$")
		cmd.Env = append(os.Environ(), "SVCUSER_TEST_BECOME=root", "SVCUSER_TEST_ROOTDIR="+t.TempDir())
		nobody, err := svcuser.Lookup("nobody")
		require.NoError(t, err)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(nobody.UID), Gid: uint32(nobody.GID)}}
		out, err := cmd.Output()
		require.NoError(t, err)
		var got map[string]any
		require.NoError(t, json.Unmarshal(out, &got), string(out))
		assert.Equal(t, float64(nobody.UID), got["uid"])
		assert.Equal(t, "nobody", got["user"], "another uid acts as itself")
		assert.NotContains(t, got, "err")
		return
	}
	u, err := svcuser.Become("root")
	require.NoError(t, err)
	assert.Equal(t, os.Geteuid(), u.UID)
}

// The service user itself (a container run with --user 10000) is accepted as it is.
func TestBecomeAsTheServiceUserItself(t *testing.T) {
	s6test.RequireRoot(t)
	nobody, err := svcuser.Lookup("nobody")
	require.NoError(t, err)
	cmd := exec.Command(reachableCopy(t), "-test.run=^$")
	cmd.Env = append(os.Environ(), "SVCUSER_TEST_BECOME=nobody", "SVCUSER_TEST_ROOTDIR="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(nobody.UID), Gid: uint32(nobody.GID)}}
	out, err := cmd.Output()
	require.NoError(t, err)
	var got map[string]any
	require.NoError(t, json.Unmarshal(out, &got), string(out))
	assert.NotContains(t, got, "err")
	assert.Equal(t, "nobody", got["user"])
	assert.Equal(t, float64(nobody.UID), got["uid"])
}

func TestSelf(t *testing.T) {
	me := svcuser.Self("no-such-user-s6gate")
	assert.Equal(t, os.Geteuid(), me.UID)
	assert.Equal(t, os.Getegid(), me.GID)
	if os.Geteuid() == 0 {
		assert.Equal(t, svcuser.User{Name: "root", UID: 0, GID: 0}, me)
		assert.Equal(t, me, svcuser.Self("root"))
	}
}

// reachableCopy copies the test binary where another user can execute it.
func reachableCopy(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "svcuser-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	b, err := os.ReadFile(os.Args[0])
	require.NoError(t, err)
	p := filepath.Join(dir, "svcuser.test")
	require.NoError(t, os.WriteFile(p, b, 0o755))
	return p
}
