package s6rc

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCommand(t *testing.T) {
	requireExecline(t)
	base := t.TempDir()
	log := filepath.Join(base, "log")
	script := func(what string) string { return `/bin/sh -c "echo ` + what + ` >> ` + log + `"` + "\n" }
	db, _, err := Compile(tree(t, map[string]string{
		"a/type": "oneshot\n", "a/up": script("up-a"), "a/down": script("down-a"),
		"b/type": "oneshot\n", "b/up": script("up-b"), "b/down": script("down-b"), "b/dependencies.d/a": "",
		"e/type": "oneshot\n", "e/up": script("up-e"), "e/flag-essential": "",
		"user/type": "bundle\n", "user/contents.d/b": "", "user/contents.d/e": "",
	}))
	if err != nil {
		t.Fatal(err)
	}
	live := filepath.Join(base, "live")
	sys := NewSystem()
	sys.ToolDirs = []string{"/usr/bin", "/usr/lib/execline/bin"}
	if _, err := Init(context.Background(), live, filepath.Join(base, "scan"), db, sys); err != nil {
		t.Fatal(err)
	}
	run := func(args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		s := NewSystem()
		s.ToolDirs = sys.ToolDirs
		s.Logf = func(format string, a ...any) { errb.WriteString(sprintf(format, a...) + "\n") }
		code := Run(append([]string{"s6-rc", "-l", live}, args...), Env{Stdout: &out, Stderr: &errb, ScanDir: filepath.Join(base, "scan"), LegacyDir: filepath.Join(base, "legacy"), Sys: s})
		return code, out.String(), errb.String()
	}
	lines := func() string {
		b, _ := os.ReadFile(log)
		return strings.Join(strings.Fields(string(b)), " ")
	}
	for _, tc := range []struct {
		args []string
		code int
		out  string
		log  string
	}{
		{[]string{"-a", "list"}, 0, "", ""},
		{[]string{"-u", "change", "b"}, 0, "", "up-a up-b"},
		{[]string{"-a", "list"}, 0, "a b", ""},
		{[]string{"-da", "list"}, 0, "e fix-attrs legacy-cont-init legacy-services", ""},
		{[]string{"listall", "b"}, 0, "a b", ""},
		{[]string{"-d", "listall", "a"}, 0, "a b legacy-services", ""},
		{[]string{"list", "user"}, 0, "b e", ""},
		{[]string{"-e", "list", "user"}, 0, "b", ""},
		{[]string{"change", "e"}, 0, "", "up-e"},
		{[]string{"-d", "change", "a"}, 0, "", "down-b down-a"},
		{[]string{"-a", "list"}, 0, "e", ""},
		{[]string{"-d", "change", "e"}, 0, "", ""}, // essential: kept
		{[]string{"-a", "list"}, 0, "e", ""},
		{[]string{"-pu", "change", "a"}, 0, "", "up-a"}, // prune: a up, e essential so kept
		{[]string{"-a", "list"}, 0, "a e", ""},
		{[]string{"-Dpu", "change", "a"}, 0, "", ""}, // -D then -u: -u wins, as in s6-rc
		{[]string{"-D", "change", "e"}, 0, "", ""},
		{[]string{"-a", "list"}, 0, "a", ""},
		{[]string{"start", "nope"}, 3, "", ""},
		{[]string{"-n0", "change", "a"}, 100, "", ""},
		{[]string{"frobnicate"}, 100, "", ""},
		{[]string{}, 100, "", ""},
		{[]string{"-u", "change", "legacy-cont-init"}, 1, "", ""}, // only /init runs cont-init.d
	} {
		if err := os.Remove(log); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		code, out, errs := run(tc.args...)
		if code != tc.code {
			t.Errorf("%v: exit %d, want %d (stderr %q)", tc.args, code, tc.code, errs)
		}
		if got := strings.Join(strings.Fields(out), " "); got != tc.out {
			t.Errorf("%v: stdout %q, want %q", tc.args, got, tc.out)
		}
		if got := lines(); got != tc.log {
			t.Errorf("%v: ran %q, want %q", tc.args, got, tc.log)
		}
	}
	// Without a live state: exit 4.
	var out, errb bytes.Buffer
	if code := Run([]string{"s6-rc", "-l", filepath.Join(base, "none"), "-a", "list"}, Env{Stdout: &out, Stderr: &errb, Sys: NewSystem()}); code != CodeBadDB {
		t.Errorf("no live state: exit %d, want 4 (%s)", code, errb.String())
	}
}
