package marker_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/pkg/marker"
	"github.com/s6gate/s6gate/pkg/proc"
	"github.com/s6gate/s6gate/pkg/safedir"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func u64(v uint64) *uint64 { return &v }

func home(t *testing.T) (*safedir.Dir, string) {
	t.Helper()
	dir := t.TempDir()
	d, err := safedir.Open(dir, "")
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	return d, dir
}

func TestMatch(t *testing.T) {
	m := marker.Marker{TargetPID: 100, TargetStartTime: u64(5000), StopperPID: 7, WrittenAt: t0.Format(time.RFC3339Nano)}
	tests := []struct {
		name  string
		m     marker.Marker
		pid   int
		start *uint64
		now   time.Time
		want  bool
	}{
		{"same pid and start time", m, 100, u64(5000), t0.Add(time.Second), true},
		{"other pid", m, 101, u64(5000), t0, false},
		{"same pid, other start time (pid reused)", m, 100, u64(5001), t0, false},
		{"own start time unknown", m, 100, nil, t0, true},
		{"marker start time unknown", marker.Marker{TargetPID: 100, WrittenAt: m.WrittenAt}, 100, u64(1), t0, true},
		{"exactly at the TTL", m, 100, u64(5000), t0.Add(marker.TTL), true},
		{"older than 60 s", m, 100, u64(5000), t0.Add(marker.TTL + time.Second), false},
		{"far in the future", m, 100, u64(5000), t0.Add(-time.Minute), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := tt.m.Match(tt.pid, tt.start, tt.now)
			assert.Equal(t, tt.want, got, reason)
			assert.NotEmpty(t, reason)
		})
	}
}

func TestWriteThenConsumeIsSingleUse(t *testing.T) {
	d, dir := home(t)
	m := marker.For(os.Getpid(), t0)
	require.NotNil(t, m.TargetStartTime, "own start time is readable")
	require.NoError(t, marker.Write(d, m))

	var onDisk map[string]any
	b, err := os.ReadFile(filepath.Join(dir, marker.FileName))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &onDisk))
	assert.Equal(t, float64(os.Getpid()), onDisk["target_pid"])
	assert.Contains(t, onDisk, "target_start_time")
	assert.Contains(t, onDisk, "stopper_pid")
	assert.Contains(t, onDisk, "written_at")

	planned, reason, err := marker.Consume(d, os.Getpid(), m.TargetStartTime, t0.Add(2*time.Second))
	require.NoError(t, err)
	assert.True(t, planned, reason)
	assert.NoFileExists(t, filepath.Join(dir, marker.FileName), "consumed")

	planned, _, err = marker.Consume(d, os.Getpid(), m.TargetStartTime, t0)
	require.NoError(t, err)
	assert.False(t, planned, "a consumed marker cannot match twice")
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "the claimed copy is removed too")
}

func TestConsumeRemovesNonMatchingAndMalformed(t *testing.T) {
	for name, content := range map[string]string{
		"other pid": `{"target_pid":1,"target_start_time":null,"stopper_pid":2,"written_at":"2026-11-22T10:00:00Z"}`,
		"malformed": `{"target_pid":`,
		"no pid":    `{"written_at":"2026-11-22T10:00:00Z"}`,
		"stale":     `{"target_pid":4242,"target_start_time":null,"stopper_pid":2,"written_at":"2026-11-22T09:00:00Z"}`,
	} {
		t.Run(name, func(t *testing.T) {
			d, dir := home(t)
			require.NoError(t, os.WriteFile(filepath.Join(dir, marker.FileName), []byte(content), 0o600))
			planned, reason, err := marker.Consume(d, 4242, nil, t0)
			require.NoError(t, err)
			assert.False(t, planned, reason)
			assert.NoFileExists(t, filepath.Join(dir, marker.FileName))
		})
	}
}

func TestWriteRejectsBadPID(t *testing.T) {
	d, _ := home(t)
	assert.Error(t, marker.Write(d, marker.Marker{TargetPID: 0, WrittenAt: t0.Format(time.RFC3339)}))
}

func TestSweep(t *testing.T) {
	self, err := proc.StartTime(os.Getpid())
	require.NoError(t, err)
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	now := time.Now()
	fresh := now.UTC().Format(time.RFC3339Nano)
	tests := []struct {
		name    string
		m       *marker.Marker
		raw     string
		removed bool
	}{
		{name: "no marker"},
		{name: "live target, fresh", m: &marker.Marker{TargetPID: os.Getpid(), TargetStartTime: &self, WrittenAt: fresh}},
		{name: "live pid, other start time", m: &marker.Marker{TargetPID: os.Getpid(), TargetStartTime: u64(self + 1), WrittenAt: fresh}, removed: true},
		{name: "dead target", m: &marker.Marker{TargetPID: dead.Process.Pid, WrittenAt: fresh}, removed: true},
		{name: "stale", m: &marker.Marker{TargetPID: os.Getpid(), TargetStartTime: &self, WrittenAt: now.Add(-2 * marker.TTL).Format(time.RFC3339Nano)}, removed: true},
		{name: "malformed", raw: "garbage", removed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, dir := home(t)
			p := filepath.Join(dir, marker.FileName)
			if tt.m != nil {
				require.NoError(t, marker.Write(d, *tt.m))
			} else if tt.raw != "" {
				require.NoError(t, os.WriteFile(p, []byte(tt.raw), 0o600))
			}
			removed, reason, err := marker.Sweep(d, now)
			require.NoError(t, err)
			assert.Equal(t, tt.removed, removed, reason)
			if tt.m != nil || tt.raw != "" {
				if tt.removed {
					assert.NoFileExists(t, p)
				} else {
					assert.FileExists(t, p)
				}
			}
		})
	}
}

// A restart marker (gateway restart) matches its target but is no planned stop: Consume (the
// wrapper) reports it unplanned, Claim (exec supervision's finish) reports the restart.
func TestRestartMarkerIsNoPlannedStop(t *testing.T) {
	d, dir := home(t)
	m := marker.For(os.Getpid(), t0)
	m.Restart = true
	require.NoError(t, marker.Write(d, m))
	planned, reason, err := marker.Consume(d, os.Getpid(), m.TargetStartTime, t0.Add(time.Second))
	require.NoError(t, err)
	assert.False(t, planned, reason)
	assert.Contains(t, reason, "restart requested")
	assert.NoFileExists(t, filepath.Join(dir, marker.FileName), "consumed")

	require.NoError(t, marker.Write(d, m))
	got, matched, _, err := marker.Claim(d, os.Getpid(), m.TargetStartTime, t0.Add(time.Second))
	require.NoError(t, err)
	assert.True(t, matched)
	assert.True(t, got.Restart)
}
