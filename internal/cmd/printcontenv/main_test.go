package printcontenv

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/pkg/contenv"
)

func TestUsageMatchesDocs(t *testing.T) {
	doc, err := os.ReadFile("../../../docs/init.md")
	require.NoError(t, err)
	assert.Contains(t, string(doc), strings.TrimPrefix(usage, "usage: "), "docs/init.md must show the usage line")
}

func TestRun(t *testing.T) {
	hostHasDir := false
	if _, err := os.Stat(contenv.DefaultDir); err == nil {
		hostHasDir = true
	}
	for _, tc := range []struct {
		name    string
		args    []string
		environ []string
		code    int
		stdout  string
		stderr  string
		needDir bool // the case reads the process environment because the directory is missing
	}{
		{name: "no args", code: 2, stderr: "printcontenv: expected exactly one VAR; " + usage + "\n"},
		{name: "two args", args: []string{"A", "B"}, code: 2, stderr: "printcontenv: expected exactly one VAR; " + usage + "\n"},
		{name: "bad name", args: []string{"../etc/passwd"}, code: 2, stderr: "printcontenv: invalid variable name \"../etc/passwd\"; " + usage + "\n"},
		{name: "help", args: []string{"--help"}, code: 0, stdout: usage + "\n"},
		{name: "keep env set", args: []string{"FOO"}, environ: []string{"FOO=bar", "S6_KEEP_ENV=1"}, code: 0, stdout: "bar\n"},
		{name: "keep env unset", args: []string{"NOPE"}, environ: []string{"S6_KEEP_ENV=1"}, code: 1},
		{name: "double dash", args: []string{"--", "FOO"}, environ: []string{"FOO=bar", "S6_KEEP_ENV=1"}, code: 0, stdout: "bar\n"},
		{name: "no dir falls back to env", args: []string{"FOO"}, environ: []string{"FOO=x y"}, code: 0, stdout: "x y\n", needDir: true},
		{name: "no dir, unset", args: []string{"FOO"}, code: 1, needDir: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.needDir && hostHasDir {
				t.Skipf("%s exists on this machine", contenv.DefaultDir)
			}
			var stdout, stderr bytes.Buffer
			code := run(tc.args, tc.environ, &stdout, &stderr)
			assert.Equal(t, tc.code, code)
			assert.Equal(t, tc.stdout, stdout.String())
			assert.Equal(t, tc.stderr, stderr.String())
		})
	}
}
