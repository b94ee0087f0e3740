package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/pkg/contenv"
)

// buildBinary compiles this command the way the Makefile does; with multicall, the multi-call
// binary cmd/s6gate and a link named with-contenv to it, as the image installs them.
func buildBinary(t *testing.T, multicall bool) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "with-contenv")
	pkg, out := ".", bin
	if multicall {
		pkg, out = "../s6gate", filepath.Join(dir, "s6gate")
	}
	cmd := exec.Command("go", "build", "-trimpath", "-o", out, pkg)
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	msg, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", msg)
	if multicall {
		require.NoError(t, os.Symlink("s6gate", bin))
	}
	return bin
}

// The host has no /run/s6/container_environment: the environment must pass through untouched
// (SPEC: the same slots run under a plain s6-svscan in tests). Restoring from a real directory
// is covered by pkg/contenv and, at its production path, by the /init tests in cmd/init.
// The same cases run on the single binary and on a with-contenv link to the multi-call binary
// (there the #! line names the link: argv[0] is the interpreter's path, which picks the command).
func TestBlackBox(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("linux only")
	}
	if _, err := os.Stat(contenv.DefaultDir); err == nil {
		t.Skipf("%s exists on this machine: the pass-through case cannot be observed here", contenv.DefaultDir)
	}
	t.Run("single", func(t *testing.T) { blackBox(t, buildBinary(t, false)) })
	t.Run("multicall", func(t *testing.T) { blackBox(t, buildBinary(t, true)) })
}

func blackBox(t *testing.T, bin string) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "noexec"), []byte("#!/bin/sh\necho no\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "badinterp"), []byte("#!/nonexistent/sh\n"), 0o755))
	script := filepath.Join(dir, "run")
	require.NoError(t, os.WriteFile(script, []byte("#!"+bin+" /bin/sh\necho \"FOO=$FOO arg=$1\"\n"), 0o755))

	runBin := func(env []string, args ...string) (string, string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else {
			require.NoError(t, err)
		}
		return stdout.String(), stderr.String(), code
	}
	env := []string{"PATH=/usr/bin:/bin", "FOO=kept"}

	out, _, code := runBin(env, "sh", "-c", `echo "$FOO"`)
	assert.Equal(t, 0, code)
	assert.Equal(t, "kept\n", out, "PROG found through PATH, environment kept")

	out, _, code = runBin(env, script, "x")
	assert.Equal(t, 0, code)
	assert.Equal(t, "FOO=kept arg=x\n", out, "works as a shebang interpreter")

	_, _, code = runBin(env, "sh", "-c", "exit 42")
	assert.Equal(t, 42, code, "the program's own status passes through (exec, no fork)")

	_, stderr, code := runBin(env, "no-such-program-s6gate")
	assert.Equal(t, 127, code)
	assert.Equal(t, "with-contenv: exec no-such-program-s6gate: not found\n", stderr)

	_, stderr, code = runBin(env, filepath.Join(dir, "noexec"))
	assert.Equal(t, 126, code)
	assert.Contains(t, stderr, "permission denied")

	_, _, code = runBin(append(env, "PATH="+dir), "noexec")
	assert.Equal(t, 126, code, "found on PATH but not executable")

	_, _, code = runBin(env, filepath.Join(dir, "badinterp"))
	assert.Equal(t, 127, code, "missing interpreter is ENOENT, like a shell reports it")

	out, _, code = runBin([]string{"FOO=nopath"}, "sh", "-c", `echo "$FOO"`)
	assert.Equal(t, 0, code, "no PATH: the default /command:/usr/bin:/bin is searched")
	assert.Equal(t, "nopath\n", out)
}
