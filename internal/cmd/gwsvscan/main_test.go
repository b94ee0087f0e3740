package gwsvscan

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/svscan"
)

// The options as s6-svscan's getopt reads them, and what comes from the environment.
func TestParse(t *testing.T) {
	cmdDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(cmdDir, "s6-supervise"), nil, 0o755))
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	for _, tc := range []struct {
		args    []string
		env     map[string]string
		want    svscan.Config // the fields compared
		code    int           // 0: no error
		message string
	}{
		{args: []string{"-d3", "-c", "4096", "/run/gateways"}, want: svscan.Config{ScanDir: "/run/gateways", NotifyFD: 3, Max: 4096, Supervise: "/usr/bin/s6-supervise"}},
		{args: []string{"-d", "3", "-c4096", "-t500", "/s"}, want: svscan.Config{ScanDir: "/s", NotifyFD: 3, Max: 4096, Rescan: 500 * time.Millisecond, Supervise: "/usr/bin/s6-supervise"}},
		{args: []string{"/s"}, want: svscan.Config{ScanDir: "/s", NotifyFD: -1, Max: 500, Supervise: "/usr/bin/s6-supervise"}},
		{args: []string{"-c1", "--", "-s"}, want: svscan.Config{ScanDir: "-s", NotifyFD: -1, Max: 2, Supervise: "/usr/bin/s6-supervise"}},
		{args: []string{"-c", "100000", "/s"}, want: svscan.Config{ScanDir: "/s", NotifyFD: -1, Max: 90000, Supervise: "/usr/bin/s6-supervise"}},
		{args: []string{"/s"}, env: map[string]string{"S6_COMMAND_DIR": cmdDir, "GATEWAY_UID_RANGE": "30000-30009"},
			want: svscan.Config{ScanDir: "/s", NotifyFD: -1, Max: 500, Supervise: filepath.Join(cmdDir, "s6-supervise"), UIDs: config.UIDRange{First: 30000, Last: 30009}}},
		{args: []string{"/s"}, env: map[string]string{"S6_COMMAND_DIR": t.TempDir()}, want: svscan.Config{ScanDir: "/s", NotifyFD: -1, Max: 500, Supervise: "/usr/bin/s6-supervise"}},
		{args: nil, code: 2, message: "want exactly one SCANDIR"},
		{args: []string{"/a", "/b"}, code: 2, message: "want exactly one SCANDIR"},
		{args: []string{"/s", "-d3"}, code: 2, message: "want exactly one SCANDIR"},
		{args: []string{"-x", "/s"}, code: 2, message: "unknown option -x"},
		{args: []string{"-d"}, code: 2, message: "-d needs a value"},
		{args: []string{"-c", "many", "/s"}, code: 2, message: `-c "many": want a number`},
		{args: []string{"-t", "-1", "/s"}, code: 2, message: `-t "-1": want a number`},
		{args: []string{"/s"}, env: map[string]string{"GATEWAY_UID_RANGE": "0-100"}, code: 100, message: "GATEWAY_UID_RANGE: "},
	} {
		cfg, err := parse(tc.args, env(tc.env))
		if tc.code != 0 {
			require.Error(t, err, "%v", tc.args)
			assert.Equal(t, tc.code, exitcode.Of(err), "%v", tc.args)
			assert.Contains(t, err.Error(), tc.message, "%v", tc.args)
			continue
		}
		require.NoError(t, err, "%v", tc.args)
		if tc.want.UIDs == (config.UIDRange{}) {
			tc.want.UIDs = config.UIDRange{First: config.DefaultUIDFirst, Last: config.DefaultUIDLast}
		}
		got := svscan.Config{ScanDir: cfg.ScanDir, NotifyFD: cfg.NotifyFD, Max: cfg.Max, Rescan: cfg.Rescan, Supervise: cfg.Supervise, UIDs: cfg.UIDs}
		assert.Equal(t, tc.want, got, "%v", tc.args)
		assert.Equal(t, "/usr/bin/setpriv", cfg.Setpriv)
	}
}

func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 0, run([]string{"--help"}, os.Getenv, &stdout, &stderr, 0))
	assert.Equal(t, usage, stdout.String())
	stdout.Reset()
	assert.Equal(t, 0, run([]string{"-h"}, os.Getenv, &stdout, &stderr, 1000), "not root too")
	assert.Equal(t, usage, stdout.String())
	assert.Empty(t, stderr.String())
}
