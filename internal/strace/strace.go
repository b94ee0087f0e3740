// Package strace runs a command under strace(1) for tests and parses what it recorded, so a
// test can assert on the system calls a real process made (the order of open, write, fsync
// and rename of an atomic file replacement, say) instead of on a fake.
//
// It is test support only: nothing outside _test.go files imports it.
//
// The command runs as `strace -f -D -y -xx -s 4096 -o LOG -e trace=... CMD...`:
//   - -D keeps the traced command the direct child of the test, so the *exec.Cmd's PID is the
//     traced program's PID (signals reach it, its PID can be compared with what it records);
//   - -y decorates every descriptor with the path it refers to at the time of the call;
//   - -xx prints every string (arguments and decorations alike) as \xHH escapes, which makes
//     the log unambiguous to parse whatever bytes a file name or a write contains.
//
// A missing strace skips the test locally and fails it under CI=true (s6test.Missing).
package strace

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/s6gate/s6gate/internal/s6test"
)

// Require stops the test unless strace is installed and returns its path.
func Require(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("strace")
	if err != nil {
		s6test.Missing(t, "strace is not installed (apt-get install -y strace): "+err.Error())
	}
	return p
}

// Trace is one traced command.
type Trace struct {
	Cmd *exec.Cmd // not started; its Process.Pid is the traced program's PID once started
	Log string    // where strace writes
}

// Command prepares name args... to run under strace, recording the given system calls of the
// program and of every thread and child it starts. The caller sets Env, Stdout, ... and starts
// Cmd as usual.
func Command(t testing.TB, syscalls []string, name string, args ...string) *Trace {
	t.Helper()
	bin := Require(t)
	log := filepath.Join(t.TempDir(), "strace.log")
	argv := []string{"-f", "-D", "-y", "-xx", "-s", "4096", "-o", log, "-e", "trace=" + strings.Join(syscalls, ","), "--", name}
	return &Trace{Cmd: exec.Command(bin, append(argv, args...)...), Log: log}
}

// DelayEach makes strace hold every call of the given set at its entry for d before letting
// it run (strace -e inject=SET:delay_enter=...), so a test can kill the program between two
// such calls: once the log shows the k-th completed, the (k+1)-th has not run yet and will not
// for d. Call it before Cmd starts.
func (tr *Trace) DelayEach(syscalls []string, d time.Duration) {
	opt := "inject=" + strings.Join(syscalls, ",") + ":delay_enter=" + strconv.FormatInt(d.Microseconds(), 10)
	args := tr.Cmd.Args
	for i, a := range args {
		if a == "--" {
			tr.Cmd.Args = append(append(append([]string{}, args[:i]...), "-e", opt), args[i:]...)
			return
		}
	}
}

// Calls waits until strace has recorded the exit of the traced program (it exits when the
// program has; the log is complete then) and returns the calls it recorded.
func (tr *Trace) Calls(t testing.TB, timeout time.Duration) Calls {
	t.Helper()
	pid := tr.Cmd.Process.Pid
	end := regexp.MustCompile(`(?m)^` + strconv.Itoa(pid) + `\s+\+\+\+ (exited with|killed by) `)
	var b []byte
	s6test.Eventually(t, timeout, "strace to record the exit of pid "+strconv.Itoa(pid), func() bool {
		var err error
		b, err = os.ReadFile(tr.Log)
		return err == nil && end.Match(b)
	})
	calls, err := Parse(b)
	if err != nil {
		t.Fatalf("parse %s: %v", tr.Log, err)
	}
	return calls
}

// Arg is one argument of a call as strace printed it.
type Arg struct {
	Raw  string // the argument as printed, strings still escaped
	Str  string // the decoded string when the argument is a quoted string
	Path string // the decoded -y decoration (path of a descriptor, AT_FDCWD's directory)
}

// Call is one completed system call.
type Call struct {
	PID     int
	Name    string
	Args    []Arg
	Ret     int64  // return value; -1 when the call failed
	RetPath string // -y decoration of a returned descriptor
	Errno   string // "ENOENT" when the call failed
}

// Calls are in the order the calls were entered.
type Calls []Call

// OK reports whether the call succeeded.
func (c Call) OK() bool { return c.Errno == "" && c.Ret >= 0 }

// At resolves the name in argument i against the directory descriptor in argument i-1
// (openat, renameat and the like). An absolute name is returned as is.
func (c Call) At(i int) string {
	name := c.Args[i].Str
	if filepath.IsAbs(name) || i == 0 {
		return name
	}
	return filepath.Join(c.Args[i-1].Path, name)
}

