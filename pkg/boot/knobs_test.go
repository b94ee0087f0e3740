package boot

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func lookupMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestParseKnobsDefaults(t *testing.T) {
	k, warns := parseKnobs(lookupMap(nil))
	assert.Empty(t, warns)
	assert.Equal(t, knobs{
		ServicesGrace: 3000 * time.Millisecond,
		KillGrace:     3000 * time.Millisecond,
		FinishMaxTime: 5000 * time.Millisecond,
	}, k)
}

func TestParseKnobs(t *testing.T) {
	k, warns := parseKnobs(lookupMap(map[string]string{
		"S6_KEEP_ENV":                      "1",
		"S6_SERVICES_GRACETIME":            "500",
		"S6_KILL_GRACETIME":                " 0 ",
		"S6_KILL_FINISH_MAXTIME":           "0",
		"S6_BEHAVIOUR_IF_STAGE2_FAILS":     "2",
		"S6_CMD_ARG0":                      "  /bin/sh   -c ",
		"S6_CMD_WAIT_FOR_SERVICES":         "1",
		"S6_CMD_WAIT_FOR_SERVICES_MAXTIME": "250",
		"S6_SYNC_DISKS":                    "0",
		"S6_READ_ONLY_ROOT":                "1",
		"S6_YES_I_WANT_A_WORLD_WRITABLE_RUN_BECAUSE_KUBERNETES": "1",
	}))
	assert.Empty(t, warns)
	assert.Equal(t, knobs{
		KeepEnv:          true,
		ServicesGrace:    500 * time.Millisecond,
		KillGrace:        0,
		FinishMaxTime:    0,
		Stage2Fails:      2,
		CmdArg0:          []string{"/bin/sh", "-c"},
		WaitServices:     true,
		WaitServicesTime: 250 * time.Millisecond,
		ReadOnlyRoot:     true,
		WorldWritableRun: true,
	}, k)
}

func TestParseKnobsBadValuesWarnAndFallBack(t *testing.T) {
	k, warns := parseKnobs(lookupMap(map[string]string{
		"S6_KEEP_ENV":                  "yes",
		"S6_SERVICES_GRACETIME":        "3s",
		"S6_KILL_GRACETIME":            "-5",
		"S6_BEHAVIOUR_IF_STAGE2_FAILS": "strict",
	}))
	assert.Equal(t, 3000*time.Millisecond, k.ServicesGrace)
	assert.Equal(t, 3000*time.Millisecond, k.KillGrace)
	assert.False(t, k.KeepEnv)
	assert.Equal(t, 0, k.Stage2Fails)
	assert.ElementsMatch(t, []string{
		`S6_KEEP_ENV="yes" is not a number: treated as 0`,
		`S6_SERVICES_GRACETIME="3s" is not a number of milliseconds: using 3000`,
		`S6_KILL_GRACETIME="-5" is not a number of milliseconds: using 3000`,
		`S6_BEHAVIOUR_IF_STAGE2_FAILS="strict" is not 0, 1 or 2: using 0`,
	}, warns)
}

func TestParseMillis(t *testing.T) {
	for _, tc := range []struct {
		v    string
		set  bool
		want time.Duration
		warn bool
	}{
		{"", false, 3 * time.Second, false},
		{"", true, 3 * time.Second, false},
		{"0", true, 0, false},
		{"1", true, time.Millisecond, false},
		{"120000", true, 2 * time.Minute, false},
		{"99999999999", true, 3 * time.Second, true},
		{"1.5", true, 3 * time.Second, true},
		{"abc", true, 3 * time.Second, true},
	} {
		got, warn := parseMillis("X", tc.v, tc.set, 3000)
		assert.Equal(t, tc.want, got, "%q", tc.v)
		assert.Equal(t, tc.warn, warn != "", "%q", tc.v)
	}
}

func TestParseStage2Fails(t *testing.T) {
	for v, want := range map[string]int{"": 0, "0": 0, "1": 1, "2": 2, "3": 2, "99": 2, "-1": 0, "x": 0} {
		got, _ := parseStage2Fails(v, true)
		assert.Equal(t, want, got, "%q", v)
	}
}

func TestStage2Decision(t *testing.T) {
	for _, tc := range []struct {
		behaviour  int
		failed     bool
		warn, stop bool
	}{
		{0, false, false, false},
		{1, false, false, false},
		{2, false, false, false},
		{0, true, false, false},
		{1, true, true, false},
		{2, true, true, true},
	} {
		warn, stop := stage2Decision(tc.behaviour, tc.failed)
		assert.Equal(t, tc.warn, warn, "%+v", tc)
		assert.Equal(t, tc.stop, stop, "%+v", tc)
	}
}

func TestFixPath(t *testing.T) {
	for in, want := range map[string]string{
		"":                        "/command:/usr/bin:/bin",
		"/usr/local/bin":          "/command:/usr/bin:/bin:/usr/local/bin",
		"/command:/usr/bin:/bin":  "/command:/usr/bin:/bin",
		"/usr/sbin:/usr/bin:/bin": "/command:/usr/sbin:/usr/bin:/bin",
		"/bin:/command":           "/usr/bin:/bin:/command",
		"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin": "/command:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	} {
		assert.Equal(t, want, fixPath(in), "%q", in)
	}
}

func TestWithPath(t *testing.T) {
	assert.Equal(t, []string{"A=1", "PATH=/x"}, withPath([]string{"PATH=/a", "A=1", "PATH=/b"}, "/x"))
}

func TestParseExitcode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		code int
		ok   bool
		warn bool
	}{
		{"", 0, false, false},
		{"  \n", 0, false, false},
		{"0\n", 0, true, false},
		{"7", 7, true, false},
		{" 42 \n", 42, true, false},
		{"256", 0, true, false},
		{"257", 1, true, false},
		{"-1", 255, true, false},
		{"abc", 0, false, true},
		{"7 8", 0, false, true},
	} {
		code, ok, warn := parseExitcode([]byte(tc.in))
		assert.Equal(t, tc.code, code, "%q", tc.in)
		assert.Equal(t, tc.ok, ok, "%q", tc.in)
		assert.Equal(t, tc.warn, warn != "", "%q", tc.in)
	}
}

func TestExitcodeFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "results", "exitcode")
	_, ok, warn := readExitcode(path)
	assert.False(t, ok)
	assert.Empty(t, warn)

	require.NoError(t, writeExitcode(path, 143))
	code, ok, _ := readExitcode(path)
	assert.True(t, ok)
	assert.Equal(t, 143, code)
	st, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm())

	require.NoError(t, writeExitcode(path, 7))
	code, _, _ = readExitcode(path)
	assert.Equal(t, 7, code)
	entries, _ := os.ReadDir(filepath.Dir(path))
	assert.Len(t, entries, 1, "no temp file left behind")
}
