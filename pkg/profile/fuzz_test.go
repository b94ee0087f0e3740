package profile_test

import (
	"bytes"
	"encoding/json"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/profile"
)

// unknownKeys decodes the keys of a profile.json other than "command" and "env", each value
// decoded with numbers kept as written, for a semantic comparison.
func unknownKeys(t *testing.T, b []byte) map[string]any {
	t.Helper()
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	out := map[string]any{}
	if len(bytes.TrimSpace(b)) == 0 {
		return out
	}
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &raw))
	delete(raw, "command")
	delete(raw, "env")
	for k, v := range raw {
		d := json.NewDecoder(bytes.NewReader(v))
		d.UseNumber()
		var x any
		require.NoError(t, d.Decode(&x))
		out[k] = x
	}
	return out
}

// orNil maps empty slices and maps to nil: Marshal omits them, so they come back as nil.
func orNil[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

func envOrNil(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return m
}

// FuzzParseConfig: every accepted env name is valid, and Marshal → ParseConfig keeps the
// command, the env and every unknown key (and is then a fixed point).
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		"",
		"\xef\xbb\xbf \n",
		`{}`,
		`null`,
		`[]`,
		`{"command":["sh","-c","echo 'hi'"],"env":{"FOO":"bar","_X1":"a\nb"}}`,
		"\xef\xbb\xbf{\"env\":{\"A\":\"1\"}}",
		`{"command":[],"env":{}}`,
		`{"command":null,"env":null}`,
		`{"command":["a",null],"env":{"A":null}}`,
		`{"command":"sh"}`,
		`{"env":{"A":1}}`,
		`{"env":{"BAD-NAME":"x"}}`,
		`{"env":{"":"x"}}`,
		`{"env":{"1A":"x"}}`,
		`{"env":{"A":"1","A":"2"}}`,
		`{"description":"<b>&</b>","n":1e400,"nested":{"a":[1,2.50,true,null]},"u":"\u2028\ud800"}`,
		"{\"bad\xff\":\"\xfe\",\"env\":{\"V\":\"\xff\"}}",
		`{"Command":["x"],"ENV":{"a":"b"}}`,
		`{"command":["x"]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := profile.ParseConfig(b)
		if err != nil {
			assert.Contains(t, err.Error(), profile.ConfigFile)
			assert.Zero(t, c.Command)
			assert.Zero(t, c.Env)
			return
		}
		for k := range c.Env {
			require.NoError(t, profile.ValidateEnvName(k))
		}

		out, err := c.Marshal()
		require.NoError(t, err)
		c2, err := profile.ParseConfig(out)
		require.NoError(t, err, "Marshal wrote %q", out)
		assert.Equal(t, orNil(c.Command), orNil(c2.Command))
		assert.Equal(t, envOrNil(c.Env), envOrNil(c2.Env))
		assert.Equal(t, unknownKeys(t, b), unknownKeys(t, out), "unknown keys")

		out2, err := c2.Marshal()
		require.NoError(t, err)
		assert.Equal(t, string(out), string(out2), "Marshal is not a fixed point")
	})
}

// FuzzValidate: an accepted profile name is one safe path component of bounded length; a
// rejected one is a one-line usage error.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{
		"coder", "my-profile", "assistant_v2", "a", "0", "default", strings.Repeat("a", profile.MaxNameLen),
		"", ".", "..", "../escape", "foo/bar", "/abs", "-rf", ".hidden", "_x", "Coder", "a.b", "a b",
		"new\nline", "cr\rname", "nul\x00name", "ünicode", "\xff", strings.Repeat("a", profile.MaxNameLen+1),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := profile.Validate(name)
		if err != nil {
			assert.Equal(t, exitcode.Usage, exitcode.Of(err))
			assert.NotContains(t, err.Error(), "\n", "one-line message")
			assert.NotContains(t, err.Error(), "\r", "one-line message")
			var ne *profile.NameError
			require.ErrorAs(t, err, &ne)
			assert.Equal(t, name, ne.Name)
			return
		}
		require.NotEmpty(t, name)
		assert.LessOrEqual(t, len(name), profile.MaxNameLen)
		assert.LessOrEqual(t, len("gateway-"+name), 255, "slot name fits a file name")
		assert.NotContains(t, name, "/")
		assert.NotContains(t, name, "\x00")
		assert.NotEqual(t, ".", name)
		assert.NotEqual(t, "..", name)
		assert.NotEqual(t, byte('-'), name[0], "looks like an option")
		assert.NotEqual(t, byte('.'), name[0], "hidden or relative")
		assert.True(t, filepath.IsLocal(name))

		p := path.Join(profile.ProfilesDir, name)
		assert.Equal(t, profile.ProfilesDir+"/"+name, p, "Join cleaned the name")
		assert.Equal(t, profile.ProfilesDir, path.Dir(p))
		assert.Equal(t, name, path.Base(p))
		if name != profile.Default {
			assert.Equal(t, p, profile.HomeRel(name))
		}
	})
}