// FDPath is the path of the descriptor in the first argument (write, fsync, ...).
func (c Call) FDPath() string {
	if len(c.Args) == 0 {
		return ""
	}
	return c.Args[0].Path
}

func (c Call) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s(", c.PID, c.Name)
	for i, a := range c.Args {
		if i > 0 {
			b.WriteString(", ")
		}
		switch {
		case a.Str != "" || strings.HasPrefix(a.Raw, `"`):
			b.WriteString(strconv.Quote(a.Str))
		case a.Path != "":
			fmt.Fprintf(&b, "%s<%s>", a.Raw[:strings.IndexByte(a.Raw, '<')], a.Path)
		default:
			b.WriteString(a.Raw)
		}
	}
	fmt.Fprintf(&b, ") = %d", c.Ret)
	if c.RetPath != "" {
		fmt.Fprintf(&b, "<%s>", c.RetPath)
	}
	if c.Errno != "" {
		b.WriteString(" " + c.Errno)
	}
	return b.String()
}

func (cs Calls) String() string {
	var b strings.Builder
	for _, c := range cs {
		b.WriteString(c.String())
		b.WriteByte('\n')
	}
	return b.String()
}

// Filter returns the calls keep accepts, in order.
func (cs Calls) Filter(keep func(Call) bool) Calls {
	var out Calls
	for _, c := range cs {
		if keep(c) {
			out = append(out, c)
		}
	}
	return out
}

// Renames are successful rename, renameat and renameat2 calls, as (from, to) paths.
func (c Call) Renames() (from, to string, ok bool) {
	if !c.OK() {
		return "", "", false
	}
	switch c.Name {
	case "rename":
		return c.Args[0].Str, c.Args[1].Str, len(c.Args) == 2
	case "renameat", "renameat2":
		if len(c.Args) < 4 {
			return "", "", false
		}
		return c.At(1), c.At(3), true
	}
	return "", "", false
}

// Replacements reconstructs the documents that were renamed onto target, in order: the bytes
// written (write, pwrite64) to each file before it was renamed to target. It needs write and
// the rename calls in the traced set.
func (cs Calls) Replacements(target string) []string {
	content := map[string]*bytes.Buffer{}
	var docs []string
	for _, c := range cs {
		switch c.Name {
		case "write", "pwrite64":
			if !c.OK() || len(c.Args) < 2 {
				continue
			}
			p := c.FDPath()
			if content[p] == nil {
				content[p] = &bytes.Buffer{}
			}
			content[p].WriteString(c.Args[1].Str[:min(int(c.Ret), len(c.Args[1].Str))])
		case "openat", "openat2", "open":
			// A file opened afresh starts empty for this reconstruction when it is created or
			// truncated; otherwise writes append to what was recorded.
			if c.OK() && (strings.Contains(c.Raw(), "O_TRUNC") || strings.Contains(c.Raw(), "O_EXCL")) {
				delete(content, c.RetPath)
			}
		default:
			if from, to, ok := c.Renames(); ok && to == target {
				doc := ""
				if b := content[from]; b != nil {
					doc = b.String()
				}
				docs = append(docs, doc)
				delete(content, from)
			}
		}
	}
	return docs
}

// Raw is the call's arguments as printed, for flag checks such as O_TRUNC.
func (c Call) Raw() string {
	parts := make([]string, len(c.Args))
	for i, a := range c.Args {
		parts[i] = a.Raw
	}
	return strings.Join(parts, ", ")
}

var (
	lineRE    = regexp.MustCompile(`^(\d+)\s+(.*)$`)
	callRE    = regexp.MustCompile(`^([a-z0-9_]+)\(`)
	resumedRE = regexp.MustCompile(`^<\.\.\. ([a-z0-9_]+) resumed>(.*)$`)
	retRE     = regexp.MustCompile(`^\s*=\s*(-?\d+|\?)(<[^>]*>)?(?:\s+([A-Z0-9_]+))?`)
)

const unfinished = " <unfinished ...>"

// Parse reads a log written by strace -f -y -xx (with or without -o's PID prefix handling:
// every line must carry a PID, which -f -o guarantees). Calls split by another thread's call
// ("<unfinished ...>" / "<... resumed>") are joined and kept at the place they were entered.
func Parse(log []byte) (Calls, error) {
	var (
		texts   []string        // entry-ordered call text, joined once resumed
		pids    []int           // PID of each
		pending = map[int]int{} // PID → index of its unfinished call
	)
	sc := bufio.NewScanner(bytes.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		m := lineRE.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		rest := m[2]
		if r := resumedRE.FindStringSubmatch(rest); r != nil {
			i, ok := pending[pid]
			if !ok {
				continue // entered before the log started
			}
			delete(pending, pid)
			texts[i] += r[2]
			continue
		}
		if !callRE.MatchString(rest) {
			continue // signals, exits, strace's own notes
		}
		if strings.HasSuffix(rest, unfinished) {
			pending[pid] = len(texts)
			rest = strings.TrimSuffix(rest, unfinished)
		}
		texts = append(texts, rest)
		pids = append(pids, pid)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	incomplete := map[int]bool{}
	for _, i := range pending {
		incomplete[i] = true // never completed (the thread died inside it)
	}
	var calls Calls
	for i, text := range texts {
		if incomplete[i] {
			continue
		}
		c, err := parseCall(text)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", text, err)
		}
		c.PID = pids[i]
		calls = append(calls, c)
	}
	return calls, nil
}

