package slot

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/profile"
)

// sh runs script with /bin/sh in dir with a minimal environment and returns its stdout.
func sh(t *testing.T, dir, script string) string {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = dir
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		t.Fatalf("sh failed: %v\nstderr: %s\nscript: %q", err, ee.Stderr, script)
	}
	require.NoError(t, err)
	return string(out)
}

// requireEmpty fails if anything ran that left a trace in dir.
func requireEmpty(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Empty(t, entries, "something ran and created files")
}

// maxShellInput caps what goes through /bin/sh: quoting works byte by byte, so longer inputs
// find nothing new, and each candidate the fuzzer minimizes costs a fork and exec.
const maxShellInput = 256

// The toolkit's own variables are passed after the profile's and win over them.
var exportedLast = map[string]string{"GATEWAY_HOME": "/opt/data", "GATEWAY_NOTIFY_FD": "3"}

var injections = []string{
	"$(touch X)", "`touch X`", "'; touch X; '", "'\"'\"'; touch X #", "\"; touch X; \"", "\\'; touch X",
	"a\nb", "$HOME ${HOME} $0 $$ $1 $@", "*", "~", "-n", "'", "''", "\\", "", " lead and trail ",
	"\t\r\v\f", "\x01\x7f\x80\x81\x88\xff", "ünicode ☃", "!x", "a;b&c|d>e<f", "#comment",
}

// FuzzRunScriptEnv: a valid env name's value, whatever its bytes (but NUL), reaches the
// gateway's environment byte for byte through a real /bin/sh and `gateway run --setenv`
// (ApplySetenv, in this test binary as the gateway: TestMain), as the rendered ./run passes
// it, and nothing in it runs. An invalid name is refused as a usage error before anything is
// rendered.
func FuzzRunScriptEnv(f *testing.F) {
	for _, v := range injections {
		f.Add("FOO", v)
	}
	for _, n := range []string{"HOME", "PATH", "IFS", "_", "a1", "GATEWAY_HOME", "GATEWAY_NOTIFY_FD", "LINENO", "PS4",
		"OPTIND", "S6GATE_CONTENV", "S6GATE_SETENV_HOME", "euid", "k", "e", "", "1A", "A-B", "A B", "A=B", "A;B", "$(touch X)", "A\n", "É"} {
		f.Add(n, "$(touch X)")
	}
	dir := f.TempDir()
	outDir := f.TempDir()
	me, err := user.Current()
	require.NoError(f, err)
	f.Fuzz(func(t *testing.T, name, value string) {
		s := spec("p")
		s.Env = map[string]string{name: value}
		if profile.ValidateEnvName(name) != nil {
			err := s.Validate()
			require.Error(t, err, "invalid name %q accepted", name)
			assert.Equal(t, exitcode.Usage, exitcode.Of(err))
			return
		}
		require.NoError(t, s.Validate())
		if strings.ContainsRune(value, 0) || len(value) > maxShellInput {
			return // no environment can hold a NUL; length adds nothing but exec cost
		}

		// The whole script, in a tree that loaded the container environment already (so
		// with-contenv is not needed), as its own service user, with this test binary as the
		// gateway.
		s.User, s.Bin = me.Username, os.Args[0]
		script := filepath.Join(outDir, "run")
		require.NoError(t, os.WriteFile(script, []byte(runScript(s)), 0o755))
		out := filepath.Join(outDir, "out")
		cmd := exec.Command(script)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=/usr/bin:/bin", "S6GATE_CONTENV=1", "SLOT_TEST_RECORD=" + out}
		b, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s\nscript:\n%s", b, runScript(s))

		want, ok := exportedLast[name]
		if !ok {
			want = value
		}
		environ, _ := record(t, out)
		got, ok := envMap(environ)[name]
		assert.True(t, ok, "%s not set", name)
		assert.Equal(t, want, got, "value of %s", name)
		requireEmpty(t, dir)
	})
}

// FuzzQuote: quote makes any string without NUL one shell word that /bin/sh gives back
// byte for byte, without running anything.
func FuzzQuote(f *testing.F) {
	for _, v := range injections {
		f.Add(v)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, s string) {
		if strings.ContainsRune(s, 0) || len(s) > maxShellInput {
			return // an argv cannot hold a NUL; length adds nothing but exec cost
		}
		q := quote(s)
		require.True(t, strings.HasPrefix(q, "'") && strings.HasSuffix(q, "'"), "%q", q)
		got := sh(t, dir, "set -- "+q+`; printf '%s:%s' "$#" "$1"`)
		assert.Equal(t, "1:"+s, got)
		requireEmpty(t, dir)
	})
}
