//go:build unix

package contenv

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"PATH", true},
		{"lower_case", true},
		{"WITH-DASH", true},
		{"weird name with spaces", true},
		{"", false},
		{".hidden", false},
		{".", false},
		{"..", false},
		{"A=B", false},
		{"a/b", false},
		{"nul\x00byte", false},
		{strings.Repeat("x", 255), true},
		{strings.Repeat("x", 256), false},
	} {
		assert.Equal(t, tc.ok, ValidName(tc.name), "%q", tc.name)
	}
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in    string
		value string
		set   bool
	}{
		{"", "", false},
		{"v", "v", true},
		{"v\n", "v", true},
		{"v\n\n", "v\n", true},
		{"\n", "", true},
		{"a\nb", "a\nb", true},
		{"a\x00b", "a\nb", true},
		{"  spaces kept  ", "  spaces kept  ", true},
	} {
		value, set := Parse([]byte(tc.in))
		assert.Equal(t, tc.value, value, "%q", tc.in)
		assert.Equal(t, tc.set, set, "%q", tc.in)
	}
}

func readDir(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		out[e.Name()] = string(b)
	}
	return out
}

func TestDump(t *testing.T) {
	old := syscall.Umask(0o077)
	t.Cleanup(func() { syscall.Umask(old) })

	dir := filepath.Join(t.TempDir(), "container_environment")
	n, err := Dump(dir, []string{
		"PATH=/command:/usr/bin:/bin",
		"EMPTY=",
		"MULTI=line1\nline2\n",
		"EQ=a=b=c",
		"DUP=first",
		"DUP=second",
		"NOEQUALS",
		".DOT=x",
		"=nameless",
		"SLASH/NAME=x",
	})
	require.NoError(t, err)
	assert.Equal(t, 5, n)
	assert.Equal(t, map[string]string{
		"PATH":  "/command:/usr/bin:/bin",
		"EMPTY": "",
		"MULTI": "line1\nline2\n",
		"EQ":    "a=b=c",
		"DUP":   "first",
	}, readDir(t, dir))

	st, err := os.Stat(dir)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o755), st.Mode().Perm(), "dir mode despite umask 077")
	st, err = os.Stat(filepath.Join(dir, "PATH"))
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o644), st.Mode().Perm(), "file mode despite umask 077")

	// A second dump replaces the content and removes variables that are gone.
	require.NoError(t, os.Mkdir(filepath.Join(dir, "subdir"), 0o755))
	_, err = Dump(dir, []string{"PATH=/bin", "NEW=1"})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"PATH": "/bin", "NEW": "1"}, readDir(t, dir))
	assert.DirExists(t, filepath.Join(dir, "subdir"), "directories are not ours to remove")
}

func TestDumpDoesNotFollowSymlinks(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "env")
	victim := filepath.Join(tmp, "victim")
	require.NoError(t, os.WriteFile(victim, []byte("untouched"), 0o644))
	require.NoError(t, os.Mkdir(dir, 0o755))
	require.NoError(t, os.Symlink(victim, filepath.Join(dir, "FOO")))

	// The planted link is not part of the new environment, so it is simply removed...
	_, err := Dump(dir, []string{"BAR=1"})
	require.NoError(t, err)
	assert.NoFileExists(t, filepath.Join(dir, "FOO"))

	// ...and when it is, the write refuses to go through it.
	require.NoError(t, os.Symlink(victim, filepath.Join(dir, "FOO")))
	_, err = Dump(dir, []string{"FOO=evil"})
	require.Error(t, err)
	b, _ := os.ReadFile(victim)
	assert.Equal(t, "untouched", string(b))
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644))
	}
	write("PATH", "/command:/bin")
	write("ECHOED", "value\n")
	write("EMPTY", "")
	write("NUL", "a\x00b")
	write(".hidden", "x")
	write("A=B", "x")
	require.NoError(t, os.Mkdir(filepath.Join(dir, "DIR"), 0o755))
	require.NoError(t, syscall.Mkfifo(filepath.Join(dir, "FIFO"), 0o644))
	require.NoError(t, os.Symlink("PATH", filepath.Join(dir, "LINKED")))
	require.NoError(t, os.Symlink("/nonexistent", filepath.Join(dir, "DANGLING")))

	vars, err := Load(dir)
	require.NoError(t, err)
	assert.Equal(t, []Var{
		{Name: "ECHOED", Value: "value"},
		{Name: "EMPTY", Unset: true},
		{Name: "LINKED", Value: "/command:/bin"},
		{Name: "NUL", Value: "a\nb"},
		{Name: "PATH", Value: "/command:/bin"},
	}, vars)
}

