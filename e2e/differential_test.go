package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// differentialDockerfile is the one template every fixture is built from, once on the image
// under test (s6gate's /init) and once on the peer image (a real s6-overlay): the fixture's
// rootfs/ tree, a 1777 /trace directory, and `trace`, which appends its arguments as one line
// to /trace/log and prints them as "TRACE ..." on stdout (docker logs).
const differentialDockerfile = `ARG BASE
FROM ${BASE}
RUN mkdir -m 1777 /trace \
 && printf '#!/bin/sh\necho "TRACE $*"\necho "$*" >> /trace/log\n' > /usr/bin/trace \
 && chmod 0755 /usr/bin/trace
COPY rootfs/ /
`

// differentialFixtures is every fixture of testdata/differential and what s6gate's /init is
// expected to do with it compared with the real s6-overlay: "same", or "differs…: <why>" for
// what s6gate does not support yet or does otherwise on purpose (docs/init.md). A "same"
// fixture that diverges fails, and so does a "differs" one that no longer does (then the
// table is out of date: make it "same").
var differentialFixtures = map[string]string{
	"cont-init-order": "same",
	"services-finish": "same",
	"cmd-exit-code":   "same",
	"with-contenv":    "same",
	"stage2-fails": "differs (on purpose, docs/init.md): with S6_BEHAVIOUR_IF_STAGE2_FAILS=2 both run every cont-init.d script and " +
		"stop with exit 1, but s6gate still runs cont-finish.d (s6-overlay does not: legacy-cont-init never came up)",
	"env-without-contenv": "differs (on purpose, docs/init.md): s6-overlay gives cont-init.d scripts and the CMD only PATH (the container " +
		"environment through with-contenv or printcontenv, or S6_KEEP_ENV=1); s6gate runs both in the container environment",
	"s6rc-bundle": "same",
	// A linuxserver-style tree: oneshots depending on each other in user, a longrun whose output
	// a logger longrun consumes (producer-for/consumer-for), a user2 oneshot after legacy-services.
	"linuxserver-tree": "same",
}

// outcome is what a fixture's container observably did.
type outcome struct {
	ExitCode int
	Trace    []string // /trace/log: what ran, in order
	Logged   []string // the TRACE lines of docker logs, sorted (stdout and stderr interleave)
}

func (o outcome) String() string {
	return "exit " + strconv.Itoa(o.ExitCode) + "\n  trace: " + strings.Join(o.Trace, "\n         ") +
		"\n  logged: " + strings.Join(o.Logged, " | ")
}

// Each fixture is a directory with rootfs/ (copied onto /), fixture.cmd (the CMD, run by
// `sh -c`) and optionally fixture.env (KEY=VALUE lines given to `docker run -e`).
func TestDifferentialAgainstS6Overlay(t *testing.T) {
	requireEngine(t)
	requirePeer(t)
	dirs, err := filepath.Glob("testdata/differential/*")
	require.NoError(t, err)
	seen := map[string]bool{}
	for _, dir := range dirs {
		name := filepath.Base(dir)
		seen[name] = true
		want, ok := differentialFixtures[name]
		if !ok {
			t.Errorf("fixture %s is not in differentialFixtures: say whether s6gate behaves the same", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			ours := runFixture(t, dir, Image)
			peer := runFixture(t, dir, PeerImage)
			t.Logf("s6gate (%s): %s", Image, ours)
			t.Logf("s6-overlay (%s): %s", PeerImage, peer)
			same := assert.ObjectsAreEqual(ours, peer)
			require.True(t, want == "same" || strings.HasPrefix(want, "differs"), "%s: %q is neither same nor differs…", name, want)
			if want == "same" {
				assert.Equal(t, peer, ours, "s6gate's /init must behave as s6-overlay's")
			} else {
				assert.False(t, same, "the known difference is gone (%s): mark %s \"same\"", want, name)
			}
		})
	}
	for name := range differentialFixtures {
		assert.True(t, seen[name], "differentialFixtures names %s, which has no directory", name)
	}
}

// runFixture builds the fixture on base and runs it to its end.
func runFixture(t *testing.T, dir, base string) outcome {
	t.Helper()
	df := filepath.Join(t.TempDir(), "Dockerfile")
	require.NoError(t, os.WriteFile(df, []byte(differentialDockerfile), 0o644))
	tag := randomName("s6gate-diff:" + filepath.Base(dir) + "-")
	t0 := time.Now()
	docker(t, "build", "-q", "-t", tag, "--build-arg", "BASE="+base, "-f", df, dir)
	t.Cleanup(func() { _ = exec.Command("docker", "image", "rm", "-f", tag).Run() })

	args := []string{"create", "--name", randomName("s6gate-diff-")}
	if env, err := os.ReadFile(filepath.Join(dir, "fixture.env")); err == nil {
		for _, l := range strings.Split(strings.TrimSpace(string(env)), "\n") {
			args = append(args, "-e", l)
		}
	}
	cmd, err := os.ReadFile(filepath.Join(dir, "fixture.cmd"))
	require.NoError(t, err)
	id := docker(t, append(args, tag, "sh", "-c", strings.TrimSpace(string(cmd)))...)
	t.Cleanup(func() { _ = exec.Command("docker", "rm", "-f", "-v", id).Run() })
	t1 := time.Now()
	docker(t, "start", id)

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", "wait", id).Output()
	require.NoError(t, err, "the %s container on %s did not end within 90 s", filepath.Base(dir), base)
	t.Logf("%s on %s: built in %s, ran in %s", filepath.Base(dir), base, t1.Sub(t0).Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
	var o outcome
	o.ExitCode, err = strconv.Atoi(strings.TrimSpace(string(out)))
	require.NoError(t, err)

	logs, _ := exec.Command("docker", "logs", id).CombinedOutput()
	for _, l := range strings.Split(string(logs), "\n") {
		if rest, ok := strings.CutPrefix(l, "TRACE "); ok {
			o.Logged = append(o.Logged, rest)
		}
	}
	sort.Strings(o.Logged)
	tmp := t.TempDir()
	if exec.Command("docker", "cp", id+":/trace/log", tmp).Run() == nil {
		b, err := os.ReadFile(filepath.Join(tmp, "log"))
		require.NoError(t, err)
		o.Trace = strings.Split(strings.TrimSpace(string(b)), "\n")
	}
	if t.Failed() {
		t.Logf("docker logs of %s on %s:\n%s", filepath.Base(dir), base, logs)
	}
	return o
}
