package s6rc

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/s6gate/s6gate/internal/s6test"
)

func requireExecline(t *testing.T) {
	t.Helper()
	s6test.Require(t)
	if _, err := os.Stat("/usr/bin/execlineb"); err != nil {
		s6test.Missing(t, "execline is not installed: "+err.Error())
	}
}

// rig is a real s6-svscan on a temporary scan directory and a live state on it.
type rig struct {
	t    *testing.T
	dir  string
	scan string
	log  string // what the scripts append to
	lv   *Live
	mu   sync.Mutex
	msgs []string
}

func newRig(t *testing.T, files map[string]string) *rig {
	t.Helper()
	requireExecline(t)
	base := t.TempDir()
	r := &rig{t: t, dir: base, scan: filepath.Join(base, "scan"), log: filepath.Join(base, "log")}
	for k, v := range files {
		delete(files, k)
		files[k] = strings.ReplaceAll(v, "@DIR@", base)
	}
	db, _, err := Compile(tree(t, files))
	if err != nil {
		t.Fatal(err)
	}
	s6test.StartScan(t, r.scan)
	sys := NewSystem()
	sys.ToolDirs = []string{s6test.ToolsDir, "/usr/lib/execline/bin"}
	sys.Verbosity = 2
	sys.Logf = func(format string, args ...any) {
		r.mu.Lock()
		defer r.mu.Unlock()
		r.msgs = append(r.msgs, strings.TrimSpace(sprintf(format, args...)))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.lv, err = Init(ctx, filepath.Join(base, "live"), r.scan, db, sys)
	if err != nil {
		t.Fatal(err)
	}
	r.lv.Hooks = map[string]Hook{
		LegacyContInit: {Up: func(context.Context) error { r.append("cont-init"); return nil }},
		LegacyServices: {
			Up:   func(context.Context) error { r.append("legacy-services"); return nil },
			Down: func(context.Context) error { r.append("legacy-services-down"); return nil },
		},
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("engine messages:\n%s\nscript log:\n%s", strings.Join(r.messages(), "\n"), strings.Join(r.lines(), "\n"))
		}
	})
	return r
}

func (r *rig) messages() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.msgs)
}

func (r *rig) append(line string) {
	f, err := os.OpenFile(r.log, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		r.t.Error(err)
		return
	}
	defer f.Close()
	_, _ = f.WriteString(line + "\n")
}

func (r *rig) lines() []string {
	b, _ := os.ReadFile(r.log)
	return strings.Fields(string(b))
}

func (r *rig) change(up bool, force bool, names ...string) Result {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	unlock, err := r.lv.Lock(ctx, false)
	if err != nil {
		r.t.Fatal(err)
	}
	defer unlock()
	atoms, unknown := r.lv.DB.Resolve(names)
	if len(unknown) > 0 {
		r.t.Fatalf("unknown %v", unknown)
	}
	return r.lv.Change(ctx, atoms, ChangeOptions{Up: up, Force: force})
}