func TestLoadErrors(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "missing"))
	require.Error(t, err)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	var pe *os.PathError
	assert.ErrorAs(t, err, &pe)

	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "BIG"), make([]byte, MaxValueSize+1), 0o644))
	_, err = Load(dir)
	require.ErrorIs(t, err, ErrTooLarge)
	assert.Contains(t, err.Error(), "BIG")

	require.NoError(t, os.WriteFile(filepath.Join(dir, "BIG"), make([]byte, MaxValueSize), 0o644))
	vars, err := Load(dir)
	require.NoError(t, err)
	require.Len(t, vars, 1)
	assert.Len(t, vars[0].Value, MaxValueSize)
}

func TestRoundTrip(t *testing.T) {
	env := []string{"PATH=/command:/usr/bin:/bin", "HOME=/root", "QUOTES=it's \"x\"", "UNICODE=é€", "TABS=\ta\t"}
	dir := filepath.Join(t.TempDir(), "env")
	_, err := Dump(dir, env)
	require.NoError(t, err)
	got, restored, err := Restore([]string{"PATH=/ignored", "OTHER=dropped"}, dir)
	require.NoError(t, err)
	assert.True(t, restored)
	slices.Sort(got)
	want := slices.Clone(env)
	slices.Sort(want)
	assert.Equal(t, want, got)
}

func TestRestore(t *testing.T) {
	mk := func(t *testing.T, files map[string]string) string {
		dir := t.TempDir()
		for k, v := range files {
			require.NoError(t, os.WriteFile(filepath.Join(dir, k), []byte(v), 0o644))
		}
		return dir
	}
	for _, tc := range []struct {
		name     string
		environ  []string
		files    map[string]string // nil: the directory does not exist
		want     []string
		restored bool
	}{
		{
			name:     "container PATH wins",
			environ:  []string{"PATH=/usr/bin", "SVC=1"},
			files:    map[string]string{"PATH": "/command:/bin", "FOO": "bar"},
			want:     []string{"FOO=bar", "PATH=/command:/bin"},
			restored: true,
		},
		{
			name:     "caller PATH kept when not dumped",
			environ:  []string{"SVC=1", "PATH=/usr/bin"},
			files:    map[string]string{"FOO": "bar"},
			want:     []string{"FOO=bar", "PATH=/usr/bin"},
			restored: true,
		},
		{
			name:     "no PATH anywhere",
			environ:  []string{"SVC=1"},
			files:    map[string]string{"FOO": "bar"},
			want:     []string{"FOO=bar"},
			restored: true,
		},
		{
			name:     "empty file unsets, even PATH",
			environ:  []string{"PATH=/usr/bin"},
			files:    map[string]string{"PATH": "", "FOO": "bar"},
			want:     []string{"FOO=bar"},
			restored: true,
		},
		{
			name:     "missing directory keeps everything",
			environ:  []string{"PATH=/usr/bin", "SVC=1"},
			files:    nil,
			want:     []string{"PATH=/usr/bin", "SVC=1"},
			restored: false,
		},
		{
			name:     "S6_KEEP_ENV=1 keeps everything",
			environ:  []string{"PATH=/usr/bin", "S6_KEEP_ENV=1"},
			files:    map[string]string{"FOO": "bar"},
			want:     []string{"PATH=/usr/bin", "S6_KEEP_ENV=1"},
			restored: false,
		},
		{
			name:     "S6_KEEP_ENV=0 restores",
			environ:  []string{"PATH=/usr/bin", "S6_KEEP_ENV=0"},
			files:    map[string]string{"FOO": "bar"},
			want:     []string{"FOO=bar", "PATH=/usr/bin"},
			restored: true,
		},
		{
			name:     "S6_KEEP_ENV garbage restores",
			environ:  []string{"PATH=/usr/bin", "S6_KEEP_ENV=yes"},
			files:    map[string]string{"FOO": "bar"},
			want:     []string{"FOO=bar", "PATH=/usr/bin"},
			restored: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "missing")
			if tc.files != nil {
				dir = mk(t, tc.files)
			}
			got, restored, err := Restore(tc.environ, dir)
			require.NoError(t, err)
			slices.Sort(got)
			assert.Equal(t, tc.want, got)
			assert.Equal(t, tc.restored, restored)
		})
	}
}

