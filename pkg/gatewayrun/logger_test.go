package gatewayrun_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/internal/s6test"
	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/gatewayrun"
)

// The slot's s6-log stamps every line: the gateway's own lines carry no second time.
func TestNewLoggerWritesNoTime(t *testing.T) {
	var b bytes.Buffer
	gatewayrun.NewLogger(&b).Info("hello", "time", "kept: an attribute of the caller's")
	assert.Equal(t, "level=INFO msg=hello time=\"kept: an attribute of the caller's\"\n", b.String())
}

// lineWith returns the one log line that contains msg.
func lineWith(t *testing.T, logs, msg string) string {
	t.Helper()
	var found []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, msg) {
			found = append(found, l)
		}
	}
	require.Len(t, found, 1, "lines with %q in:\n%s", msg, logs)
	return found[0]
}

// Every incident — a command that crashed and is started again, a back-off, a gateway that
// goes failed — is logged at WARN or ERROR, never INFO, so that a filter on the level finds it.
func TestIncidentsAreLoggedAtWarnOrError(t *testing.T) {
	tests := []struct {
		name      string
		config    string
		failures  int // recorded before the start: a back-off first
		wantCode  int
		wantLines map[string]string // message → level
	}{
		{name: "crash: started again", wantCode: 3,
			wantLines: map[string]string{"command exited; s6 starts the gateway again": "WARN"}},
		{name: "back-off, then a crash", config: `{"backoff_max": "100ms"}`, failures: 1, wantCode: 3,
			wantLines: map[string]string{"backing off before starting the command again": "WARN",
				"command exited; s6 starts the gateway again": "WARN"}},
		{name: "failed", config: `{"max_failures": 1}`, wantCode: exitcode.GaveUp,
			wantLines: map[string]string{"gateway failed: s6 will not restart it": "ERROR"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := newRoot(t, "coder")
			home := filepath.Join(root, "profiles", "coder")
			if tt.config != "" {
				require.NoError(t, os.WriteFile(filepath.Join(home, "profile.json"), []byte(tt.config), 0o600))
			}
			if tt.failures > 0 {
				seedFailures(t, home, tt.failures)
			}
			logs := &s6test.Buffer{}
			code := gatewayrun.Run(context.Background(), gatewayrun.Options{
				Settings: config.Settings{Home: root, User: strconv.Itoa(os.Getuid()), DrainTimeout: 300 * time.Millisecond},
				Profile:  "coder", Command: []string{"sh", "-c", "exit 3"}, Logger: gatewayrun.NewLogger(logs),
			})
			assert.Equal(t, tt.wantCode, code, logs.String())
			for msg, level := range tt.wantLines {
				assert.True(t, strings.HasPrefix(lineWith(t, logs.String(), msg), "level="+level+" "),
					"%q is logged at %s:\n%s", msg, level, logs.String())
			}
		})
	}
}
