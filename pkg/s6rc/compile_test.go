package s6rc

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// tree writes a source tree: path (relative) → content; a path ending in "/" is a directory.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for p, content := range files {
		full := filepath.Join(dir, p)
		if strings.HasSuffix(p, "/") {
			if err := os.MkdirAll(full, 0o755); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func oneshot(name, up string, deps ...string) map[string]string {
	m := map[string]string{name + "/type": "oneshot\n", name + "/up": up}
	for _, d := range deps {
		m[name+"/dependencies.d/"+d] = ""
	}
	return m
}

func merge(ms ...map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

func before(order []string, a, b string) bool {
	return slices.Index(order, a) >= 0 && slices.Index(order, a) < slices.Index(order, b)
}

func TestCompileValid(t *testing.T) {
	dir := tree(t, merge(
		oneshot("init-a", "echo a\n", "base"),
		oneshot("init-b", "echo b\n", "init-a"),
		map[string]string{
			"user/type":                           "bundle\n",
			"user/contents.d/init-b":              "",
			"user/contents.d/svc-pipe":            "",
			"user/contents.d/.empty":              "",
			"user2/type":                          "bundle\n",
			"user2/contents.d/late":               "",
			"late/type":                           "oneshot\n",
			"late/up":                             "echo late\n",
			"late/dependencies.d/legacy-services": "",
			"svc/type":                            "longrun\n",
			"svc/run":                             "#!/bin/sh\n",
			"svc/producer-for":                    "svc-log\n",
			"svc/notification-fd":                 "3\n",
			"svc/dependencies":                    "# comment\n  init-a\n",
			"svc-log/type":                        "longrun\n",
			"svc-log/run":                         "#!/bin/sh\n",
			"svc-log/consumer-for":                "svc\n",
			"svc-log/pipeline-name":               "svc-pipe\n",
			"svc-log/flag-essential":              "",
			"svc-log/timeout-up":                  "500\n",
			"notadir":                             "ignored",
			".hidden/type":                        "garbage",
		}))
	db, warns, err := Compile(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(warns) != 0 {
		t.Errorf("warnings: %v", warns)
	}
	// Bundles expand to atomic services, recursively (user holds the pipeline bundle).
	if got := db.Services["user"].Contents; !slices.Equal(got, []string{"init-b", "svc", "svc-log"}) {
		t.Errorf("user contents = %v", got)
	}
	if got := db.Services["svc-pipe"].Contents; !slices.Equal(got, []string{"svc", "svc-log"}) {
		t.Errorf("pipeline bundle = %v", got)
	}
	// A dependency on a bundle is a dependency on its contents; a producer depends on its consumer.
	if got := db.Services["init-a"].Deps; !slices.Equal(got, []string{FixAttrs, LegacyContInit}) {
		t.Errorf("init-a deps = %v", got)
	}
	if got := db.Services["svc"].Deps; !slices.Equal(got, []string{"init-a", "svc-log"}) {
		t.Errorf("svc deps = %v", got)
	}
	if got := db.Services[LegacyServices].Deps; !slices.Equal(got, []string{FixAttrs, "init-b", LegacyContInit, "svc", "svc-log"}) {
		t.Errorf("legacy-services deps = %v", got)
	}
	if !db.Services["svc-log"].Essential || db.Services["svc"].Essential {
		t.Error("flag-essential not read")
	}
	if db.Services["svc-log"].TimeoutUp != 500 || !db.Services["svc"].Notification {
		t.Error("timeout-up or notification-fd not read")
	}
	if _, ok := db.Services["notadir"]; ok {
		t.Error("a file became a service")
	}
	// s6-overlay's order: base, then user, then legacy-services, then user2.
	o := db.Order
	for _, p := range [][2]string{
		{FixAttrs, LegacyContInit}, {LegacyContInit, "init-a"}, {"init-a", "init-b"}, {"svc-log", "svc"},
		{"init-b", LegacyServices}, {"svc", LegacyServices}, {LegacyServices, "late"},
	} {
		if !before(o, p[0], p[1]) {
			t.Errorf("order %v: %s is not before %s", o, p[0], p[1])
		}
	}
	top, _ := db.Resolve([]string{Top})
	if top := sortedKeys(db.Closure(top, true)); !slices.Equal(top, atomicNames(db)) {
		t.Errorf("top = %v, want every atomic service %v", top, atomicNames(db))
	}
}

func TestCompileMissingTree(t *testing.T) {
	db, _, err := Compile(filepath.Join(t.TempDir(), "nope"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{FixAttrs, LegacyContInit, LegacyServices}
	if !slices.Equal(db.Order, want) {
		t.Errorf("order = %v, want %v", db.Order, want)
	}
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range []struct {
		name    string
		files   map[string]string
		service string
		msg     string
	}{
		{"cycle", merge(oneshot("a", "x", "b"), oneshot("b", "x", "c"), oneshot("c", "x", "a")), "", "dependency cycle"},
		{"self", oneshot("a", "x", "a"), "a", "depends on itself"},
		{"cycle through bundle", merge(oneshot("a", "x", "bun"), map[string]string{"bun/type": "bundle", "bun/contents.d/a": ""}), "a", "itself"},
		{"bundle cycle", map[string]string{"b1/type": "bundle", "b1/contents.d/b2": "", "b2/type": "bundle", "b2/contents.d/b1": ""}, "b1", "bundle cycle"},
		{"unknown dep", oneshot("a", "x", "ghost"), "a", "undefined service ghost"},
		{"unknown content", map[string]string{"user/type": "bundle", "user/contents.d/ghost": ""}, "user", "undefined service ghost"},
		{"bad type", map[string]string{"a/type": "daemon\n"}, "a", `invalid type "daemon"`},
		{"user not a bundle", map[string]string{"user/type": "oneshot", "user/up": "x"}, "user", "type must be bundle"},
		{"no type", map[string]string{"a/up": "x"}, "a", "missing type"},
		{"no up", map[string]string{"a/type": "oneshot"}, "a", "without an up"},
		{"no run", map[string]string{"a/type": "longrun"}, "a", "without a run"},
		{"no contents", map[string]string{"a/type": "bundle"}, "a", "without contents"},
		{"reserved prefix", map[string]string{"s6rc-x/type": "bundle"}, "s6rc-x", "reserved"},
		{"builtin name", map[string]string{"base/type": "bundle", "base/contents": ""}, "base", "reserved"},
		{"bad timeout", map[string]string{"a/type": "oneshot", "a/up": "x", "a/timeout-up": "soon"}, "a", "timeout-up"},
		{"producer not declared back", map[string]string{"p/type": "longrun", "p/run": "", "p/producer-for": "c", "c/type": "longrun", "c/run": ""}, "p", "does not name p back"},
		{"consumer of a oneshot", merge(oneshot("p", "x"), map[string]string{"c/type": "longrun", "c/run": "", "c/consumer-for": "p"}), "c", "must be a longrun"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := Compile(tree(t, tc.files))
			var te *TreeError
			if !errors.As(err, &te) {
				t.Fatalf("err = %v, want a *TreeError", err)
			}
			if tc.service != "" && te.Service != tc.service {
				t.Errorf("service = %q, want %q (%v)", te.Service, tc.service, err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %q, want it to mention %q", err, tc.msg)
			}
		})
	}
}

func TestClosure(t *testing.T) {
	db, _, err := Compile(tree(t, merge(oneshot("a", "x"), oneshot("b", "x", "a"), oneshot("c", "x", "b"), oneshot("d", "x"))))
	if err != nil {
		t.Fatal(err)
	}
	if got := sortedKeys(db.Closure([]string{"b"}, true)); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("up closure of b = %v", got)
	}
	if got := sortedKeys(db.Closure([]string{"a"}, false)); !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("down closure of a = %v", got)
	}
}

// The documented way to add to s6-overlay's user bundle is only user/contents.d/NAME: the
// bundle itself is s6-overlay's, so no user/type file is needed (linuxserver-style trees).
func TestCompileUserBundleWithoutTypeFile(t *testing.T) {
	db, _, err := Compile(tree(t, merge(
		oneshot("init-prep", "echo x\n", "base"),
		map[string]string{"user/contents.d/init-prep": "", "user2/contents.d/late": ""},
		oneshot("late", "echo y\n", "legacy-services"),
	)))
	if err != nil {
		t.Fatal(err)
	}
	order, unknown := db.Resolve([]string{Top})
	if len(unknown) > 0 {
		t.Fatal(unknown)
	}
	if !slices.Contains(order, "init-prep") || !slices.Contains(order, "late") {
		t.Fatalf("user and user2 contents not brought up by top: %v", order)
	}
}
