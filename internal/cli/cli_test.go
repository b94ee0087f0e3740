package cli_test

import (
	"bytes"
	"errors"
	"flag"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/internal/cli"
	"github.com/s6gate/s6gate/pkg/exitcode"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    cli.Args
		start   bool
		env     []string
		wantErr int
	}{
		{name: "interleaved", args: []string{"coder", "--start", "--env", "A=1", "x", "--env", "B=2"},
			want: cli.Args{Positional: []string{"coder", "x"}}, start: true, env: []string{"A=1", "B=2"}},
		{name: "dash dash", args: []string{"coder", "--", "sh", "-c", "--start"},
			want: cli.Args{Positional: []string{"coder"}, Command: []string{"sh", "-c", "--start"}, DashDash: true}},
		{name: "empty command", args: []string{"--"}, want: cli.Args{Command: []string{}, DashDash: true}},
		{name: "unknown flag", args: []string{"--bogus"}, wantErr: exitcode.Usage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			start := fs.Bool("start", false, "")
			var env cli.Repeated
			fs.Var(&env, "env", "")
			got, err := cli.Parse(fs, tt.args)
			if tt.wantErr != 0 {
				require.Error(t, err)
				assert.Equal(t, tt.wantErr, exitcode.Of(err))
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.start, *start)
			assert.Equal(t, tt.env, []string(env))
		})
	}
	_, err := cli.Parse(flag.NewFlagSet("x", flag.ContinueOnError), []string{"-h"})
	assert.True(t, errors.Is(err, flag.ErrHelp))
}

func TestFailPrintsOneLine(t *testing.T) {
	var b bytes.Buffer
	code := cli.Fail(&b, "gateway", "start", exitcode.Usagef("bad\nname  %q", "x"))
	assert.Equal(t, exitcode.Usage, code)
	assert.Equal(t, "gateway: start: bad name \"x\"\n", b.String())
	b.Reset()
	assert.Equal(t, exitcode.Failed, cli.Fail(&b, "gw-reconcile", "", errors.New("boom")))
	assert.Equal(t, "gw-reconcile: boom\n", b.String())
}
