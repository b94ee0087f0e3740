package withcontenv

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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
	doc, err := os.ReadFile("../../../docs/init.md")
	require.NoError(t, err)
	assert.Contains(t, string(doc), strings.TrimPrefix(usage, "usage: "), "docs/init.md must show the usage line")
}
