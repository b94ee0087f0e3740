package slot

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/internal/s6test"
	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/profile"
)

// TestMain doubles as a fake gateway binary: with SLOT_TEST_RECORD set it writes its
// environment and arguments (NUL-separated, with \x01 between them) to that file and exits.
func TestMain(m *testing.M) {
	if out := os.Getenv("SLOT_TEST_RECORD"); out != "" {
		rec := strings.Join(os.Environ(), "\x00") + "\x00\x01\x00" + strings.Join(os.Args[1:], "\x00") + "\x00"
		if err := os.WriteFile(out, []byte(rec), 0o600); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	s6test.Main(m)
}

func spec(p string) Spec {
	return Spec{Profile: p, Home: "/opt/data", CommandDir: "/command", User: "gateway", Bin: "/usr/local/bin/gateway"}
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	st, err := os.Lstat(p)
	require.NoError(t, err)
	return st.Mode()
}

func TestRunScript(t *testing.T) {
	run := runScript(spec("coder"))
	assert.True(t, strings.HasPrefix(run, "#!/command/with-contenv /bin/sh\n"))
	assert.Contains(t, run, "if [ \"$euid\" = 0 ] && [ \"$(id -u 'gateway')\" != 0 ]; then\n  exec '/command/s6-setuidgid' 'gateway' \"$0\"")
	assert.Less(t, strings.Index(run, "done < /proc/self/status"), strings.Index(run, "if [ \"$euid\" = 0 ]"), "$euid is read before it is used")
	assert.Contains(t, run, "exec /usr/bin/env \\\n  'HOME=/opt/data' \\\n")
	assert.Contains(t, run, "  'GATEWAY_NOTIFY_FD=3' \\\n  '/usr/local/bin/gateway' run -p 'coder' --replace\n")
	assert.Less(t, strings.Index(run, "s6-setuidgid"), strings.Index(run, "HOME="), "privileges are dropped before anything from the profile is used")

	s := spec("coder")
	s.Command = []string{"sh", "-c", "echo 'hi'; exit 3"}
	assert.Contains(t, runScript(s), `--replace -- 'sh' '-c' 'echo '"'"'hi'"'"'; exit 3'`)
}

// The rendered ./run, run by a real /bin/sh, hands the gateway exactly the profile's
// environment and command: nothing is expanded or executed, and names the shell gives a
// meaning of its own (OPTIND must be a number in dash, IFS splits words) change nothing.
func TestRunScriptHandsTheEnvironmentOver(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	bin := os.Args[0] // this test binary, as a gateway that records what it was given (TestMain)
	me, err := user.Current()
	require.NoError(t, err)
	s := Spec{
		Profile: "p", Home: "/opt/data", User: me.Username, Bin: bin,
		CommandDir: s6test.CommandDir(t, map[string]string{"with-contenv": s6test.Binaries(t)["with-contenv"]}),
		Env: map[string]string{
			"FOO": "bar baz", "QUOTED": "a'b\"c", "INJECT": "$(touch " + dir + "/pwned)`id`;rm -rf /",
			"NL": "a\nb", "OPTIND": "not a number", "IFS": "x", "EMPTY": "", "HOME": "/elsewhere",
		},
		Command: []string{"sh", "-c", "echo 'hi'; exit $1", "--", "-n", ""},
	}
	run := filepath.Join(dir, "run")
	require.NoError(t, os.WriteFile(run, []byte(runScript(s)), 0o755))
	cmd := exec.Command(run)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "SLOT_TEST_RECORD=" + out}
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, string(b))

	got, err := os.ReadFile(out)
	require.NoError(t, err)
	envPart, argPart, ok := strings.Cut(string(got), "\x01\x00")
	require.True(t, ok)
	env := map[string]string{}
	for _, kv := range strings.Split(strings.TrimSuffix(envPart, "\x00"), "\x00") {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	for k, v := range s.Env {
		assert.Equal(t, v, env[k], k)
	}
	assert.Equal(t, "/opt/data", env["GATEWAY_HOME"])
	assert.Equal(t, "3", env["GATEWAY_NOTIFY_FD"])
	args := strings.Split(strings.TrimSuffix(argPart, "\x00"), "\x00")
	assert.Equal(t, append([]string{"run", "-p", "p", "--replace", "--"}, s.Command...), args)
	assert.NoFileExists(t, filepath.Join(dir, "pwned"), "nothing from a value was executed")
}

