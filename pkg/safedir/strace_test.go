package safedir_test

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/internal/strace"
	"github.com/s6gate/s6gate/pkg/safedir"
)

// helperEnv switches the test binary into a helper process that performs one WriteFile, so
// that the write can be traced on its own (see TestMain).
const helperEnv = "S6GATE_SAFEDIR_WRITE_HELPER"

func TestMain(m *testing.M) {
	if target := os.Getenv(helperEnv); target != "" {
		os.Exit(writeHelper(target, os.Getenv(helperEnv+"_DATA")))
	}
	os.Exit(m.Run())
}

// writeHelper is the helper process: WriteFile(base(target)) inside dir(target).
func writeHelper(target, data string) int {
	d, err := safedir.Open(filepath.Dir(target), "")
	if err == nil {
		err = d.WriteFile(filepath.Base(target), []byte(data), 0o640)
		d.Close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "write helper:", err)
		return 1
	}
	return 0
}

// traceWrite runs one WriteFile(dir/name, data) in a helper process under strace and returns
// the calls it made on files in dir.
func traceWrite(t *testing.T, dir, name, data string) strace.Calls {
	t.Helper()
	exe, err := os.Executable()
	require.NoError(t, err)
	tr := strace.Command(t, []string{"openat", "openat2", "open", "creat", "write", "pwrite64",
		"fsync", "fdatasync", "rename", "renameat", "renameat2", "truncate", "ftruncate"},
		exe, "-test.run=^$")
	tr.Cmd.Env = append(os.Environ(), helperEnv+"="+filepath.Join(dir, name), helperEnv+"_DATA="+data)
	out, err := tr.Cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	in := func(p string) bool { return p == dir || filepath.Dir(p) == dir }
	return tr.Calls(t, 10*time.Second).Filter(func(c strace.Call) bool {
		if from, to, ok := c.Renames(); ok {
			return in(from) || in(to)
		}
		switch c.Name {
		case "openat", "openat2", "open", "creat":
			return in(c.RetPath) || (len(c.Args) > 1 && in(c.At(1)))
		case "truncate":
			return in(c.Args[0].Str)
		}
		return in(c.FDPath())
	})
}

// TestWriteFileIsAtomicAndDurable pins SPEC §3's write protocol as the kernel sees it: a temp
// file .NAME<digits> is created, written and fsynced, then renamed onto NAME, then the
// directory is fsynced; NAME itself is never opened for writing, truncated or written.
func TestWriteFileIsAtomicAndDurable(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, target string)
	}{
		{name: "new file"},
		{name: "replacing a file", setup: func(t *testing.T, target string) {
			require.NoError(t, os.WriteFile(target, []byte(`{"old":true}`), 0o640))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The kernel reports resolved paths; so must the test.
			dir, err := filepath.EvalSymlinks(t.TempDir())
			require.NoError(t, err)
			const name, data = "gateway_state.json", `{"gateway_state":"running"}` + "\n"
			target := filepath.Join(dir, name)
			if tt.setup != nil {
				tt.setup(t, target)
			}

			calls := traceWrite(t, dir, name, data)
			log := calls.String()

			got, err := os.ReadFile(target)
			require.NoError(t, err)
			assert.Equal(t, data, string(got))
			assert.Equal(t, []string{data}, calls.Replacements(target), "exactly one document renamed onto %s\n%s", name, log)

			// NAME is never opened for writing, truncated or written in place.
			for _, c := range calls {
				switch c.Name {
				case "openat", "openat2", "open", "creat":
					if c.RetPath == target || (len(c.Args) > 1 && c.At(1) == target) {
						assert.NotRegexp(t, `O_WRONLY|O_RDWR|O_TRUNC|O_CREAT`, c.Raw(), "%s opened for writing\n%s", name, log)
					}
				case "write", "pwrite64", "ftruncate", "fsync", "fdatasync":
					assert.NotEqual(t, target, c.FDPath(), "%s written in place: %s\n%s", name, c, log)
				case "truncate":
					assert.NotEqual(t, target, c.Args[0].Str, "%s truncated\n%s", name, log)
				}
			}

			// The order: create temp → write → fsync(temp) → rename temp→NAME → fsync(dir).
			tempRE := regexp.MustCompile(`^` + regexp.QuoteMeta(filepath.Join(dir, "."+name)) + `[0-9]+$`)
			steps := []struct {
				what string
				is   func(c strace.Call) bool
			}{
				{"create a temp file ." + name + "<digits>", func(c strace.Call) bool {
					return strings.HasPrefix(c.Name, "open") && c.OK() && tempRE.MatchString(c.RetPath) &&
						strings.Contains(c.Raw(), "O_CREAT") && strings.Contains(c.Raw(), "O_EXCL")
				}},
				{"write the data to the temp file", func(c strace.Call) bool {
					return c.Name == "write" && c.OK() && tempRE.MatchString(c.FDPath()) && c.Args[1].Str == data
				}},
				{"fsync the temp file", func(c strace.Call) bool {
					return (c.Name == "fsync" || c.Name == "fdatasync") && c.OK() && tempRE.MatchString(c.FDPath())
				}},
				{"rename the temp file onto " + name, func(c strace.Call) bool {
					from, to, ok := c.Renames()
					return ok && tempRE.MatchString(from) && to == target
				}},
				{"fsync the directory", func(c strace.Call) bool {
					return c.Name == "fsync" && c.OK() && c.FDPath() == dir
				}},
			}
			i := 0
			for _, step := range steps {
				for i < len(calls) && !step.is(calls[i]) {
					i++
				}
				if !assert.Less(t, i, len(calls), "missing, or out of order: %s\n%s", step.what, log) {
					return
				}
				i++
			}
		})
	}
}
