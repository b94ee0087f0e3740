package state_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/pkg/state"
)

// parseReference is Parse as it was before its fast paths: every field through
// json.Unmarshal. Parse must give the same State for every document.
func parseReference(b []byte) (state.State, map[string]json.RawMessage, bool) {
	b = bytes.TrimPrefix(b, bom)
	var raw map[string]json.RawMessage
	if len(bytes.TrimSpace(b)) == 0 || json.Unmarshal(b, &raw) != nil || raw == nil {
		return state.State{}, nil, false
	}
	var s state.State
	fields := map[string]any{
		"gateway_state": &s.GatewayState, "desired_state": &s.DesiredState, "pid": &s.PID,
		"start_time": &s.StartTime, "exit_reason": &s.ExitReason, "updated_at": &s.UpdatedAt,
		"boot_id": &s.BootID, "command_started_at": &s.CommandStartedAt, "restarts": &s.Restarts,
		"consecutive_failures": &s.ConsecutiveFailures, "last_exit": &s.LastExit,
		"backoff_until": &s.BackoffUntil, "failed_reason": &s.FailedReason, "down_since": &s.DownSince,
	}
	for k, dst := range fields {
		if v, ok := raw[k]; ok {
			_ = json.Unmarshal(v, dst)
		}
	}
	return s, raw, true
}

var referenceDocs = []string{
	`{"gateway_state":"running","pid":42,"start_time":123,"boot_id":"pid1-9"}`,
	`{"gateway_state":"r\u00fcn\"x\\","pid":-0,"restarts":"3","consecutive_failures":1e2}`,
	`{"gateway_state":"\xff\xfe","desired_state":null,"pid":99999999999999999999,"start_time":-1}`,
	`{"start_time":18446744073709551616,"restarts":-7,"updated_at":7,"exit_reason":""}`,
	`{"Gateway_State":"running","GATEWAY_STATE":"x","last_exit":{"code":3,"at":"t","uptime_seconds":1.5,"failure":true}}`,
	`{"pid":1.0,"start_time":1.5,"failed_reason":"a\tb","backoff_until":"2026-12-01T00:00:00Z"}`,
	`{"gateway_state":"running","gateway_state":"stopped","pid":1,"pid":"x"}`,
	`{"command_started_at":"2026-12-01T02:02:06.700029736Z","start_time":0,"pid":0}`,
	`{"start_time":"12","last_exit":"x","restarts":true}`,
	" \t\r\n{ \"pid\" : 7 , \"x\" : { \"a\" : [ 1 , \"}\\\"]\" , { } ] } , \"\" : \"\" , \"down_since\":\"d\" } \n",
	`{"x":{"pid":1},"pid":[2,{"pid":3}],"y":"\"pid\": 4","pid":5,"z":[]}`,
	`{"pid":1,"p\u0069d":2}`,
	`{"pid":2,"\u00e9":1,"\xff":3}`,
	`{"pid":3}{"pid":4}`,
	`{"pid":3,}`,
	`[{"pid":3}]`,
	`{}`,
	"{\"pid\":7\r,\"restarts\":1\r}\r",
	"{\"\xff\":1,\"pid\":2,\"\xe9t\xe9\":3}",
	`{"a":true,"b":false,"c":null,"d":-1.5e+3}`,
}

func TestParseMatchesReference(t *testing.T) {
	docs := referenceDocs
	// And the fuzz corpus.
	files, _ := filepath.Glob("testdata/fuzz/FuzzParse/*")
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, l := range bytes.Split(b, []byte("\n")) {
			if s, ok := bytes.CutPrefix(l, []byte("[]byte(")); ok {
				if q, err := strconv.Unquote(string(bytes.TrimSuffix(s, []byte(")")))); err == nil {
					docs = append(docs, q)
				}
			}
		}
	}
	for _, d := range docs {
		checkParseMatchesReference(t, []byte(d))
	}
}

func FuzzParseMatchesReference(f *testing.F) {
	for _, d := range referenceDocs {
		f.Add([]byte(d))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkParseMatchesReference(t, b) })
}

func checkParseMatchesReference(t *testing.T, b []byte) {
	t.Helper()
	want, wantRaw, ok := parseReference(b)
	got, gotRaw, err := state.Parse(b)
	if !ok {
		assert.Error(t, err, "%q", b)
		return
	}
	require.NoError(t, err, "%q", b)
	assert.Equal(t, want, got, "%q", b)
	assert.Equal(t, wantRaw, gotRaw, "%q: the members Update preserves", b)
}
