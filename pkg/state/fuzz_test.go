package state_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/pkg/state"
)

var bom = []byte("\xef\xbb\xbf")

// ownedKeys are the keys State writes; every other key belongs to someone else.
var ownedKeys = map[string]bool{
	"gateway_state": true, "desired_state": true, "pid": true,
	"start_time": true, "exit_reason": true, "updated_at": true,
}

// jsonValue decodes one JSON value for a semantic comparison: numbers stay as written
// (json.Number), so values too large for a float64 still compare.
func jsonValue(t *testing.T, raw json.RawMessage) any {
	t.Helper()
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	require.NoError(t, d.Decode(&v), "value %q", raw)
	return v
}

// FuzzParse: Parse never panics; failures are ErrCorrupt; a BOM changes nothing; a parsed
// document survives an Update with its unknown keys and owned fields intact.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		" \n",
		"null",
		"[]",
		`"running"`,
		`{}`,
		`{"gateway_state":"running"}`,
		"\xef\xbb\xbf{\"gateway_state\":\"running\"}",
		"\xef\xbb\xbf\xef\xbb\xbf{}",
		`{"gateway_state":"stopped","pid":"x"}`,
		`{"gateway_state":"running","desired_state":"running","pid":42,"start_time":99,"exit_reason":"x","updated_at":"t"}`,
		`{"gateway_state":"running","custom":{"a":[1,2]},"note":"hi"}`,
		`{"pid":1.5,"start_time":-1,"big":1e400,"n":123456789012345678901234567890}`,
		`{"html":"<a href='x'>&amp;</a>","ls":"\u2028","esc":"\u0041\ud800"}`,
		`{"pid":1,"pid":2,"x":1,"x":{"y":null}}`,
		`{"gateway\u005fstate":"running","PID":3}`,
		"{\"bad\xffkey\":\"bad\xfevalue\"}",
		`{"start_time":null,"desired_state":7}`,
		`{"gateway_state": "runn`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, raw, err := state.Parse(b)

		if !bytes.HasPrefix(b, bom) {
			s2, raw2, err2 := state.Parse(append(bytes.Clone(bom), b...))
			assert.Equal(t, s, s2, "a BOM changes the state")
			assert.Equal(t, raw, raw2, "a BOM changes the keys")
			require.Equal(t, err == nil, err2 == nil, "a BOM changes the verdict: %v / %v", err, err2)
			if err != nil {
				assert.Equal(t, err.Error(), err2.Error())
			}
		}

		if err != nil {
			require.ErrorIs(t, err, state.ErrCorrupt)
			assert.Zero(t, s)
			assert.Nil(t, raw)
			return
		}
		require.NotNil(t, raw, "success means a JSON object")
		if len(b) > state.MaxSize {
			return // Read refuses files this large; nothing to round-trip
		}

		d, dir := home(t)
		p := filepath.Join(dir, state.FileName)
		require.NoError(t, os.WriteFile(p, b, 0o600))
		warning, err := state.Update(d, now, func(*state.State) {})
		require.NoError(t, warning, "a parsable file is no warning")
		require.NoError(t, err)

		out, err := os.ReadFile(p)
		require.NoError(t, err)
		got, gotRaw, err := state.Parse(out)
		require.NoError(t, err, "Update wrote %q", out)

		want := s
		want.UpdatedAt = now.UTC().Format(time.RFC3339)
		assert.Equal(t, want, got, "owned fields after a no-op Update")

		for k, v := range raw {
			if ownedKeys[k] {
				continue
			}
			require.Contains(t, gotRaw, k, "unknown key %q dropped", k)
			assert.Equal(t, jsonValue(t, v), jsonValue(t, gotRaw[k]), "unknown key %q changed", k)
		}
		for k := range gotRaw {
			if !ownedKeys[k] {
				assert.Contains(t, raw, k, "Update invented key %q", k)
			}
		}
	})
}
