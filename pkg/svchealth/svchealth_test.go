package svchealth_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/internal/s6test"
	"github.com/s6gate/s6gate/pkg/s6"
	"github.com/s6gate/s6gate/pkg/s6rc"
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

// s6rcUp compiles an s6-rc source tree (path under s6-rc.d → content; run scripts are made
// executable) and brings its user bundle up under a real s6-svscan, as /init does at boot.
// It returns the paths a health check of that tree reads (no services.d, no history).
func s6rcUp(t *testing.T, files map[string]string) svchealth.Paths {
	t.Helper()
	s6test.Require(t)
	if _, err := os.Stat("/usr/lib/execline/bin/execlineb"); err != nil {
		s6test.Missing(t, "execline is not installed: "+err.Error())
	}
	base := t.TempDir()
	src := filepath.Join(base, "s6-rc.d")
	for name, content := range files {
		s6test.WriteFile(t, filepath.Join(src, name), content)
		if filepath.Base(name) == "run" {
			require.NoError(t, os.Chmod(filepath.Join(src, name), 0o755))
		}
	}
	db, _, err := s6rc.Compile(src)
	require.NoError(t, err)
	p := svchealth.Paths{Scandir: filepath.Join(base, "service"), LegacyServices: filepath.Join(base, "legacy"), S6rcLive: filepath.Join(base, "s6-rc")}
	s6test.StartScan(t, p.Scandir)
	sys := s6rc.NewSystem()
	sys.ToolDirs = []string{s6test.ToolsDir, "/usr/lib/execline/bin"}
	sys.Logf = t.Logf
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	lv, err := s6rc.Init(ctx, p.S6rcLive, p.Scandir, db, sys)
	require.NoError(t, err)
	unlock, err := lv.Lock(ctx, false)
	require.NoError(t, err)
	defer unlock()
	atoms, unknown := lv.DB.Resolve([]string{s6rc.User})
	require.Empty(t, unknown)
	res := lv.Change(ctx, atoms, s6rc.ChangeOptions{Up: true})
	require.Equal(t, s6rc.CodeOK, res.Code, "s6-rc change -u user: %+v", res)
	return p
}

// Of the s6-rc tree only the essential longruns count: one flagged itself, and one inside a
// bundle flagged essential (the flag marks the bundle's contents). A longrun just as broken
// but not essential is no problem of the container's.
func TestOnlyEssentialS6RCServicesCount(t *testing.T) {
	crash := "#!/bin/sh\nexit 1\n"
	p := s6rcUp(t, map[string]string{
		"ess/type": "longrun\n", "ess/run": crash, "ess/flag-essential": "",
		"plain/type": "longrun\n", "plain/run": crash,
		"member/type": "longrun\n", "member/run": crash,
		"crit/type": "bundle\n", "crit/contents.d/member": "", "crit/flag-essential": "",
		"user/type": "bundle\n", "user/contents.d/ess": "", "user/contents.d/plain": "", "user/contents.d/crit": "",
	})
	// Judged now with no grace: a crash-looping longrun is never serving (at any moment it is
	// down, or up for less than a second), so each of the three would be reported if it
	// counted.
	problems, err := svchealth.Check(p, time.Now(), 0)
	require.NoError(t, err)
	var got []string
	for _, pr := range problems {
		got = append(got, pr.Service)
	}
	assert.Equal(t, []string{"s6-rc/ess", "s6-rc/member"}, got, "the longrun flagged essential and the one in a bundle flagged essential: %v", problems)
	assert.NotContains(t, got, "s6-rc/plain", "a longrun that is not essential counts")
}

// A service serves once it has stayed up for a second, not before: one that s6 keeps
// restarting is up now and then, but never for that long.
func TestAServiceServesOnlyAfterASecondUp(t *testing.T) {
	s6test.Require(t)
	base := t.TempDir()
	p := svchealth.Paths{Scandir: filepath.Join(base, "service"), LegacyServices: filepath.Join(base, "legacy")}
	dir := filepath.Join(p.LegacyServices, "steady")
	s6test.WriteFile(t, filepath.Join(dir, "run"), "#!/bin/sh\nexec sleep 1000\n")
	require.NoError(t, os.Chmod(filepath.Join(dir, "run"), 0o755))
	require.NoError(t, os.MkdirAll(p.Scandir, 0o755))
	require.NoError(t, os.Symlink(dir, filepath.Join(p.Scandir, "steady")))
	s6test.StartScan(t, p.Scandir)
	var st s6.Status
	s6test.Eventually(t, 10*time.Second, "steady up", func() bool {
		b, err := os.ReadFile(filepath.Join(dir, "supervise", "status"))
		if err != nil {
			return false
		}
		st, err = s6.ParseStatusFile(b)
		return err == nil && st.Up
	})
	// Judged against s6's own timestamp of the start, with no grace: just short of a second
	// up is not serving yet, a second is.
	problems, err := svchealth.Check(p, st.Since.Add(time.Second-time.Millisecond), 0)
	require.NoError(t, err)
	require.Len(t, problems, 1, "up for 999 ms")
	assert.Equal(t, "services.d/steady", problems[0].Service)
	assert.Contains(t, problems[0].Why, "up but not ready")
	problems, err = svchealth.Check(p, st.Since.Add(time.Second), 0)
	require.NoError(t, err)
	assert.Empty(t, problems, "up for a second: serving")
}
