package main_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/internal/s6test"
)

func TestMain(m *testing.M) { s6test.Main(m) }

func TestBadUsageExits2WithOneLineAndChangesNothing(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	e.Start()
	e.MustRun("gateway", "register", "coder")
	// s6-supervise (service and logger) and s6-log create their files on their own; let them
	// settle before the snapshot.
	s6test.Eventually(t, 5*time.Second, "the supervisors' and the logger's files", func() bool {
		for _, p := range []string{
			filepath.Join(e.Home, "logs", "gateways", "coder", "state"),
			filepath.Join(e.Slot("coder"), "supervise", "status"), filepath.Join(e.Slot("coder"), "event"),
			filepath.Join(e.Slot("coder"), "log", "supervise", "status"), filepath.Join(e.Slot("coder"), "log", "event"),
		} {
			if _, err := os.Stat(p); err != nil {
				return false
			}
		}
		return true
	})
	before := s6test.Snapshot(t, e.Home, e.ScanDir)
	tests := []struct {
		args []string
		msg  string
	}{
		{[]string{"bogus"}, `unknown verb "bogus"`},
		{[]string{"start", "--bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"start", "-p", "Bad/Name"}, `"Bad/Name"`},
		{[]string{"start", "-p", "../../etc"}, `"../../etc"`},
		{[]string{"stop", "-p", "-rf"}, `"-rf"`},
		{[]string{"register", "UPPER"}, `"UPPER"`},
		{[]string{"register", "ok", "--env", "BAD-NAME=1"}, `"BAD-NAME"`},
		{[]string{"register", "ok", "--env", "NOVALUE"}, `"NOVALUE"`},
		// Names the slot or s6gate itself sets: refused, not silently overridden.
		{[]string{"register", "ok", "--env", "S6GATE_SETENV_X=1"}, `"S6GATE_SETENV_X" is reserved`},
		{[]string{"register", "ok", "--env", "S6GATE_CONTENV=1"}, `"S6GATE_CONTENV" is reserved`},
		{[]string{"register", "ok", "--env", "S6GATE_KEEPENV_PATH=/x"}, `"S6GATE_KEEPENV_PATH" is reserved`},
		{[]string{"register", "ok", "--env", "OK=1", "--env", "GATEWAY_HOME=/tmp"}, `"GATEWAY_HOME" is reserved`},
		{[]string{"register", "ok", "--env", "GATEWAY_SUPERVISION=exec"}, `"GATEWAY_SUPERVISION" is reserved`},
		{[]string{"register", "ok", "--env", "GATEWAY_NOTIFY_FD=5"}, `"GATEWAY_NOTIFY_FD" is reserved`},
		{[]string{"register"}, "exactly one profile NAME"},
		{[]string{"register", "a", "b"}, "exactly one profile NAME"},
		{[]string{"unregister", "../x"}, `"../x"`},
		{[]string{"stop", "-p", "coder", "--all"}, "exclude each other"},
		{[]string{"status", "extra"}, `unexpected argument "extra"`},
		{[]string{"start", "-p", "coder", "--", "cmd"}, "takes no command"},
		{[]string{"run"}, "-p NAME is required"},
		{[]string{"run", "-p", "coder", "--setenv", "OK=1", "--setenv", "BAD-NAME=1"}, `"BAD-NAME"`},
		{[]string{"run", "-p", "coder", "--setenv", "=1"}, `""`},
		{[]string{"run", "-p", "coder", "--setenv", "NOCARRIER"}, "S6GATE_SETENV_NOCARRIER is not set"},
		{[]string{"start", "--setenv", "A=1"}, "flag provided but not defined: -setenv"},
		{[]string{"start", "--timeout", "soon"}, "invalid value"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := e.Run("gateway", tt.args...)
			assert.Equal(t, 2, r.Code, r.Stderr)
			assert.Equal(t, 1, strings.Count(r.Stderr, "\n"), "one line: %q", r.Stderr)
			assert.True(t, strings.HasPrefix(r.Stderr, "gateway: "), r.Stderr)
			assert.Contains(t, r.Stderr, tt.msg)
			assert.Empty(t, r.Stdout)
		})
	}
	assert.Equal(t, before, s6test.Snapshot(t, e.Home, e.ScanDir))

	e.Extra = []string{"GATEWAY_HOME=" + filepath.Join(e.Base, "missing")}
	for _, verb := range []string{"list", "status", "start", "stop", "register"} {
		args := []string{verb}
		if verb == "register" {
			args = append(args, "newone")
		}
		r := e.Run("gateway", args...)
		assert.Equal(t, 2, r.Code, "%s with a missing data root: %s", verb, r.Stderr)
		assert.Contains(t, r.Stderr, "data root")
	}
	assert.NoDirExists(t, filepath.Join(e.Base, "missing"))
	assert.Equal(t, before, s6test.Snapshot(t, e.Home, e.ScanDir))
}

func TestHelpAndNoArgs(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	r := e.Run("gateway")
	assert.Equal(t, 2, r.Code)
	assert.Contains(t, r.Stderr, "usage:", "bad usage goes to stderr")
	assert.Empty(t, r.Stdout)
	r = e.Run("gateway", "--help")
	assert.Equal(t, 0, r.Code)
	assert.Contains(t, r.Stdout, "gateway register NAME")
}

// Every verb's --help (and `gateway help VERB`) prints that verb's usage on stdout and exits 0,
// as do the actions of the other binaries; before, it was "flag: help requested", exit 1.
func TestEveryVerbsHelpExits0(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	tests := []struct {
		prog string
		args []string
		want string
	}{
		{"gateway", []string{"help"}, "gateway status [-p NAME]"},
		{"gateway", []string{"run", "--help"}, "-setenv"},
		{"gateway", []string{"finish", "--help"}, "gateway finish -p NAME"},
		{"gw-reconcile", []string{"--help"}, "gw-reconcile [--boot"},
		{"gw-svscan", []string{"--help"}, "gw-svscan [-d NOTIFYFD]"},
		{"gw-render", []string{"--help"}, "gw-render publish"},
		{"gw-mark", []string{"--help"}, "gw-mark clear"},
	}
	for _, verb := range []string{"register", "unregister", "start", "stop", "restart", "status", "list", "logs"} {
		tests = append(tests,
			struct {
				prog string
				args []string
				want string
			}{"gateway", []string{verb, "--help"}, "gateway " + verb + " "},
			struct {
				prog string
				args []string
				want string
			}{"gateway", []string{verb, "-h"}, "-timeout"},
			struct {
				prog string
				args []string
				want string
			}{"gateway", []string{"help", verb}, "gateway " + verb + " "})
	}
	for _, action := range []string{"render", "publish", "remove"} {
		tests = append(tests, struct {
			prog string
			args []string
			want string
		}{"gw-render", []string{action, "--help"}, "gw-render " + action + " -p NAME"})
	}
	for _, action := range []string{"write", "check", "clear"} {
		tests = append(tests, struct {
			prog string
			args []string
			want string
		}{"gw-mark", []string{action, "--help"}, "gw-mark " + action + " -p NAME"})
	}
	for _, tt := range tests {
		t.Run(tt.prog+" "+strings.Join(tt.args, " "), func(t *testing.T) {
			r := e.Run(tt.prog, tt.args...)
			assert.Equal(t, 0, r.Code, r.Stderr)
			assert.Empty(t, r.Stderr)
			assert.Contains(t, r.Stdout, tt.want)
		})
	}
	r := e.Run("gateway", "help", "bogus")
	assert.Equal(t, 2, r.Code)
	assert.Contains(t, r.Stderr, `unknown verb "bogus"`)
}

// gateway --version (and gateway version) prints its version, commit, Go version and the s6
// it runs on (on this host: Debian's s6 package), and never fails.
func TestVersion(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	for _, arg := range []string{"--version", "version"} {
		r := e.Run("gateway", arg)
		require.Equal(t, 0, r.Code, r.Stderr)
		assert.Regexp(t, `(?m)^gateway \S+$`, r.Stdout)
		assert.Regexp(t, `(?m)^commit: \S+$`, r.Stdout)
		assert.Regexp(t, `(?m)^go: go1\.\d+`, r.Stdout)
		assert.Regexp(t, `(?m)^s6: 2\.\d+(\.\d+)* \(`, r.Stdout, "the host's s6 is found")
	}
	e.Extra = []string{"S6_COMMAND_DIR=" + t.TempDir()}
	r := e.Run("gateway", "version")
	assert.Equal(t, 0, r.Code, "an s6 command directory without s6 is no failure: %s", r.Stderr)
}

// Each binary's doc page shows the same synopsis as its usage text (s6's pages drifted from
// their usage strings; ours must not), and documents exit code 2.
func TestUsageMatchesDocPages(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	for _, prog := range []string{"gateway", "gw-reconcile", "gw-render", "gw-mark", "gw-svscan"} {
		t.Run(prog, func(t *testing.T) {
			r := e.Run(prog, "--help")
			require.Equal(t, 0, r.Code, r.Stderr)
			doc, err := os.ReadFile(filepath.Join("..", "..", "docs", prog+".md"))
			require.NoError(t, err)
			n := 0
			for _, l := range strings.Split(r.Stdout, "\n") {
				l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "usage:"))
				if strings.HasPrefix(l, prog+" ") || l == prog {
					n++
					assert.Contains(t, string(doc), l, "docs/%s.md lacks the synopsis line", prog)
				}
			}
			assert.Positive(t, n, "usage has synopsis lines")
			assert.Regexp(t, regexp.MustCompile(`(?m)^\| *2 *\|`), string(doc))
		})
	}
}

