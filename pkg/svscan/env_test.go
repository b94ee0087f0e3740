package svscan

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/internal/s6test"
)

func TestKeepEnvRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name          string
		environ, kept []string
		restored      []string // nil: environ
	}{
		{
			name:    "unsecure variables travel as carriers",
			environ: []string{"PATH=/bin", "TMPDIR=/scratch", "LD_LIBRARY_PATH=/opt/lib", "TZ=UTC", "GLIBC_TUNABLES=glibc.malloc.check=1"},
			kept:    []string{"PATH=/bin", "S6GATE_KEEPENV_TMPDIR=/scratch", "S6GATE_KEEPENV_LD_LIBRARY_PATH=/opt/lib", "TZ=UTC", "S6GATE_KEEPENV_GLIBC_TUNABLES=glibc.malloc.check=1"},
			// Restored ones come after the others, in UnsecureEnv's order.
			restored: []string{"PATH=/bin", "TZ=UTC", "GLIBC_TUNABLES=glibc.malloc.check=1", "LD_LIBRARY_PATH=/opt/lib", "TMPDIR=/scratch"},
		},
		{
			name:     "empty values and values with '='",
			environ:  []string{"TMPDIR=", "RES_OPTIONS=a=b"},
			kept:     []string{"S6GATE_KEEPENV_TMPDIR=", "S6GATE_KEEPENV_RES_OPTIONS=a=b"},
			restored: []string{"RES_OPTIONS=a=b", "TMPDIR="},
		},
		{
			name:    "carriers already there are dropped, not passed on",
			environ: []string{"S6GATE_KEEPENV_TMPDIR=/old", "S6GATE_KEEPENV_PATH=/evil", "HOME=/h"},
			kept:    []string{"HOME=/h"},
		},
		{
			name:    "nothing to carry",
			environ: []string{"A=1", "B=2"},
			kept:    []string{"A=1", "B=2"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			kept := KeepEnv(tc.environ)
			assert.Equal(t, tc.kept, kept)
			want := tc.restored
			if want == nil {
				want = kept
			}
			assert.Equal(t, want, RestoreKeptEnv(kept))
		})
	}
}

// RestoreKeptEnv only brings back UnsecureEnv's names, replaces a variable of the same name,
// and removes every carrier.
func TestRestoreKeptEnv(t *testing.T) {
	assert.Equal(t, []string{"PATH=/bin", "TMPDIR=/carried"},
		RestoreKeptEnv([]string{"TMPDIR=/left", "PATH=/bin", "S6GATE_KEEPENV_TMPDIR=/carried", "S6GATE_KEEPENV_PATH=/evil", "S6GATE_KEEPENV_=x"}))
}

// UnsecureEnv is exactly what the real loader takes away from a program exec'd with AT_SECURE
// (here /usr/bin/env, started by setpriv with a real uid other than its effective one, as an
// isolated slot's s6-supervise is), among its own names and names glibc 2.36 keeps.
func TestUnsecureEnvIsWhatGlibcDrops(t *testing.T) {
	s6test.RequireRoot(t)
	if _, err := os.Stat("/usr/bin/setpriv"); err != nil {
		s6test.Missing(t, "no /usr/bin/setpriv (util-linux)")
	}
	values := map[string]string{
		// Harmless if the loader kept them: nothing to load, nothing to trace.
		"LD_PRELOAD": "/nonexistent.so", "LD_AUDIT": "/nonexistent.so", "LD_PROFILE": "nonexistent.so",
		"LD_DEBUG": "statistics", "LD_DEBUG_OUTPUT": "/nonexistent/debug", "LD_HWCAP_MASK": "0",
		"LD_SHOW_AUXV": "", "MALLOC_TRACE": "/nonexistent/trace", "MALLOC_CHECK_": "0",
		"GLIBC_TUNABLES": "glibc.malloc.check=1",
	}
	// The names looked at: glibc's own lists (unsecvars.h, the tunables' aliases), names older
	// glibc versions dropped, and names it keeps.
	candidates := []string{"GCONV_PATH", "GETCONF_DIR", "GLIBC_TUNABLES", "HOSTALIASES",
		"LD_AUDIT", "LD_DEBUG", "LD_DEBUG_OUTPUT", "LD_DYNAMIC_WEAK", "LD_HWCAP_MASK",
		"LD_LIBRARY_PATH", "LD_ORIGIN_PATH", "LD_PRELOAD", "LD_PROFILE", "LD_SHOW_AUXV",
		"LOCALDOMAIN", "LOCPATH", "MALLOC_CHECK_", "MALLOC_TRACE", "NIS_PATH", "NLSPATH",
		"RESOLV_HOST_CONF", "RES_OPTIONS", "TMPDIR", "TZDIR",
		"LD_USE_LOAD_BIAS", "LD_BIND_NOW", "LD_BIND_NOT", "LD_PREFER_MAP_32BIT_EXEC", "MALLOC_ARENA_MAX",
		"MALLOC_ARENA_TEST", "MALLOC_TOP_PAD_", "MALLOC_PERTURB_", "MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_",
		"MALLOC_TRIM_THRESHOLD_", "TZ", "LANG", "LC_ALL", "HOME", "PATH", "S6GATE_KEEPENV_TMPDIR"}
	var environ []string
	for _, n := range candidates {
		v, ok := values[n]
		if !ok {
			v = "value-of-" + n
		}
		environ = append(environ, n+"="+v)
	}
	cmd := exec.Command("/usr/bin/setpriv", "--ruid", "30100", "--euid", "30101", "--rgid", "30100", "--egid", "30101",
		"--clear-groups", "--", "/usr/bin/env")
	cmd.Env = environ
	cmd.Dir = "/"
	out, err := cmd.Output()
	require.NoError(t, err)
	got := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		got[k] = v
	}
	var dropped []string
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if g, ok := got[k]; !ok || g != v {
			dropped = append(dropped, k)
		}
	}
	assert.ElementsMatch(t, UnsecureEnv, dropped, "dropped or rewritten under AT_SECURE; env printed:\n%s", out)
}
