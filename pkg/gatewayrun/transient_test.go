package gatewayrun

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/exitcode"
)

// A command that cannot be started for want of a resource (a container out of file
// descriptors or processes) is a failure, retried after a back-off — not a fatal
// configuration that s6 would never retry. A command that does not exist still is one.
func TestStartWithoutResourcesIsAFailureNotAFatalConfiguration(t *testing.T) {
	for _, tc := range []struct {
		name      string
		err       error
		wantCode  int
		wantState string
	}{
		{"too many open files", &os.PathError{Op: "fork/exec", Path: "/bin/sleep", Err: syscall.EMFILE}, 1, "starting"},
		{"no process left", &os.PathError{Op: "fork/exec", Path: "/bin/sleep", Err: syscall.EAGAIN}, 1, "starting"},
		{"no such command", &exec.Error{Name: "nope", Err: exec.ErrNotFound}, exitcode.FatalConfig, "startup_failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			home := filepath.Join(root, "profiles", "coder")
			require.NoError(t, os.MkdirAll(home, 0o755))
			code := Run(context.Background(), Options{
				Settings: config.Settings{Home: root, User: strconv.Itoa(os.Getuid()), DrainTimeout: time.Second},
				Profile:  "coder", Command: []string{"/bin/sleep", "1000"},
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
				spawn:  func(*exec.Cmd) error { return tc.err },
			})
			assert.Equal(t, tc.wantCode, code)
			b, err := os.ReadFile(filepath.Join(home, "gateway_state.json"))
			require.NoError(t, err)
			var st map[string]any
			require.NoError(t, json.Unmarshal(b, &st))
			assert.Equal(t, tc.wantState, st["gateway_state"])
			if tc.wantCode == 1 {
				assert.Equal(t, float64(1), st["consecutive_failures"])
				assert.Contains(t, st["exit_reason"], "could not be started")
			}
		})
	}
}
