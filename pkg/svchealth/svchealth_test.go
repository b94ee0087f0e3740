package svchealth_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/internal/s6test"
	"github.com/s6gate/s6gate/pkg/svchealth"
)

func TestMain(m *testing.M) { s6test.Main(m) }

// A root tree laid out as /init lays it out, supervised by Debian's real s6-svscan: services.d
// copies linked into the scan directory. Only a service s6 wants up that is not up counts, and
// only past the grace.
func TestCheckFindsAServicesDServiceThatIsDown(t *testing.T) {
	s6test.Require(t)
	base := t.TempDir()
	p := svchealth.Paths{Scandir: filepath.Join(base, "service"), LegacyServices: filepath.Join(base, "legacy"), S6rcLive: filepath.Join(base, "s6-rc"), History: filepath.Join(base, "history.json")}
	svc := func(name, run string, down bool) {
		dir := filepath.Join(p.LegacyServices, name)
		s6test.WriteFile(t, filepath.Join(dir, "run"), "#!/bin/sh\n"+run+"\n")
		require.NoError(t, os.Chmod(filepath.Join(dir, "run"), 0o755))
		if down {
			s6test.WriteFile(t, filepath.Join(dir, "down"), "")
		}
		require.NoError(t, os.MkdirAll(p.Scandir, 0o755))
		require.NoError(t, os.Symlink(dir, filepath.Join(p.Scandir, name)))
	}
	svc("good", "exec sleep 1000", false)
	svc("bad", "exit 1", false)
	svc("parked", "exit 1", true) // ./down: not meant to be up
	// A service a cont-init.d script put there itself is not one of /init's copies.
	s6test.WriteFile(t, filepath.Join(p.Scandir, "other", "run"), "#!/bin/sh\nexit 1\n")
	require.NoError(t, os.Chmod(filepath.Join(p.Scandir, "other", "run"), 0o755))
	s6test.StartScan(t, p.Scandir)

	var problems []svchealth.Problem
	// Judged an hour from now: whatever is not up then is past the grace. Once s6 has started
	// everything, exactly bad is reported: not good (up), not parked (./down), not other.
	s6test.Eventually(t, 10*time.Second, "only bad reported", func() bool {
		var err error
		problems, err = svchealth.Check(p, time.Now().Add(time.Hour), time.Second)
		require.NoError(t, err)
		return len(problems) == 1 && problems[0].Service == "services.d/bad" && strings.Contains(problems[0].Why, "not serving")
	})
	require.Len(t, problems, 1, "%v", problems)
	assert.Equal(t, "services.d/bad", problems[0].Service)
	assert.Contains(t, problems[0].String(), "not serving for")

	problems, err := svchealth.Check(p, time.Now(), time.Hour)
	require.NoError(t, err)
	assert.Empty(t, problems, "within the grace")

	// In real time, bad is never down for long: s6 restarts it every second. The history of
	// when it was first seen not serving is what makes it unhealthy past a 2 s grace.
	s6test.Eventually(t, 15*time.Second, "the crash loop reported past the grace", func() bool {
		problems, err = svchealth.Check(p, time.Now(), 2*time.Second)
		require.NoError(t, err)
		return len(problems) == 1
	})
	assert.Equal(t, "services.d/bad", problems[0].Service)
	assert.FileExists(t, p.History)
}

// No /init tree at all (a host, a test): nothing to say, no error.
func TestCheckWithoutATree(t *testing.T) {
	base := t.TempDir()
	problems, err := svchealth.Check(svchealth.Paths{Scandir: base, LegacyServices: filepath.Join(base, "none"), S6rcLive: filepath.Join(base, "none2")}, time.Now(), 0)
	require.NoError(t, err)
	assert.Empty(t, problems)
}