// Without an s6-svscan on the scan directory a verb waits for one, within --timeout, then
// fails with one line that says what it waited for (in a container: "still booting").
func TestVerbsWaitForTheSupervisor(t *testing.T) {
	e := s6test.NewEnv(t, nil)
	before := s6test.Snapshot(t, e.Home, e.ScanDir)
	for _, args := range [][]string{{"start", "-p", "coder"}, {"register", "coder"}, {"list"}, {"status"}} {
		begin := time.Now()
		r := e.Run("gateway", append(args, "--timeout", "300ms")...)
		assert.Equal(t, 1, r.Code, "%v: %s", args, r.Stderr)
		assert.GreaterOrEqual(t, time.Since(begin), 300*time.Millisecond, "%v waited", args)
		assert.Equal(t, 1, strings.Count(r.Stderr, "\n"), "one line: %q", r.Stderr)
		assert.Contains(t, r.Stderr, "no s6-svscan answers on "+e.ScanDir)
	}
	assert.Equal(t, before, s6test.Snapshot(t, e.Home, e.ScanDir), "nothing written while waiting")

	// Started while the verb waits: the verb goes ahead.
	done := make(chan s6test.Result, 1)
	go func() { done <- e.Run("gateway", "register", "coder", "--timeout", "30s") }()
	e.Start()
	r := <-done
	assert.Equal(t, 0, r.Code, r.Stderr)
	assert.DirExists(t, e.Slot("coder"))
}
