package reconcile

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/pkg/config"
)

// The boot makes its scan directory anew (the old one set aside, then removed), so it refuses
// every top-level directory — each one this machine has, and the usual ones it may not —
// wherever the data root is, not only those that hold it. Tested on the guard itself: with the
// guard broken, PrepareBoot would set /srv or /opt aside. And it accepts a directory of its own.
func TestBootRefusesEveryTopLevelScanDir(t *testing.T) {
	s := config.Settings{Home: filepath.Join(t.TempDir(), "data")}
	dirs := []string{"/", "/srv", "/opt", "/var", "/usr", "/etc", "/home", "/root", "/mnt", "/data", "/gateways", "/run", "/tmp", "//srv", "/srv/", "/srv/."}
	top, err := os.ReadDir("/")
	require.NoError(t, err)
	for _, e := range top {
		dirs = append(dirs, "/"+e.Name())
	}
	for _, dir := range dirs {
		s.ScanDir = dir
		err := bootScanDirAllowed(s)
		if assert.Error(t, err, dir) {
			assert.Contains(t, err.Error(), "GATEWAY_SCANDIR="+filepath.Clean(dir)+" is the file system root or a top-level directory", dir)
		}
	}
	for _, ok := range []string{"/run/gateways", "/srv/gateways", "/opt/s6gate/scan", "/var/run/gw"} {
		s.ScanDir = ok
		assert.NoError(t, bootScanDirAllowed(s), ok)
	}
}
