package s6util

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The test binary doubles as the multi-call binary: started under a program's name it is
// that program (so exec-ing helpers run as real processes).
func TestMain(m *testing.M) {
	if _, ok := programs[filepath.Base(os.Args[0])]; ok {
		os.Exit(Main(os.Args))
	}
	os.Exit(m.Run())
}

// runProc runs NAME ARGS as a real process of this binary and returns its exit code, stdout
// and stderr.
func runProc(t *testing.T, env []string, stdin string, name string, args ...string) (int, string, string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := &exec.Cmd{Path: self, Args: append([]string{name}, args...), Env: env, Stdin: strings.NewReader(stdin)}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, out.String(), errb.String()
}

func run(t *testing.T, name string, args ...string) (int, string, string) {
	return runProc(t, []string{"PATH=/usr/bin:/bin"}, "", name, args...)
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	st, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return st.Mode()
}

func TestEcho(t *testing.T) {
	for _, c := range []struct {
		args []string
		out  string
	}{
		{[]string{"a", "b"}, "a b\n"},
		{[]string{"-n", "a", "b"}, "a b"},
		{[]string{"-s", ":", "a", "b"}, "a:b\n"},
		{[]string{"--", "-n"}, "-n\n"},
		{nil, "\n"},
	} {
		code, out, _ := run(t, "s6-echo", c.args...)
		if code != 0 || out != c.out {
			t.Errorf("s6-echo %q = %d %q, want 0 %q", c.args, code, out, c.out)
		}
	}
	if code, _, errs := run(t, "s6-echo", "-x"); code != 100 || !strings.Contains(errs, "s6-echo: usage:") {
		t.Errorf("s6-echo -x = %d %q, want 100 and a usage line", code, errs)
	}
}

func TestMkdir(t *testing.T) {
	d := t.TempDir()
	deep := filepath.Join(d, "a/b/c")
	if code, _, errs := run(t, "s6-mkdir", deep); code != 111 || !strings.Contains(errs, "unable to mkdir") {
		t.Fatalf("s6-mkdir without -p of a deep path = %d %q, want 111", code, errs)
	}
	if code, _, errs := run(t, "s6-mkdir", "-p", "-m", "0750", deep); code != 0 {
		t.Fatalf("s6-mkdir -p = %d %s", code, errs)
	}
	for _, p := range []string{filepath.Join(d, "a"), deep} {
		if m := mode(t, p); !m.IsDir() || m.Perm() != 0o750 {
			t.Errorf("%s: mode %v, want drwxr-x---", p, m)
		}
	}
	if code, _, _ := run(t, "s6-mkdir", "-p", deep); code != 0 {
		t.Errorf("s6-mkdir -p of an existing dir = %d, want 0", code)
	}
	if code, _, _ := run(t, "s6-mkdir", deep); code != 111 {
		t.Errorf("s6-mkdir of an existing dir = %d, want 111", code)
	}
	if code, _, errs := run(t, "s6-mkdir", "-v", "-m", "2755", filepath.Join(d, "s")); code != 0 || !strings.Contains(errs, "created directory") {
		t.Errorf("s6-mkdir -v = %d %q", code, errs)
	}
	if m := mode(t, filepath.Join(d, "s")); m.Perm() != 0o755 {
		t.Errorf("mode %v, want 0755 (mkdir(2) drops setgid, as in s6-mkdir)", m)
	}
}