func TestRestoreUnreadable(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "notadir")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	_, _, err := Restore([]string{"PATH=/bin"}, file)
	require.Error(t, err, "a path that exists but is not a directory is an error, not 'missing'")
}

func TestApply(t *testing.T) {
	got := Apply([]string{"A=1", "B=2", "A=dup", "C=3"}, []Var{{Name: "A", Value: "new"}, {Name: "C", Unset: true}, {Name: "D", Value: "4"}})
	assert.Equal(t, []string{"B=2", "A=new", "D=4"}, got)
}

func TestLookup(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "FOO"), []byte("from-dir\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "EMPTY"), nil, 0o644))
	missing := filepath.Join(dir, "missing")

	for _, tc := range []struct {
		name    string
		environ []string
		dir     string
		v       string
		value   string
		ok      bool
	}{
		{"from dir", []string{"FOO=env"}, dir, "FOO", "from-dir", true},
		{"absent in dir", []string{"BAR=env"}, dir, "BAR", "", false},
		{"empty file is unset", nil, dir, "EMPTY", "", false},
		{"keep env", []string{"FOO=env", "S6_KEEP_ENV=1"}, dir, "FOO", "env", true},
		{"missing dir falls back to env", []string{"FOO=env"}, missing, "FOO", "env", true},
		{"missing dir and env", nil, missing, "FOO", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			value, ok, err := Lookup(tc.environ, tc.dir, tc.v)
			require.NoError(t, err)
			assert.Equal(t, tc.value, value)
			assert.Equal(t, tc.ok, ok)
		})
	}

	for _, bad := range []string{"", "../etc/passwd", ".hidden", "A=B"} {
		_, _, err := Lookup(nil, dir, bad)
		assert.ErrorIs(t, err, fs.ErrInvalid, "%q", bad)
	}
}

func TestKeepEnv(t *testing.T) {
	for v, want := range map[string]bool{"": false, "0": false, "1": true, "2": true, " 1 ": true, "-1": true, "true": false, "00": false} {
		assert.Equal(t, want, KeepEnv([]string{"S6_KEEP_ENV=" + v}), "%q", v)
	}
	assert.False(t, KeepEnv(nil))
}

func TestLookPath(t *testing.T) {
	d1, d2 := t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(d1, "noexec"), []byte("#!/bin/sh\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(d2, "noexec"), []byte("#!/bin/sh\n"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(d1, "onlynoexec"), []byte("#!/bin/sh\n"), 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(d1, "adir"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(d2, "prog"), []byte("#!/bin/sh\n"), 0o755))
	path := d1 + ":" + d2

	got, err := LookPath("prog", path)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(d2, "prog"), got)

	got, err = LookPath("noexec", path)
	require.NoError(t, err, "a non-executable earlier match is skipped, like execvp")
	assert.Equal(t, filepath.Join(d2, "noexec"), got)

	_, err = LookPath("onlynoexec", path)
	assert.Equal(t, CodeNotExecutable, ExecCode(err))
	assert.ErrorIs(t, err, fs.ErrPermission)

	_, err = LookPath("adir", path)
	assert.Equal(t, CodeNotExecutable, ExecCode(err))

	_, err = LookPath("nothere", path)
	assert.Equal(t, CodeNotFound, ExecCode(err))
	assert.ErrorIs(t, err, ErrNotFound)

	_, err = LookPath("", path)
	assert.Equal(t, CodeNotFound, ExecCode(err))

	got, err = LookPath("./relative/x", path)
	require.NoError(t, err)
	assert.Equal(t, "./relative/x", got, "names with a slash are not searched")

	t.Chdir(d2)
	got, err = LookPath("prog", "/nonexistent::")
	require.NoError(t, err)
	assert.Equal(t, "./prog", got, "an empty PATH element is the current directory")
}

func TestExecCode(t *testing.T) {
	assert.Equal(t, 127, ExecCode(syscall.ENOENT))
	assert.Equal(t, 126, ExecCode(syscall.EACCES))
	assert.Equal(t, 126, ExecCode(syscall.ENOEXEC))
	assert.Equal(t, 127, ExecCode(&ExecError{Name: "x", Err: ErrNotFound, Code: 127}))
	assert.Equal(t, 126, ExecCode(errors.New("other")))
}