func parseCall(text string) (Call, error) {
	m := callRE.FindStringSubmatch(text)
	if m == nil {
		return Call{}, fmt.Errorf("no system call")
	}
	c := Call{Name: m[1]}
	// Find the parenthesis that closes the argument list.
	start, end := len(m[0])-1, -1
	scanTop(text[start:], func(i int, ch byte, depth int) bool {
		if depth == 0 && (ch == ')' || ch == '}' || ch == ']') {
			end = start + i
			return false
		}
		return true
	})
	if end < 0 {
		return Call{}, fmt.Errorf("unbalanced argument list")
	}
	for _, raw := range splitArgs(text[start+1 : end]) {
		a, err := parseArg(raw)
		if err != nil {
			return Call{}, err
		}
		c.Args = append(c.Args, a)
	}
	r := retRE.FindStringSubmatch(text[end+1:])
	if r == nil {
		return Call{}, fmt.Errorf("no return value")
	}
	if r[1] == "?" {
		c.Ret = -1
	} else {
		c.Ret, _ = strconv.ParseInt(r[1], 10, 64)
	}
	if r[2] != "" {
		c.RetPath = decoration(r[2][1 : len(r[2])-1])
	}
	c.Errno = r[3]
	return c, nil
}

// scanTop walks s, skipping the inside of quoted strings (with their escapes), and calls fn
// for every other byte with the bracket depth after it ((, {, [ open; ), }, ] close). It stops
// when fn returns false.
func scanTop(s string, fn func(i int, ch byte, depth int) bool) {
	depth, inStr := 0, false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case inStr && ch == '\\':
			i++
			continue
		case ch == '"':
			inStr = !inStr
			continue
		case inStr:
			continue
		case ch == '(' || ch == '{' || ch == '[':
			depth++
		case ch == ')' || ch == '}' || ch == ']':
			depth--
		}
		if !fn(i, ch, depth) {
			return
		}
	}
}

// splitArgs splits at top-level commas.
func splitArgs(s string) []string {
	var out []string
	from := 0
	scanTop(s, func(i int, ch byte, depth int) bool {
		if ch == ',' && depth == 0 {
			out = append(out, strings.TrimSpace(s[from:i]))
			from = i + 1
		}
		return true
	})
	if rest := strings.TrimSpace(s[from:]); rest != "" || len(out) > 0 {
		out = append(out, rest)
	}
	return out
}

func parseArg(raw string) (Arg, error) {
	a := Arg{Raw: raw}
	if strings.HasPrefix(raw, `"`) {
		q := strings.TrimSuffix(raw, "...") // a string cut at -s
		if len(q) < 2 || !strings.HasSuffix(q, `"`) {
			return a, fmt.Errorf("bad string %s", raw)
		}
		s, err := unhex(q[1 : len(q)-1])
		if err != nil {
			return a, err
		}
		a.Str = s
		return a, nil
	}
	if i := strings.IndexByte(raw, '<'); i >= 0 && strings.HasSuffix(raw, ">") {
		a.Path = decoration(raw[i+1 : len(raw)-1])
	}
	return a, nil
}

// decoration decodes a -y decoration. Paths are hex under -xx; others (pipe:[N], socket:[N])
// may not be, and are kept as printed.
func decoration(s string) string {
	if p, err := unhex(s); err == nil {
		return p
	}
	return s
}

// unhex decodes a string printed by strace -xx: nothing but \xHH escapes.
func unhex(s string) (string, error) {
	if len(s)%4 != 0 {
		return "", fmt.Errorf("not a -xx string: %q", s)
	}
	b := make([]byte, 0, len(s)/4)
	for i := 0; i < len(s); i += 4 {
		if s[i] != '\\' || s[i+1] != 'x' {
			return "", fmt.Errorf("not a -xx string: %q", s)
		}
		v, err := hex.DecodeString(s[i+2 : i+4])
		if err != nil {
			return "", err
		}
		b = append(b, v...)
	}
	return string(b), nil
}
