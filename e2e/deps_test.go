package e2e

import (
	"context"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"
)

// The README's promise on a fresh machine: `make up` and `make test` install what they need
// from Debian's packages themselves (saying so), or stop with one line naming the command.
// docker/deps.sh, which both run first, is run in a fresh Debian 12 container made from the
// local base image with s6 and execline removed (debootstrap, docker-compose and strace are
// not in it): as a non-root user it names the command and exits 2; as root it says what it
// installs, installs it from the Debian mirror in the image's apt sources (the machine's
// mirror when the base image was built), and a second run is silent.
//
// Go and a Docker engine are not in the container (deps.sh never installs them): stand-ins
// answer `go version` and `docker info`, and say the base image is missing, so debootstrap
// is needed too, and that no s6-overlay peer image exists. Without an engine or the base image the test skips locally, fails under CI.
func TestDepsFreshMachine(t *testing.T) {
	base := os.Getenv("BASE_IMAGE")
	if base == "" {
		base = "s6gate-base:bookworm"
	}
	if why := checkImage(base); why != "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and the deps test cannot run: " + why)
		}
		t.Skip(why)
	}
	script, err := os.ReadFile("../docker/deps.sh")
	require.NoError(t, err)
	mkbase, err := os.ReadFile("../docker/mkbase.sh") // deps.sh asks it whether the base image is current
	require.NoError(t, err)

	ctx := context.Background()
	c, err := testcontainers.Run(ctx, base,
		testcontainers.WithCmd("sleep", "infinity"),
		testcontainers.WithFiles(
			testcontainers.ContainerFile{Reader: strings.NewReader(string(script)), ContainerFilePath: "/s6gate/deps.sh", FileMode: 0o755},
			testcontainers.ContainerFile{Reader: strings.NewReader(string(mkbase)), ContainerFilePath: "/s6gate/mkbase.sh", FileMode: 0o755},
			testcontainers.ContainerFile{Reader: strings.NewReader("#!/bin/sh\necho 'go version go1.26.8 linux/amd64'\n"),
				ContainerFilePath: "/usr/local/bin/go", FileMode: 0o755},
			testcontainers.ContainerFile{Reader: strings.NewReader("#!/bin/sh\n[ \"$1\" = info ] && exit 0\nexit 1\n"),
				ContainerFilePath: "/usr/local/bin/docker", FileMode: 0o755},
		))
	t.Cleanup(func() {
		if c != nil {
			_ = c.Terminate(context.Background(), testcontainers.StopTimeout(0)) // sleep ignores SIGTERM as PID 1
		}
	})
	require.NoError(t, err)
	b := &box{t: t, ctx: ctx, c: c}
	run := func(user string, cmd ...string) (int, string) {
		t.Helper()
		code, out := b.exec(user, cmd...)
		out = strings.TrimSpace(out)
		t.Logf("%s$ %s → exit %d\n%s", user, strings.Join(cmd, " "), code, out)
		return code, out
	}

	// What a fresh Debian 12 lacks for `make test`: s6 and execline out, the rest never in.
	code, out := run("", "dpkg", "--purge", "s6", "execline")
	require.Equal(t, 0, code, out)
	for _, p := range []string{"/usr/bin/s6-svscan", "/usr/bin/execlineb", "/usr/sbin/debootstrap", "/usr/bin/docker-compose", "/usr/bin/strace"} {
		require.False(t, b.fileExists(p), p)
	}
	const pkgs = "debootstrap docker-compose s6 execline strace"
	oneLine := regexp.MustCompile(`^deps: missing Debian packages ` + pkgs + `[^\n]*; run as root: apt-get update && apt-get install -y --no-install-recommends ` + pkgs + `$`)

	// While neither the s6-overlay peer image nor its tarballs exist, `make test` must also be
	// able to compile s6-overlay: the C toolchain and musl join the list.
	const peerPkgs = pkgs + " build-essential musl-tools xz-utils linux-libc-dev"
	code, out = run("nobody", "/s6gate/deps.sh", "test")
	assert.Equal(t, 2, code, "non-root, packages missing")
	assert.Regexp(t, `^deps: missing Debian packages `+peerPkgs+`[^\n]*; run as root: apt-get update && apt-get install -y --no-install-recommends `+peerPkgs+`$`, out)

	// From here on the peer's tarballs are built (its default directory, beside the script).
	code, out = run("", "sh", "-c", "mkdir -p /build/s6-overlay-dist && : > /build/s6-overlay-dist/s6-overlay-noarch.tar.xz")
	require.Equal(t, 0, code, out)
	code, out = run("nobody", "/s6gate/deps.sh", "test")
	assert.Equal(t, 2, code, "non-root, packages missing")
	assert.Regexp(t, oneLine, out)

	code, out = run("", "env", "S6GATE_NO_INSTALL=1", "/s6gate/deps.sh", "test")
	assert.Equal(t, 2, code, "S6GATE_NO_INSTALL=1")
	assert.Regexp(t, oneLine, out)

	start := time.Now()
	code, out = run("", "/s6gate/deps.sh", "test")
	require.Equal(t, 0, code, "root install: %s", out)
	t.Logf("installed in %s", time.Since(start).Round(time.Second))
	lines := strings.Split(out, "\n")
	assert.Equal(t, "deps: installing from Debian's packages: "+pkgs, lines[0])
	assert.Regexp(t, `^deps: installed `+pkgs+` in \d+ s$`, lines[len(lines)-1])
	assert.Len(t, lines, 2, "only the two lines, no apt-get output")
	for _, p := range []string{"/usr/bin/s6-svscan", "/usr/bin/execlineb", "/usr/sbin/debootstrap", "/usr/bin/docker-compose", "/usr/bin/strace"} {
		assert.True(t, b.fileExists(p), p)
	}

	// Idempotent and quiet, as root and not.
	code, out = run("", "/s6gate/deps.sh", "test")
	assert.Equal(t, 0, code)
	assert.Empty(t, out)
	code, out = run("nobody", "/s6gate/deps.sh", "up")
	assert.Equal(t, 0, code)
	assert.Empty(t, out)
}

// checkImage says why image cannot be used here ("" when it can).
func checkImage(image string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return "no Docker engine: " + err.Error()
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		return "no Docker engine answers: " + err.Error()
	}
	if _, err := cli.ImageInspect(ctx, image); err != nil {
		return "image " + image + " is missing (run `make base`): " + err.Error()
	}
	return ""
}