func (r *rig) svstat(name string) (up, ready bool, pid int) {
	r.t.Helper()
	out, err := exec.Command("/usr/bin/s6-svstat", "-o", "up,ready,pid", r.lv.ServiceDir(name)).Output()
	if err != nil {
		r.t.Fatalf("s6-svstat %s: %v", name, err)
	}
	f := strings.Fields(string(out))
	pid, _ = strconv.Atoi(f[2])
	return f[0] == "true", f[1] == "true", pid
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// appendUp is a oneshot up/down script that appends WHAT to the rig's log.
func appendScript(what string) string {
	return `/bin/sh -c "echo ` + what + ` >> @DIR@/log"` + "\n"
}

func TestEngineOrderPipelineAndDown(t *testing.T) {
	files := merge(
		map[string]string{
			"one/type": "oneshot\n", "one/up": appendScript("up-one-${RC_NAME}"), "one/down": appendScript("down-one"),
			"one/dependencies.d/base": "",
			"two/type":                "oneshot\n", "two/up": appendScript("up-two"), "two/down": appendScript("down-two"),
			"two/dependencies.d/one": "",
			// A longrun that is ready only after a while: check must not run before it is.
			"slow/type": "longrun\n", "slow/notification-fd": "3\n",
			"slow/run":   "#!/bin/sh\nsleep 0.3\ntouch @DIR@/slow-ready\necho >&3\nexec sleep 1000\n",
			"check/type": "oneshot\n", "check/up": "/bin/sh -c \"test -e @DIR@/slow-ready && echo up-check >> @DIR@/log\"\n",
			"check/dependencies.d/slow": "",
			"prod/type":                 "longrun\n", "prod/producer-for": "cons\n",
			"prod/run":  "#!/bin/sh\ni=0\nwhile :; do i=$((i+1)); echo line$i; sleep 0.02; done\n",
			"cons/type": "longrun\n", "cons/consumer-for": "prod\n", "cons/pipeline-name": "pipe\n",
			"cons/run":      "#!/bin/sh\nexec cat >> @DIR@/pipe.out\n",
			"cons/data/cfg": "x",
			"late/type":     "oneshot\n", "late/up": appendScript("up-late"), "late/down": appendScript("down-late"),
			"late/dependencies.d/legacy-services": "",
			"user/type":                           "bundle\n", "user/contents.d/two": "", "user/contents.d/check": "", "user/contents.d/pipe": "",
			"user2/type": "bundle\n", "user2/contents.d/late": "",
		})
	r := newRig(t, files)
	if _, err := os.Stat(filepath.Join(r.lv.ServiceDir("cons"), "data", "cfg")); err != nil {
		t.Errorf("data/ not copied: %v", err)
	}
	if l, err := os.Readlink(filepath.Join(r.scan, "prod")); err != nil || l != r.lv.ServiceDir("prod") {
		t.Errorf("prod is not linked into the scan directory: %q %v", l, err)
	}

	res := r.change(true, false, Top)
	if res.Code != CodeOK {
		t.Fatalf("change up top: %+v", res)
	}
	got := r.lines()
	for _, p := range [][2]string{{"cont-init", "up-one-one"}, {"up-one-one", "up-two"}, {"up-two", "legacy-services"}, {"up-check", "legacy-services"}, {"legacy-services", "up-late"}} {
		if !before(got, p[0], p[1]) {
			t.Errorf("log %v: %s is not before %s", got, p[0], p[1])
		}
	}
	active := r.lv.Active()
	for _, n := range []string{"one", "two", "slow", "check", "prod", "cons", "late", LegacyServices} {
		if !slices.Contains(active, n) {
			t.Errorf("%s is not active: %v", n, active)
		}
	}
	// What a health check reads: the longruns that should be up.
	exp, err := ExpectedUp(r.lv.Dir)
	if err != nil || len(exp) != 3 || exp[0].Name != "cons" || exp[1].Name != "prod" || exp[2].Name != "slow" || exp[0].ServiceDir != r.lv.ServiceDir("cons") {
		t.Errorf("ExpectedUp = %+v, %v", exp, err)
	}
	// The state is on disk for the s6-rc command.
	lv2, err := Open(r.lv.Dir, r.scan, r.lv.Sys)
	if err != nil || !slices.Equal(lv2.Active(), active) {
		t.Errorf("reopened state %v (%v), want %v", lv2.Active(), err, active)
	}

	// The pipeline delivers, and survives a restart of either side: the other side keeps
	// running (no EPIPE for the producer, no end-of-file for the consumer) and lines keep coming.
	lineCount := func() int {
		b, _ := os.ReadFile(filepath.Join(r.dir, "pipe.out"))
		return strings.Count(string(b), "\n")
	}
	s6test.Eventually(t, 5*time.Second, "lines through the pipeline", func() bool { return lineCount() > 3 })
	_, _, prodPid := r.svstat("prod")
	_, _, consPid := r.svstat("cons")
	if err := exec.Command("/usr/bin/s6-svc", "-k", r.lv.ServiceDir("cons")).Run(); err != nil {
		t.Fatal(err)
	}
	s6test.Eventually(t, 5*time.Second, "cons restarted", func() bool {
		up, _, pid := r.svstat("cons")
		return up && pid != consPid && pid != 0
	})
	n := lineCount()
	s6test.Eventually(t, 5*time.Second, "lines after the consumer restarted", func() bool { return lineCount() > n+3 })
	if _, _, pid := r.svstat("prod"); pid != prodPid {
		t.Errorf("the producer died when its consumer restarted (pid %d -> %d)", prodPid, pid)
	}
	_, _, consPid = r.svstat("cons")
	if err := exec.Command("/usr/bin/s6-svc", "-k", r.lv.ServiceDir("prod")).Run(); err != nil {
		t.Fatal(err)
	}
	s6test.Eventually(t, 5*time.Second, "prod restarted", func() bool {
		up, _, pid := r.svstat("prod")
		return up && pid != prodPid && pid != 0
	})
	n = lineCount()
	s6test.Eventually(t, 5*time.Second, "lines after the producer restarted", func() bool { return lineCount() > n+3 })
	if _, _, pid := r.svstat("cons"); pid != consPid {
		t.Errorf("the consumer died when its producer restarted (pid %d -> %d)", consPid, pid)
	}

	// Down one longrun: what depends on it goes down first, its dependencies stay up.
	if res := r.change(false, false, "cons"); res.Code != CodeOK {
		t.Fatalf("change down cons: %+v", res)
	}
	for _, n := range []string{"cons", "prod", LegacyServices, "late"} {
		if r.lv.isActive(n) {
			t.Errorf("%s still active after -d change cons", n)
		}
	}
	if up, _, _ := r.svstat("cons"); up {
		t.Error("cons is still up for s6")
	}
	if !r.lv.isActive("two") {
		t.Error("two went down with cons")
	}
	if res := r.change(true, false, "cons"); res.Code != CodeOK || !r.lv.isActive("cons") || r.lv.isActive("prod") {
		t.Fatalf("change up cons: %+v, active %v", res, r.lv.Active())
	}
	if up, _, _ := r.svstat("cons"); !up {
		t.Error("cons is not up for s6")
	}
	if res := r.change(true, false, Top); res.Code != CodeOK {
		t.Fatalf("change up top again: %+v", res)
	}

	// Everything down: down scripts in reverse dependency order.
	if err := os.Remove(r.log); err != nil {
		t.Fatal(err)
	}
	if res := r.change(false, true, r.lv.Active()...); res.Code != CodeOK {
		t.Fatalf("change down all: %+v", res)
	}
	got = r.lines()
	for _, p := range [][2]string{{"down-late", "legacy-services-down"}, {"legacy-services-down", "down-two"}, {"down-two", "down-one"}} {
		if !before(got, p[0], p[1]) {
			t.Errorf("log %v: %s is not before %s", got, p[0], p[1])
		}
	}
	if a := r.lv.Active(); len(a) != 0 {
		t.Errorf("still active: %v", a)
	}
	for _, n := range []string{"slow", "prod", "cons"} {
		if up, _, _ := r.svstat(n); up {
			t.Errorf("%s is still up", n)
		}
	}
}

func TestEngineFailures(t *testing.T) {
	r := newRig(t, map[string]string{
		"bad/type": "oneshot\n", "bad/up": "/bin/sh -c \"exit 3\"\n",
		"after/type": "oneshot\n", "after/up": appendScript("up-after"), "after/dependencies.d/bad": "",
		"other/type": "oneshot\n", "other/up": appendScript("up-other"),
		"slow/type": "oneshot\n", "slow/up": "/bin/sleep 30\n", "slow/timeout-up": "200\n",
		"ess/type": "oneshot\n", "ess/up": appendScript("up-ess"), "ess/down": appendScript("down-ess"), "ess/flag-essential": "",
		"user/type": "bundle\n", "user/contents.d/after": "", "user/contents.d/other": "",
	})
	res := r.change(true, false, User)
	if res.Code != CodeFailed || !slices.Equal(res.Failed, []string{"bad"}) || !slices.Equal(res.Skipped, []string{"after"}) {
		t.Errorf("result %+v, want bad failed and after skipped", res)
	}
	if got := r.lines(); !slices.Equal(got, []string{"up-other"}) {
		t.Errorf("ran %v, want only up-other (independent of the failure)", got)
	}
	start := time.Now()
	res = r.change(true, false, "slow")
	if res.Code != CodeFailed || time.Since(start) > 5*time.Second {
		t.Errorf("timeout-up: result %+v after %s", res, time.Since(start))
	}
	if res := r.change(true, false, "ess"); res.Code != CodeOK {
		t.Fatal(res)
	}
	if res := r.change(false, false, "ess"); res.Code != CodeOK || !r.lv.isActive("ess") {
		t.Errorf("-d change of an essential service: %+v, active %v", res, r.lv.Active())
	}
	if res := r.change(false, true, "ess"); res.Code != CodeOK || r.lv.isActive("ess") {
		t.Errorf("-D change of an essential service: %+v, active %v", res, r.lv.Active())
	}
	// The lock is exclusive.
	unlock, err := r.lv.Lock(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.lv.Lock(context.Background(), false); err != errLocked {
		t.Errorf("second lock: %v, want errLocked", err)
	}
	unlock()
}
