package gateway

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// --live and --ready stand alone: each is a yes/no about the container, which -p, --json or
// --check (the gateways' verdict) would muddle. Usage errors, exit 2, one line.
func TestProbeFlagsStandAlone(t *testing.T) {
	for _, args := range [][]string{
		{"status", "--live", "--ready"},
		{"status", "--ready", "-p", "coder"},
		{"status", "--live", "--json"},
		{"status", "--ready", "--check"},
		{"list", "--ready"},
	} {
		var out, errb bytes.Buffer
		code := run(args, &out, &errb)
		require.Equalf(t, 2, code, "%v: %s", args, errb.String())
		require.Empty(t, out.String())
		require.Regexp(t, `^gateway: (status|list): [^\n]+\n$`, errb.String())
	}
	c, err := parse("status", []string{"--ready", "--timeout", "5s"})
	require.NoError(t, err)
	require.True(t, c.ready)
	require.False(t, c.live)
}
