package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/s6gate/s6gate/pkg/s6util"
	"github.com/stretchr/testify/require"
)

// s6gate's own answers, in process.
func TestOwnMessages(t *testing.T) {
	for _, tc := range []struct {
		name           string
		argv           []string
		code           int
		stdout, stderr string
	}{
		{"list", []string{"s6gate", "--list"}, 0, "gateway\ngw-reconcile\ngw-render\ngw-mark\ngw-svscan\nwith-contenv\nprintcontenv\ns6-rc\ninit\n" +
			strings.Join(s6util.Names(), "\n") + "\n", ""},
		{"help", []string{"/usr/local/bin/s6gate", "--help"}, 0, usage, ""},
		{"no command", []string{"s6gate"}, 2, "", usage},
		{"empty argv", nil, 2, "", usage},
		{"unknown command", []string{"s6gate", "nope"}, 2, "", "s6gate: unknown command \"nope\"\n" + usage},
		{"a job name of /init is no command", []string{"s6gate", "finish"}, 2, "", "s6gate: unknown command \"finish\"\n" + usage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			assert.Equal(t, tc.code, run(tc.argv, &stdout, &stderr))
			assert.Equal(t, tc.stdout, stdout.String())
			assert.Equal(t, tc.stderr, stderr.String())
		})
	}
	for _, c := range commands() {
		assert.Contains(t, usage, c.name)
	}
}

// The dispatch on argv[0], through links as the image installs them, and `s6gate CMD`.
func TestDispatchThroughLinks(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "s6gate")
	cmd := exec.Command("go", "build", "-trimpath", "-o", bin, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build: %s", out)
	for _, c := range commands() {
		require.NoError(t, os.Symlink("s6gate", filepath.Join(dir, c.name)))
	}
	// A second level of links, like /command/with-contenv → /usr/local/bin/with-contenv.
	require.NoError(t, os.Mkdir(filepath.Join(dir, "command"), 0o755))
	require.NoError(t, os.Symlink("../with-contenv", filepath.Join(dir, "command", "with-contenv")))
	script := filepath.Join(dir, "script")
	require.NoError(t, os.WriteFile(script, []byte("#!"+filepath.Join(dir, "command", "with-contenv")+" /bin/sh\necho \"interp $0 $1\"\n"), 0o755))

	for _, tc := range []struct {
		argv []string
		code int
		out  string // prefix of stdout
	}{
		{[]string{"gateway", "--help"}, 0, "usage:\n  gateway run"},
		{[]string{"gw-reconcile", "--help"}, 0, "usage: gw-reconcile"},
		{[]string{"gw-render", "--help"}, 0, "usage:\n  gw-render render"},
		{[]string{"gw-mark", "--help"}, 0, "usage:\n  gw-mark write"},
		{[]string{"gw-svscan", "--help"}, 0, "usage: gw-svscan"},
		{[]string{"printcontenv", "--help"}, 0, "usage: printcontenv VAR"},
		{[]string{"with-contenv", "--help"}, 0, "usage: with-contenv PROG"},
		{[]string{"s6-rc", "help"}, 0, "usage: s6-rc"},
		{[]string{"command/with-contenv", "sh", "-c", "echo via-link"}, 0, "via-link"},
		{[]string{"script", "arg"}, 0, "interp " + script + " arg"},
		{[]string{"s6gate", "gateway", "--help"}, 0, "usage:\n  gateway run"},
		{[]string{"s6gate", "with-contenv", "sh", "-c", "exit 7"}, 7, ""},
		{[]string{"s6gate", "--list"}, 0, "gateway\n"},
	} {
		c := exec.Command(filepath.Join(dir, tc.argv[0]), tc.argv[1:]...)
		c.Env = []string{"PATH=/usr/bin:/bin"}
		var stdout, stderr bytes.Buffer
		c.Stdout, c.Stderr = &stdout, &stderr
		err := c.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else {
			require.NoError(t, err, "%v", tc.argv)
		}
		assert.Equal(t, tc.code, code, "%v: %s", tc.argv, stderr.String())
		assert.True(t, strings.HasPrefix(stdout.String(), tc.out), "%v: stdout %q", tc.argv, stdout.String())
	}
}
