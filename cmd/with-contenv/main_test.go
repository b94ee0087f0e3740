package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/pkg/contenv"
)

func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{nil, 2, "", "with-contenv: missing PROG; " + usage + "\n"},
		{[]string{"--"}, 2, "", "with-contenv: missing PROG; " + usage + "\n"},
		{[]string{"-x", "sh"}, 2, "", "with-contenv: unknown option -x; " + usage + "\n"},
		{[]string{"--help"}, 0, usage + "\n", ""},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, nil, &stdout, &stderr)
		assert.Equal(t, tc.code, code, "%q", tc.args)
		assert.Equal(t, tc.stdout, stdout.String(), "%q", tc.args)
		assert.Equal(t, tc.stderr, stderr.String(), "%q", tc.args)
	}
}

func TestUsageMatchesDocs(t *testing.T) {
	doc, err := os.ReadFile("../../docs/init.md")
	require.NoError(t, err)
	assert.Contains(t, string(doc), strings.TrimPrefix(usage, "usage: "), "docs/init.md must show the usage line")
}

// buildBinary compiles this command the way the Makefile does.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "with-contenv")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	return bin
}

// The host has no /run/s6/container_environment: the environment must pass through untouched
// (SPEC: the same slots run under a plain s6-svscan in tests). Restoring from a real directory
// is covered by pkg/contenv and, at its production path, by the /init tests in cmd/init.
func TestBlackBox(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("linux only")
	}
	if _, err := os.Stat(contenv.DefaultDir); err == nil {
		t.Skipf("%s exists on this machine: the pass-through case cannot be observed here", contenv.DefaultDir)
	}
	bin := buildBinary(t)
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
