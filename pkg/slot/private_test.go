package slot

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/internal/s6test"
	"github.com/s6gate/s6gate/pkg/s6"
	"github.com/s6gate/s6gate/pkg/safedir"
)

// A slot on its way in (staged) or out (detached) is invisible to a real s6-svscan: it must
// never start a supervisor on half a slot or on a slot being removed. A scan while both exist
// supervises only the published probe slot.
func TestPrivateDirectoriesAreInvisibleToS6Svscan(t *testing.T) {
	s6test.Require(t)
	scanDir := t.TempDir()
	scan, err := safedir.Open(scanDir, "")
	require.NoError(t, err)
	defer scan.Close()

	probe := Spec{Profile: "probe", Home: t.TempDir(), CommandDir: "/usr/bin", User: "nobody", Bin: "/bin/true", Down: true}
	staged, err := stage(scan, Spec{Profile: "half", Home: probe.Home, CommandDir: "/usr/bin", User: "nobody", Bin: "/bin/true"}, nil)
	require.NoError(t, err)
	_, err = Publish(scanDir, Spec{Profile: "leaving", Home: probe.Home, CommandDir: "/usr/bin", User: "nobody", Bin: "/bin/true", Down: true})
	require.NoError(t, err)
	detached, err := detach(scan, "leaving")
	require.NoError(t, err)
	for _, name := range []string{staged, detached} {
		assert.True(t, strings.HasPrefix(name, "."), "%s is a dot entry", name)
		assert.LessOrEqual(t, len(name), 32, "%s has a fixed length, whatever the profile name", name)
	}

	s6test.StartScan(t, scanDir)
	_, err = Publish(scanDir, probe)
	require.NoError(t, err)
	out, err := exec.Command("/usr/bin/s6-svscanctl", "-a", scanDir).CombinedOutput()
	require.NoError(t, err, string(out))
	s6test.Eventually(t, 10*time.Second, "the scan to supervise the probe slot", func() bool {
		ok, _ := s6.Supervised(Path(scanDir, "probe"))
		return ok
	})
	for _, name := range []string{staged, detached} {
		assert.NoDirExists(t, filepath.Join(scanDir, name, "supervise"), "s6-svscan started a supervisor on %s", name)
	}
	entries, err := os.ReadDir(scanDir)
	require.NoError(t, err)
	var visible []string
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			visible = append(visible, e.Name())
		}
	}
	assert.Equal(t, []string{"gateway-probe"}, visible)
}