func TestRmrfTouchCat(t *testing.T) {
	d := t.TempDir()
	f := filepath.Join(d, "x/y/f")
	if code, _, _ := run(t, "s6-mkdir", "-p", filepath.Dir(f)); code != 0 {
		t.Fatal("mkdir")
	}
	if code, _, _ := run(t, "s6-touch", f, filepath.Join(d, "g")); code != 0 {
		t.Fatal("touch")
	}
	if err := os.WriteFile(f, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := run(t, "s6-touch", f); code != 0 {
		t.Fatal("touch of an existing file")
	}
	if b, _ := os.ReadFile(f); string(b) != "keep" {
		t.Errorf("s6-touch truncated the file: %q", b)
	}
	if code, _, _ := run(t, "s6-rmrf", filepath.Join(d, "x"), filepath.Join(d, "g"), filepath.Join(d, "missing")); code != 0 {
		t.Fatal("rmrf")
	}
	if _, err := os.Lstat(filepath.Join(d, "x")); err == nil {
		t.Error("s6-rmrf left x")
	}
	if _, err := os.Lstat(filepath.Join(d, "g")); err == nil {
		t.Error("s6-rmrf left g")
	}
	if code, _, _ := run(t, "s6-rmrf"); code != 100 {
		t.Errorf("s6-rmrf without args = %d, want 100", code)
	}
	if code, out, _ := runProc(t, nil, "line1\nline2", "s6-cat"); code != 0 || out != "line1\nline2" {
		t.Errorf("s6-cat = %d %q", code, out)
	}
}

func TestChmodChown(t *testing.T) {
	f := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := run(t, "s6-chmod", "4751", f); code != 0 {
		t.Fatal("chmod")
	}
	if m := mode(t, f); m.Perm() != 0o751 || m&os.ModeSetuid == 0 {
		t.Errorf("mode %v, want -rwsr-x--x", m)
	}
	if code, _, _ := run(t, "s6-chmod", "rwx", f); code != 100 {
		t.Errorf("s6-chmod rwx = %d, want 100", code)
	}
	if code, _, errs := run(t, "s6-chmod", "0644", f+".missing"); code != 111 || !strings.Contains(errs, "s6-chmod: fatal: unable to change mode") {
		t.Errorf("s6-chmod of a missing file = %d %q, want 111", code, errs)
	}
	if os.Geteuid() != 0 {
		t.Skip("chown needs root")
	}
	if code, _, errs := run(t, "s6-chown", "-u", "1234", "-g", "2345", f); code != 0 {
		t.Fatalf("s6-chown = %d %s", code, errs)
	}
	st, _ := os.Stat(f)
	if s := st.Sys().(*syscall.Stat_t); s.Uid != 1234 || s.Gid != 2345 {
		t.Errorf("owner %d:%d, want 1234:2345", s.Uid, s.Gid)
	}
	if code, _, _ := run(t, "s6-chown", "-g", "7", f); code != 0 {
		t.Fatal("chown -g")
	}
	st, _ = os.Stat(f)
	if s := st.Sys().(*syscall.Stat_t); s.Uid != 1234 || s.Gid != 7 {
		t.Errorf("owner %d:%d, want 1234:7 (uid kept)", s.Uid, s.Gid)
	}
	if code, _, _ := runProc(t, []string{"UID=5", "GID=6"}, "", "s6-chown", "-U", f); code != 0 {
		t.Fatal("chown -U")
	}
	st, _ = os.Stat(f)
	if s := st.Sys().(*syscall.Stat_t); s.Uid != 5 || s.Gid != 6 {
		t.Errorf("owner %d:%d, want 5:6 from $UID $GID", s.Uid, s.Gid)
	}
	if code, _, _ := runProc(t, nil, "", "s6-chown", "-U", f); code != 100 {
		t.Errorf("s6-chown -U without UID = %d, want 100", code)
	}
}

func TestLn(t *testing.T) {
	d := t.TempDir()
	src, dst := filepath.Join(d, "src"), filepath.Join(d, "dst")
	if err := os.WriteFile(src, []byte("s"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, _ := run(t, "s6-ln", "-s", "/somewhere", dst); code != 0 {
		t.Fatal("ln -s")
	}
	if code, _, _ := run(t, "s6-ln", "-s", "/elsewhere", dst); code != 1 {
		t.Errorf("s6-ln -s onto an existing link = %d, want 1", code)
	}
	if code, _, _ := run(t, "s6-ln", "-nsf", "/elsewhere", dst); code != 0 {
		t.Fatal("ln -nsf")
	}
	if l, _ := os.Readlink(dst); l != "/elsewhere" {
		t.Errorf("link -> %q, want /elsewhere", l)
	}
	// -n: a symlink to a directory is replaced, not entered.
	sub := filepath.Join(d, "sub")
	os.Mkdir(sub, 0o755)
	ldir := filepath.Join(d, "ldir")
	os.Symlink(sub, ldir)
	if code, _, _ := run(t, "s6-ln", "-sf", "/x", ldir); code != 0 {
		t.Fatal("ln into dir")
	}
	if l, _ := os.Readlink(filepath.Join(sub, "x")); l != "/x" {
		t.Errorf("without -n the link goes into the directory: got %q", l)
	}
	if code, _, _ := run(t, "s6-ln", "-nsf", "/y", ldir); code != 0 {
		t.Fatal("ln -nsf dirlink")
	}
	if l, _ := os.Readlink(ldir); l != "/y" {
		t.Errorf("with -n the dir link is replaced: got %q", l)
	}
	// hard link
	if code, _, _ := run(t, "s6-ln", src, filepath.Join(d, "hard")); code != 0 {
		t.Fatal("hard link")
	}
	a, _ := os.Stat(src)
	b, _ := os.Stat(filepath.Join(d, "hard"))
	if !os.SameFile(a, b) {
		t.Error("s6-ln without -s did not make a hard link")
	}
}

func TestHiercopy(t *testing.T) {
	d := t.TempDir()
	src := filepath.Join(d, "src")
	os.MkdirAll(filepath.Join(src, "log"), 0o750)
	os.WriteFile(filepath.Join(src, "run"), []byte("#!/bin/sh\n"), 0o755)
	os.WriteFile(filepath.Join(src, "log", "run"), []byte("x"), 0o700)
	os.Symlink("run", filepath.Join(src, "link"))
	syscall.Mkfifo(filepath.Join(src, "fifo"), 0o600)
	os.Chmod(filepath.Join(src, "fifo"), 0o620)
	dst := filepath.Join(d, "dst")
	if code, _, errs := run(t, "s6-hiercopy", src, dst); code != 0 {
		t.Fatalf("s6-hiercopy = %d %s", code, errs)
	}
	if m := mode(t, filepath.Join(dst, "run")); m.Perm() != 0o755 {
		t.Errorf("run mode %v", m)
	}
	if m := mode(t, filepath.Join(dst, "log")); !m.IsDir() || m.Perm() != 0o750 {
		t.Errorf("log mode %v", m)
	}
	if b, _ := os.ReadFile(filepath.Join(dst, "log", "run")); string(b) != "x" {
		t.Errorf("log/run = %q", b)
	}
	if l, _ := os.Readlink(filepath.Join(dst, "link")); l != "run" {
		t.Errorf("link -> %q", l)
	}
	if m := mode(t, filepath.Join(dst, "fifo")); m&os.ModeNamedPipe == 0 || m.Perm() != 0o620 {
		t.Errorf("fifo mode %v", m)
	}
	if code, _, _ := run(t, "s6-hiercopy", filepath.Join(d, "nope"), dst); code != 111 {
		t.Errorf("s6-hiercopy of a missing source = %d, want 111", code)
	}
}

func TestSleep(t *testing.T) {
	start := time.Now()
	code, out, _ := run(t, "s6-sleep", "-m", "200", "/bin/echo", "woke")
	if code != 0 || out != "woke\n" {
		t.Errorf("s6-sleep -m 200 echo = %d %q", code, out)
	}
	if el := time.Since(start); el < 200*time.Millisecond {
		t.Errorf("slept %v, want >= 200ms", el)
	}
	if code, _, _ := run(t, "s6-sleep", "0"); code != 0 {
		t.Errorf("s6-sleep 0 = %d", code)
	}
	if code, _, _ := run(t, "s6-sleep", "1s"); code != 100 {
		t.Errorf("s6-sleep 1s = %d, want 100", code)
	}
}

func TestWithRetries(t *testing.T) {
	d := t.TempDir()
	count := filepath.Join(d, "count")
	// Fails until it has run 3 times.
	script := filepath.Join(d, "flaky")
	os.WriteFile(script, []byte("#!/bin/sh\necho x >> "+count+"\n[ $(wc -l < "+count+") -ge 3 ]\n"), 0o755)
	lines := func() int {
		b, _ := os.ReadFile(count)
		return strings.Count(string(b), "\n")
	}
	// Each attempt may take its time: the default limit (500 ms) is not the script's to meet
	// on a busy machine (beside two busy loops per core it once was not).
	if code, _, _ := run(t, "with-retries", "-n", "2", "-t", "20000", script); code != 1 || lines() != 2 {
		t.Errorf("with-retries -n 2 = %d after %d runs, want 1 after 2", code, lines())
	}
	os.Remove(count)
	if code, _, _ := run(t, "with-retries", "-t", "20000", script); code != 0 || lines() != 3 {
		t.Errorf("with-retries (default 3) = %d after %d runs, want 0 after 3", code, lines())
	}
	os.Remove(count)
	if code, _, _ := run(t, "with-retries", "-n", "5", "-t", "20000", script); code != 0 || lines() != 3 {
		t.Errorf("with-retries -n 5 = %d after %d runs, want 0 after 3 (stops at success)", code, lines())
	}
	// -t: each attempt is killed after the time-out.
	start := time.Now()
	if code, _, _ := run(t, "with-retries", "-n", "2", "-t", "100", "/bin/sleep", "30"); code != 1 {
		t.Errorf("with-retries of a hanging prog = %d, want 1", code)
	}
	if el := time.Since(start); el > 10*time.Second {
		t.Errorf("with-retries -t 100 took %v", el)
	}
	if code, _, _ := run(t, "with-retries", "-n", "0", "/bin/true"); code != 1 {
		t.Errorf("with-retries -n 0 = %d, want 1", code)
	}
	if code, _, _ := run(t, "with-retries", "-n"); code != 100 {
		t.Errorf("with-retries -n (no value) = %d, want 100", code)
	}
}

func TestLogutilNewfifo(t *testing.T) {
	f := filepath.Join(t.TempDir(), "fifo")
	os.WriteFile(f, []byte("old"), 0o644)
	code, _, errs := run(t, "logutil-newfifo", "-m", "0640", "-o", "root", f)
	if code != 0 || !strings.Contains(errs, "deprecated") {
		t.Fatalf("logutil-newfifo = %d %q", code, errs)
	}
	if m := mode(t, f); m&os.ModeNamedPipe == 0 || m.Perm() != 0o640 {
		t.Errorf("mode %v, want a 0640 fifo", m)
	}
	if code, _, _ := run(t, "logutil-newfifo", "-o", "no-such-user-here", f); code == 0 {
		t.Error("logutil-newfifo with an unknown owner succeeded")
	}
	if code, _, _ := run(t, "logutil-newfifo"); code != 1 {
		t.Errorf("logutil-newfifo without fifo = %d, want 1", code)
	}
}

func TestLogutilService(t *testing.T) {
	if _, err := os.Stat("/usr/bin/s6-log"); err != nil {
		t.Skip("needs Debian's s6 (s6-log)")
	}
	d := t.TempDir()
	logdir := filepath.Join(d, "log")
	env := []string{"PATH=/usr/bin:/bin", "S6_KEEP_ENV=1", "S6_LOGGING_SCRIPT=n3 s4096"}
	if os.Geteuid() == 0 {
		os.Chmod(filepath.Dir(d), 0o755) // nobody writes the log dir
		os.Chmod(d, 0o777)
	}
	code, _, errs := runProc(t, env, "hello\nworld\n", "logutil-service", logdir)
	if code != 0 {
		t.Fatalf("logutil-service = %d %s", code, errs)
	}
	b, err := os.ReadFile(filepath.Join(logdir, "current"))
	if err != nil || string(b) != "hello\nworld\n" {
		t.Errorf("current = %q %v, want the lines without timestamps (S6_LOGGING_SCRIPT without T)", b, err)
	}
	if os.Geteuid() == 0 {
		st, _ := os.Stat(filepath.Join(logdir, "current"))
		if uid := st.Sys().(*syscall.Stat_t).Uid; uid == 0 {
			t.Errorf("current is root's: privileges not dropped")
		}
	}
	// Default script: ISO 8601 timestamps (T).
	logdir2 := filepath.Join(d, "log2")
	if code, _, errs := runProc(t, []string{"PATH=/usr/bin:/bin", "S6_KEEP_ENV=1"}, "x\n", "logutil-service", logdir2); code != 0 {
		t.Fatalf("logutil-service = %d %s", code, errs)
	}
	b, _ = os.ReadFile(filepath.Join(logdir2, "current"))
	if !regexp.MustCompile(`^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d\.\d+ +x\n$`).Match(b) {
		t.Errorf("current = %q, want an ISO 8601 timestamp then x", b)
	}
	// -f fifo: read from the fifo.
	fifo := filepath.Join(d, "fifo")
	syscall.Mkfifo(fifo, 0o666)
	done := make(chan int, 1)
	go func() {
		c, _, _ := runProc(t, env, "", "logutil-service", "-f", fifo, filepath.Join(d, "log3"))
		done <- c
	}()
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.WriteString("via fifo\n")
	w.Close()
	if c := <-done; c != 0 {
		t.Fatalf("logutil-service -f = %d", c)
	}
	if b, _ := os.ReadFile(filepath.Join(d, "log3", "current")); string(b) != "via fifo\n" {
		t.Errorf("current = %q", b)
	}
}

func TestResolveAccount(t *testing.T) {
	for _, c := range []struct {
		spec     string
		uid, gid int
		ok       bool
	}{
		{"root", 0, 0, true},
		{"root:root", 0, 0, true},
		{"11111:11111,3:4", 11111, 11111, true},
		{"root:unexisting,3:4", 0, 4, true},
		{"unexisting:root,3:4", 3, 0, true},
		{"unexisting,32768:32768", 32768, 32768, true},
		{"unexisting", 0, 0, false},
		{"root,bad", 0, 0, false},
	} {
		uid, gid, err := ResolveAccount(c.spec)
		if (err == nil) != c.ok || (c.ok && (uid != c.uid || gid != c.gid)) {
			t.Errorf("ResolveAccount(%q) = %d %d %v, want %d %d ok=%v", c.spec, uid, gid, err, c.uid, c.gid, c.ok)
		}
	}
}

func TestUnknownName(t *testing.T) {
	var errb bytes.Buffer
	if code := Run([]string{"nope"}, Env{Stderr: &errb}); code != 100 || !strings.Contains(errb.String(), "s6-echo") {
		t.Errorf("Run(nope) = %d %q", code, errb.String())
	}
	var out bytes.Buffer
	if code := Run([]string{"s6util", "s6-echo", "hi"}, Env{Stdout: &out, Stderr: &errb}); code != 0 || out.String() != "hi\n" {
		t.Errorf("s6util s6-echo hi = %d %q", code, out.String())
	}
}