func TestQuoteRoundTrip(t *testing.T) {
	for _, v := range []string{"", "plain", "a b", "'", "''", `"`, `\`, "$HOME", "a\tb\nc", "*", "-n"} {
		out, err := exec.Command("/bin/sh", "-c", "printf '%s' "+quote(v)).Output()
		require.NoError(t, err, v)
		assert.Equal(t, v, string(out))
	}
}

func TestLogRunScript(t *testing.T) {
	log := logRunScript(spec("coder"))
	assert.Contains(t, log, "$GATEWAY_HOME", "log dir is computed at run time")
	assert.Contains(t, log, "logs/gateways/coder")
	assert.NotContains(t, log, "/opt/data/logs/gateways/coder", "no baked absolute log path")
	assert.Contains(t, log, "'/command/s6-log' 1 n10 s1000000 T \"$dir\"", "`1` forwards lines to stdout before the file copy")
	assert.Contains(t, log, "'/command/s6-setuidgid' 'gateway'")
}

func TestFinishScriptMaps78To125(t *testing.T) {
	p := filepath.Join(t.TempDir(), "finish")
	require.NoError(t, os.WriteFile(p, []byte(finishScript(spec("x"))), 0o755))
	for arg, want := range map[string]int{"78": 125, "0": 0, "1": 0, "256": 0} {
		err := exec.Command(p, arg, "15").Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else {
			require.NoError(t, err)
		}
		assert.Equal(t, want, code, "finish %s", arg)
	}
}

func TestPublishRendersCompleteSlot(t *testing.T) {
	scan := t.TempDir()
	s := spec("coder")
	s.Down = true
	p, err := Publish(scan, s)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(scan, "gateway-coder"), p)

	b, err := os.ReadFile(filepath.Join(p, "type"))
	require.NoError(t, err)
	assert.Equal(t, "longrun", strings.TrimSpace(string(b)))
	for _, f := range []string{"finish", "log/run"} {
		assert.Equal(t, os.FileMode(0o755), mode(t, filepath.Join(p, f)).Perm(), f)
	}
	assert.Equal(t, os.FileMode(0o750), mode(t, filepath.Join(p, "run")).Perm(), "run may hold secrets")
	assert.FileExists(t, filepath.Join(p, "down"))
	assert.FileExists(t, filepath.Join(p, "notification-fd"))
	assert.NoDirExists(t, filepath.Join(p, "supervise"), "s6-supervise makes its own supervise/ as the service user")

	entries, err := os.ReadDir(scan)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no staging directory left behind")
}

func TestPublishRejectsDuplicateAndBadNames(t *testing.T) {
	scan := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(scan, "gateway-coder"), 0o755))
	_, err := Publish(scan, spec("coder"))
	var are *AlreadyRegisteredError
	require.ErrorAs(t, err, &are)
	assert.Contains(t, err.Error(), "already registered")
	entries, _ := os.ReadDir(scan)
	assert.Len(t, entries, 1, "staging removed after the refusal")

	_, err = Publish(scan, spec("Bad/Name"))
	require.Error(t, err)
	assert.Equal(t, exitcode.Usage, exitcode.Of(err))
	s := spec("ok")
	s.Env = map[string]string{"BAD-NAME": "x"}
	_, err = Publish(scan, s)
	assert.Equal(t, exitcode.Usage, exitcode.Of(err))
	entries, _ = os.ReadDir(scan)
	assert.Len(t, entries, 1, "bad input changes nothing on disk")
}

func TestListAndCheck(t *testing.T) {
	scan := t.TempDir()
	for _, d := range []string{"gateway-coder", "gateway-assistant", "gateway-writer", "s6-linux-init-shutdownd", ".lock", ".gateway-x.new-1", "gateway-Bad"} {
		require.NoError(t, os.Mkdir(filepath.Join(scan, d), 0o755))
	}
	require.NoError(t, os.Symlink(t.TempDir(), filepath.Join(scan, "gateway-linked")))
	require.NoError(t, os.WriteFile(filepath.Join(scan, "gateway-file"), nil, 0o644))

	got, err := List(scan)
	require.NoError(t, err)
	assert.Equal(t, []string{"assistant", "coder", "writer"}, got)

	got, err = List(filepath.Join(scan, "missing"))
	require.NoError(t, err)
	assert.Empty(t, got)

	assert.NoError(t, Check(scan, "coder"))
	err = Check(scan, "typo")
	var nre *NotRegisteredError
	require.ErrorAs(t, err, &nre)
	assert.Equal(t, "typo", nre.Profile)
	assert.Equal(t, "gateway-typo", nre.Service)
	assert.Contains(t, err.Error(), "'typo'")
	assert.Contains(t, err.Error(), "gateway register typo")
}

func TestProfileOf(t *testing.T) {
	p, ok := profileOf("gateway-coder")
	assert.True(t, ok)
	assert.Equal(t, "coder", p)
	p, ok = profileOf("not-prefixed")
	assert.False(t, ok)
	assert.Equal(t, "not-prefixed", p, "an unprefixed name is kept verbatim")
}

// Replace swaps a slot for a new rendering in one rename; Unpublish takes it out. Neither
// leaves a private directory behind, and a missing slot is not an error.
func TestReplaceAndUnpublish(t *testing.T) {
	scan := t.TempDir()
	_, err := Publish(scan, spec("coder"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(scan, "gateway-coder", "junk"), nil, 0o644))
	s := spec("coder")
	s.Down = true
	require.NoError(t, Replace(scan, s))
	assert.FileExists(t, filepath.Join(scan, "gateway-coder", "down"))
	assert.NoFileExists(t, filepath.Join(scan, "gateway-coder", "junk"), "rebuilt from scratch")
	require.NoError(t, Replace(scan, spec("fresh")), "replacing nothing publishes")
	entries, err := os.ReadDir(scan)
	require.NoError(t, err)
	assert.Len(t, entries, 2, "no private directory left behind")

	require.NoError(t, Unpublish(scan, "coder"))
	assert.NoDirExists(t, filepath.Join(scan, "gateway-coder"))
	require.NoError(t, Unpublish(scan, "absent"))
	entries, err = os.ReadDir(scan)
	require.NoError(t, err)
	assert.Len(t, entries, 1)
}

// Every name the validator accepts fits: the slot name is at most 255 bytes, and the private
// staging and trash names do not grow with the profile name.
func TestLongestNameWorks(t *testing.T) {
	scan := t.TempDir()
	long := strings.Repeat("x", profile.MaxNameLen)
	_, err := Publish(scan, spec(long))
	require.NoError(t, err)
	assert.DirExists(t, filepath.Join(scan, "gateway-"+long))
	require.NoError(t, Replace(scan, spec(long)))
	require.NoError(t, Unpublish(scan, long))
	assert.NoDirExists(t, filepath.Join(scan, "gateway-"+long))
}

// Fault injection: a scan directory on a full file system. Publishing fails cleanly — an
// error, no slot, no staging directory left behind.
func TestPublishOnAFullDiskLeavesNothing(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root; this test must run there")
		}
		t.Skip("needs root to mount a small tmpfs")
	}
	scan := t.TempDir()
	require.NoError(t, unix.Mount("tmpfs", scan, "tmpfs", 0, "size=64k"))
	t.Cleanup(func() { _ = unix.Unmount(scan, unix.MNT_DETACH) })
	filler, err := os.Create(filepath.Join(scan, "filler"))
	require.NoError(t, err)
	buf := make([]byte, 4096)
	for {
		if _, err := filler.Write(buf); err != nil {
			break
		}
	}
	require.NoError(t, filler.Close())

	_, err = Publish(scan, spec("coder"))
	require.Error(t, err)
	assert.ErrorIs(t, err, syscall.ENOSPC)
	entries, err := os.ReadDir(scan)
	require.NoError(t, err)
	require.Len(t, entries, 1, "only the filler: no slot and no staging directory")
	assert.Equal(t, "filler", entries[0].Name())
}

// A staging directory swapped for a symlink mid-render is never written through: Render works
// on a descriptor, and the swap makes it fail instead.
func TestRenderRefusesASymlinkedDirectory(t *testing.T) {
	base := t.TempDir()
	victim := t.TempDir()
	link := filepath.Join(base, "staging")
	require.NoError(t, os.Symlink(victim, link))
	require.Error(t, Render(link, spec("coder")))
	entries, err := os.ReadDir(victim)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing written through the symlink")
}

// Exec supervision: the mode comes from profile.json, else the image default, only for a
// profile with a command; the slot tells its gateway the mode, bounds the drain by s6's
// timeout-kill, and its finish decides an unmarked SIGTERM or SIGINT death in the shell alone.
func TestExecSupervisionSlot(t *testing.T) {
	s := config.Settings{Home: "/opt/data", CommandDir: "/command", User: "gateway", Bin: "/usr/local/bin/gateway", DrainTimeout: 1500 * time.Millisecond, Supervision: "exec"}
	assert.Equal(t, "", NewSpec(s, "idle", profile.Config{}, false).Supervision, "the idle gateway is its own process")
	cmd := profile.Config{Command: []string{"sleep", "1"}}
	assert.Equal(t, "exec", NewSpec(s, "x", cmd, false).Supervision, "image default")
	cmd.Policy.Supervision = "wrapper"
	assert.Equal(t, "wrapper", NewSpec(s, "x", cmd, false).Supervision, "the profile wins")
	assert.Contains(t, runScript(NewSpec(s, "x", cmd, false)), "'GATEWAY_SUPERVISION=wrapper'", "the slot overrides the image default")
	assert.Equal(t, int64(killTimeoutMS), killTimeout(NewSpec(s, "x", cmd, false)))

	cmd.Policy.Supervision = "exec"
	spec := NewSpec(s, "x", cmd, false)
	assert.Equal(t, int64(1500), killTimeout(spec))
	assert.Contains(t, runScript(spec), "'GATEWAY_SUPERVISION=exec'")

	// The finish script: an unmarked SIGTERM or SIGINT death exits 0 without starting the
	// gateway binary; anything else runs `gateway finish` with s6-supervise's arguments.
	dir := t.TempDir()
	spec.Home = dir
	spec.Bin = filepath.Join(dir, "fake-gateway")
	require.NoError(t, os.WriteFile(spec.Bin, []byte("#!/bin/sh\necho \"$GATEWAY_HOME $*\" > \"$GATEWAY_HOME/called\"\nexit 7\n"), 0o755))
	finish := filepath.Join(dir, "finish")
	require.NoError(t, os.WriteFile(finish, []byte(finishScript(spec)), 0o755))
	home := filepath.Join(dir, "profiles", "x")
	require.NoError(t, os.MkdirAll(home, 0o755))
	runFinish := func(args ...string) int {
		_ = os.Remove(filepath.Join(dir, "called"))
		err := exec.Command(finish, args...).Run()
		if ee, ok := err.(*exec.ExitError); ok {
			return ee.ExitCode()
		}
		require.NoError(t, err)
		return 0
	}
	for _, args := range [][]string{{"256", "15", "gateway-x"}, {"256", "2", "gateway-x"}} {
		assert.Equal(t, 0, runFinish(args...), args)
		assert.NoFileExists(t, filepath.Join(dir, "called"), "no Go process for an unmarked stop: %v", args)
	}
	for _, args := range [][]string{{"0", "0", "gateway-x"}, {"256", "9", "gateway-x"}, {"143", "0", "gateway-x"}} {
		assert.Equal(t, 7, runFinish(args...), args)
		b, err := os.ReadFile(filepath.Join(dir, "called"))
		require.NoError(t, err, args)
		assert.Equal(t, dir+" finish -p x -- "+strings.Join(args, " ")+"\n", string(b))
	}
	require.NoError(t, os.WriteFile(filepath.Join(home, ".gateway-planned-stop.json"), []byte("{}"), 0o644))
	assert.Equal(t, 7, runFinish("256", "15", "gateway-x"), "a marker is evaluated by gateway finish")
	assert.FileExists(t, filepath.Join(dir, "called"))
}
