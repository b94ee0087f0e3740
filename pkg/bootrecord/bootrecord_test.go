package bootrecord_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/pkg/bootrecord"
	"github.com/s6gate/s6gate/pkg/state"
)

// A record is this start's until the container starts again: one of another start reads as
// none, so a verb right after a restart never reports the last start's failure.
func TestWriteRead(t *testing.T) {
	scan := filepath.Join(t.TempDir(), "gateways")
	_, ok, err := bootrecord.Read(scan)
	require.NoError(t, err)
	assert.False(t, ok, "nothing written yet")

	require.NoError(t, bootrecord.Write(scan, bootrecord.Record{State: bootrecord.Booting}))
	r, ok, err := bootrecord.Read(scan)
	require.NoError(t, err)
	require.True(t, ok)
	assert.Equal(t, bootrecord.Booting, r.State)
	assert.Equal(t, state.ContainerStart(), r.Start)
	assert.NoError(t, r.Err())

	require.NoError(t, bootrecord.Write(scan, bootrecord.Record{State: bootrecord.Failed, Step: "check the data root",
		Reason: "data root /opt/data is on a read-only file system", Fix: "mount it read-write"}))
	r, ok, err = bootrecord.Read(scan)
	require.NoError(t, err)
	require.True(t, ok)
	var fe *bootrecord.FailedError
	require.ErrorAs(t, r.Err(), &fe)
	assert.Equal(t, "the boot failed (check the data root): data root /opt/data is on a read-only file system; fix: mount it read-write; no gateway runs until then (see docker logs)", r.Err().Error())
	st, err := os.Stat(bootrecord.Path(scan))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode())

	// The last start's record, as a docker restart leaves it.
	require.NoError(t, os.WriteFile(bootrecord.Path(scan), []byte(`{"container_start":"an earlier start","state":"failed","reason":"old"}`), 0o644))
	_, ok, err = bootrecord.Read(scan)
	require.NoError(t, err)
	assert.False(t, ok, "an earlier start's record is no record")

	require.NoError(t, os.WriteFile(bootrecord.Path(scan), []byte("{"), 0o644))
	_, ok, err = bootrecord.Read(scan)
	assert.Error(t, err)
	assert.False(t, ok)
}

// A symlink at the record is never read through, and root's record is root's even where
// someone else had made the file.
func TestNoSymlinkAndRootsOwn(t *testing.T) {
	dir := t.TempDir()
	scan := filepath.Join(dir, "gateways")
	other := filepath.Join(dir, "forged")
	require.NoError(t, os.WriteFile(other, []byte(`{"state":"ok"}`), 0o644))
	require.NoError(t, os.Symlink(other, bootrecord.Path(scan)))
	_, ok, err := bootrecord.Read(scan)
	assert.Error(t, err)
	assert.False(t, ok)

	if os.Geteuid() != 0 {
		return
	}
	require.NoError(t, os.Remove(bootrecord.Path(scan)))
	require.NoError(t, os.WriteFile(bootrecord.Path(scan), []byte("{}"), 0o666))
	require.NoError(t, os.Chown(bootrecord.Path(scan), 4242, 4242))
	require.NoError(t, bootrecord.Write(scan, bootrecord.Record{State: bootrecord.OK}))
	st, err := os.Stat(bootrecord.Path(scan))
	require.NoError(t, err)
	assert.Zero(t, st.Sys().(*syscall.Stat_t).Uid, "root's")
	assert.Equal(t, os.FileMode(0o644), st.Mode())
}
