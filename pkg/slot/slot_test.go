package slot

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
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
	"github.com/s6gate/s6gate/pkg/safedir"
)

// TestMain doubles as a fake gateway binary: with SLOT_TEST_RECORD set it applies its
// --setenv arguments as `gateway run` does (ApplySetenv), then writes its environment to that
// file and its arguments to that file + ".args" (each NUL-terminated) and exits (2 if
// ApplySetenv refused, after writing its error to the first file).
func TestMain(m *testing.M) {
	if out := os.Getenv("SLOT_TEST_RECORD"); out != "" {
		var setenv []string
		for i, a := range os.Args[1:] {
			if a == "--" {
				break
			}
			if a == "--setenv" && i+2 < len(os.Args) {
				setenv = append(setenv, os.Args[i+2])
			}
		}
		if err := ApplySetenv(setenv); err != nil {
			_ = os.WriteFile(out, []byte(err.Error()), 0o600)
			os.Exit(exitcode.Of(err))
		}
		if os.WriteFile(out, []byte(strings.Join(os.Environ(), "\x00")+"\x00"), 0o600) != nil ||
			os.WriteFile(out+".args", []byte(strings.Join(os.Args[1:], "\x00")+"\x00"), 0o600) != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	s6test.Main(m)
}

// record is what the fake gateway (TestMain) wrote: its environment, in order, and arguments.
func record(t *testing.T, out string) (environ, args []string) {
	t.Helper()
	envPart, err := os.ReadFile(out)
	require.NoError(t, err)
	argPart, err := os.ReadFile(out + ".args")
	require.NoError(t, err)
	return strings.Split(strings.TrimSuffix(string(envPart), "\x00"), "\x00"), strings.Split(strings.TrimSuffix(string(argPart), "\x00"), "\x00")
}

func envMap(environ []string) map[string]string {
	m := map[string]string{}
	for _, kv := range environ {
		k, v, _ := strings.Cut(kv, "=")
		if _, dup := m[k]; !dup {
			m[k] = v
		}
	}
	return m
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
	assert.True(t, strings.HasPrefix(run, "#!/bin/sh -p\n"), "no with-contenv in the #! line: the tree's environment is the container's")
	contenv := "[ \"$S6GATE_CONTENV\" = 1 ] || [ \"$1\" = contenv ] || exec '/command/with-contenv' \"$0\" contenv\n"
	assert.Contains(t, run, contenv)
	assert.Contains(t, run, "if [ \"$euid\" = 0 ] && [ \"$(id -u 'gateway')\" != 0 ]; then\n  exec '/command/s6-setuidgid' 'gateway' \"$0\" contenv\n")
	assert.Less(t, strings.Index(run, contenv), strings.Index(run, "euid="), "the container environment is loaded first, as the #! line did")
	assert.Less(t, strings.Index(run, "done < /proc/self/status"), strings.Index(run, "if [ \"$euid\" = 0 ]"), "$euid is read before it is used")
	assert.Contains(t, run, "unset S6GATE_CONTENV\n")
	assert.Contains(t, run, "S6GATE_GOMAXPROCS=${GOMAXPROCS--}\nGOMAXPROCS=1\nexport S6GATE_GOMAXPROCS GOMAXPROCS\nexec '/usr/local/bin/gateway' run \\\n  --setenv 'HOME=/opt/data' \\\n",
		"gateway run starts on one P and gets the environment's GOMAXPROCS to give back")
	assert.Contains(t, run, "  --setenv 'GATEWAY_HOME=/opt/data' \\\n  --setenv 'GATEWAY_NOTIFY_FD=3' \\\n  --setenv 'GATEWAY_SUPERVISION=wrapper' \\\n  -p 'coder' --replace\n",
		"the idle gateway's slot says wrapper too: gateway run never takes the image default for a slot whose finish is the wrapper's")
	assert.NotContains(t, run, "/usr/bin/env", "no env(1) exec")

	s := spec("coder")
	s.Command = []string{"sh", "-c", "echo 'hi'; exit 3"}
	s.Env = map[string]string{"TOKEN": "s3cret", "A": "1"}
	run = runScript(s)
	assert.Contains(t, run, `--replace -- 'sh' '-c' 'echo '"'"'hi'"'"'; exit 3'`)
	assert.Contains(t, run, "export S6GATE_SETENV_A='1'\nexport S6GATE_SETENV_TOKEN='s3cret'\n")
	assert.Contains(t, run, "--setenv 'HOME=/opt/data' \\\n  --setenv 'A' \\\n  --setenv 'TOKEN' \\\n  --setenv 'GATEWAY_HOME=/opt/data'")
	assert.Equal(t, 1, strings.Count(run, "s3cret"), "a profile value is never on the gateway's command line")
	assert.Less(t, strings.Index(run, "s6-setuidgid"), strings.Index(run, "s3cret"), "privileges are dropped before anything from the profile is used")
}

// The rendered ./run, run by a real /bin/sh, hands the gateway exactly the profile's
// environment and command: nothing is expanded or executed, and names the shell gives a
// meaning of its own (OPTIND must be a number in dash, IFS splits words) change nothing.
// The profile may override HOME, not the gateway's own variables; no value is an argument.
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
			"PATH": dir + "/nothing", "GATEWAY_HOME": "/not/ours", "GATEWAY_NOTIFY_FD": "9",
			"S6GATE_SETENV_FOO": "a carrier's name", "S6GATE_CONTENV": "1",
		},
		Command: []string{"sh", "-c", "echo 'hi'; exit $1", "--", "-n", ""},
	}
	run := filepath.Join(dir, "run")
	require.NoError(t, os.WriteFile(run, []byte(runScript(s)), 0o755))
	cmd := exec.Command(run)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "SLOT_TEST_RECORD=" + out}
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, string(b))

	environ, args := record(t, out)
	env := envMap(environ)
	for k, v := range s.Env {
		if k != "GATEWAY_HOME" && k != "GATEWAY_NOTIFY_FD" {
			assert.Equal(t, v, env[k], k)
		}
	}
	assert.Equal(t, "/opt/data", env["GATEWAY_HOME"], "the profile cannot move the data root")
	assert.Equal(t, "3", env["GATEWAY_NOTIFY_FD"])
	for _, kv := range environ {
		k, _, _ := strings.Cut(kv, "=")
		assert.False(t, strings.HasPrefix(k, SetenvPrefix) && k != "S6GATE_SETENV_FOO", "carrier %s left behind", k)
	}
	n := 0
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--setenv" {
			n++
		}
		for k, v := range s.Env {
			if len(v) > 2 {
				assert.NotContains(t, a, v, "the value of %s is an argument", k)
			}
		}
	}
	assert.Equal(t, 4+len(s.Env), n, "one --setenv per variable, and the mode: %q", args)
	dd := slices.Index(args, "--")
	require.Positive(t, dd, "%q", args)
	assert.Equal(t, []string{"-p", "p", "--replace"}, args[dd-3:dd])
	assert.Equal(t, s.Command, args[dd+1:])
	assert.Equal(t, "run", args[0])
	assert.NoFileExists(t, filepath.Join(dir, "pwned"), "nothing from a value was executed")
}

// --setenv gives the gateway exactly the environment `env NAME=VALUE... gateway` gave it: same
// variables, values and order (a variable already set keeps its place, a new one is appended,
// the last of a name wins), carried values included; the carriers are gone.
func TestApplySetenvIsEnv1(t *testing.T) {
	bin := os.Args[0]
	dir := t.TempDir()
	base := []string{"PATH=/usr/bin:/bin", "HOME=/root", "KEEP=k", "TOKEN=old"}
	type setting struct{ name, value string }
	// What the run script hands over: HOME, the profile's (TOKEN carried, EMPTY carried,
	// HOME overridden by the profile), then the gateway's own.
	settings := []setting{{"HOME", "/opt/data"}, {"EMPTY", ""}, {"HOME", "/elsewhere"}, {"NEW", "a=b\nc"},
		{"TOKEN", "s3cret"}, {"GATEWAY_HOME", "/opt/data"}, {"GATEWAY_NOTIFY_FD", "3"}}
	carried := map[string]bool{"TOKEN": true, "EMPTY": true}

	refOut, gotOut := filepath.Join(dir, "ref"), filepath.Join(dir, "got")
	envArgs := []string{}
	for _, s := range settings {
		envArgs = append(envArgs, s.name+"="+s.value)
	}
	ref := exec.Command("/usr/bin/env", append(envArgs, bin, "run", "-p", "p")...)
	ref.Env = append(base, "SLOT_TEST_RECORD="+refOut)
	out, err := ref.CombinedOutput()
	require.NoError(t, err, string(out))

	gwArgs := []string{"run"}
	carriers := []string{}
	for _, s := range settings {
		if carried[s.name] {
			gwArgs = append(gwArgs, "--setenv", s.name)
			carriers = append(carriers, SetenvPrefix+s.name+"="+s.value)
		} else {
			gwArgs = append(gwArgs, "--setenv", s.name+"="+s.value)
		}
	}
	got := exec.Command(bin, append(gwArgs, "-p", "p")...)
	got.Env = append(append(slices.Clone(base), carriers...), "SLOT_TEST_RECORD="+gotOut)
	out, err = got.CombinedOutput()
	require.NoError(t, err, string(out))

	refEnv, _ := record(t, refOut)
	gotEnv, _ := record(t, gotOut)
	for _, env := range [][]string{refEnv, gotEnv} {
		i := slices.IndexFunc(env, func(kv string) bool { return strings.HasPrefix(kv, "SLOT_TEST_RECORD=") })
		require.GreaterOrEqual(t, i, 0)
		env[i] = "SLOT_TEST_RECORD=…" // the one difference: where each wrote its record
	}
	assert.Equal(t, refEnv, gotEnv)
	assert.Equal(t, "/elsewhere", envMap(gotEnv)["HOME"])
	assert.Equal(t, "s3cret", envMap(gotEnv)["TOKEN"])
}

// A bad --setenv is a usage error with a one-line message, and nothing is applied.
func TestApplySetenvRefusesBadNamesAndMissingCarriers(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"OK=1", "BAD-NAME=x"}, `"BAD-NAME"`},
		{[]string{"=x"}, `""`},
		{[]string{"1A=x"}, `"1A"`},
		{[]string{"OK=1", "MISSING"}, "S6GATE_SETENV_MISSING is not set"},
	} {
		err := ApplySetenv(tc.args)
		require.Error(t, err, "%q", tc.args)
		assert.Equal(t, exitcode.Usage, exitcode.Of(err), "%q", tc.args)
		assert.Contains(t, err.Error(), tc.msg)
		assert.NotContains(t, err.Error(), "\n")
		_, set := os.LookupEnv("OK")
		assert.False(t, set, "nothing applied before the refusal: %q", tc.args)
	}
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
	assert.Contains(t, log, "'/command/s6-log' T 1 n10 s1000000 T \"$dir\"", "`T 1` forwards every line, stamped, to stdout; `T DIR` stamps the file copy")
	assert.Contains(t, log, "'/command/s6-setuidgid' 'gateway'")
	assert.True(t, strings.HasPrefix(log, "#!/bin/sh\n"))
	assert.Contains(t, log, "[ \"$S6GATE_CONTENV\" = 1 ] || [ \"$1\" = contenv ] || exec '/command/with-contenv' \"$0\" contenv\n")
	assert.Less(t, strings.Index(log, "exec '/command/with-contenv'"), strings.Index(log, "GATEWAY_HOME"), "$GATEWAY_HOME comes from the container environment")
}

// Under gw-svscan an isolated slot's scripts run with the profile's uid as the real uid and
// the service user as the effective one: their shell must keep the effective uid (dash and
// bash reset it to the real one unless -p), or gateway run could not write the profile's state.
func TestScriptsKeepTheServiceUserAsTheirEffectiveUID(t *testing.T) {
	s6test.RequireRoot(t)
	dir := t.TempDir()
	require.NoError(t, os.Chmod(filepath.Dir(dir), 0o755))
	require.NoError(t, os.Chmod(dir, 0o777))
	script := filepath.Join(dir, "run")
	out := filepath.Join(dir, "out")
	for name, body := range map[string]string{
		"run":    runScript(spec("coder")),
		"finish": finishScript(spec("coder")),
	} {
		first, _, _ := strings.Cut(body, "\n")
		require.NoError(t, os.WriteFile(script, []byte(first+"\nexec /usr/bin/id -u > "+out+"\n"), 0o755))
		// Real uid 20001, effective uid 10000, as gw-svscan starts an isolated supervisor.
		cmd := exec.Command("setpriv", "--ruid", "20001", "--euid", "10000", "--rgid", "20001", "--egid", "10000", "--clear-groups", script)
		outb, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s: %s", name, outb)
		got, err := os.ReadFile(out)
		require.NoError(t, err)
		assert.Equal(t, "10000\n", string(got), "%s: %q keeps the effective uid", name, first)
	}
}

// An isolated slot names its profile's uid for gw-svscan; a slot without one has no file.
func TestRenderWritesTheProfilesUID(t *testing.T) {
	dir := t.TempDir()
	s := spec("coder")
	s.Home = t.TempDir()
	s.UID = 20042
	require.NoError(t, os.Mkdir(filepath.Join(dir, "a"), 0o755))
	require.NoError(t, Render(filepath.Join(dir, "a"), s))
	b, err := os.ReadFile(filepath.Join(dir, "a", UIDFile))
	require.NoError(t, err)
	assert.Equal(t, "20042\n", string(b))
	assert.Equal(t, os.FileMode(0o644), mode(t, filepath.Join(dir, "a", UIDFile)))
	assert.Contains(t, runScript(s), "--setenv 'HOME="+s.Home+"/profiles/coder/home'", "HOME is the command's own directory")

	s.UID = 0
	assert.Contains(t, runScript(s), "--setenv 'HOME="+s.Home+"' ", "no uid of its own: HOME is the data root")
	require.NoError(t, os.Mkdir(filepath.Join(dir, "b"), 0o755))
	require.NoError(t, Render(filepath.Join(dir, "b"), s))
	assert.NoFileExists(t, filepath.Join(dir, "b", UIDFile))
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
	assert.Contains(t, runScript(NewSpec(s, "idle", profile.Config{}, false)), "'GATEWAY_SUPERVISION=wrapper'",
		"a command added to the idle gateway's profile.json later must not be exec'd under the wrapper's finish")
	cmd := profile.Config{Command: []string{"sleep", "1"}}
	assert.Equal(t, "exec", NewSpec(s, "x", cmd, false).Supervision, "image default")
	cmd.Policy.Supervision = "wrapper"
	assert.Equal(t, "wrapper", NewSpec(s, "x", cmd, false).Supervision, "the profile wins")
	assert.Contains(t, runScript(NewSpec(s, "x", cmd, false)), "'GATEWAY_SUPERVISION=wrapper'", "the slot overrides the image default")
	assert.Equal(t, int64(killTimeoutMS), killTimeout(NewSpec(s, "x", cmd, false)))

	cmd.Policy.Supervision = "exec"
	spec := NewSpec(s, "x", cmd, false)
	assert.Equal(t, int64(2500), killTimeout(spec), "the drain, and a second for a start that fell back to the wrapper to record its decision")
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

// With a template, the files every slot has alike are one inode with exact modes and the
// same content as a slot rendered on its own; the rest is each slot's own. Closing the
// template leaves the slots whole and nothing of it in the scan directory.
func TestReplaceInLinksTheSharedFilesOfATemplate(t *testing.T) {
	scanDir := t.TempDir()
	scan, err := safedir.Open(scanDir, "")
	require.NoError(t, err)
	defer scan.Close()
	tmpl, err := NewTemplate(scan)
	require.NoError(t, err)
	a, b := spec("a"), spec("b")
	a.Down, b.Down = true, true
	require.NoError(t, ReplaceIn(scan, a, tmpl))
	require.NoError(t, ReplaceIn(scan, b, tmpl))
	require.NoError(t, tmpl.Close())
	plain := t.TempDir()
	_, err = Publish(plain, spec("c"))
	require.NoError(t, err)

	ino := func(p string) (uint64, uint64) {
		var st unix.Stat_t
		require.NoError(t, unix.Lstat(p, &st))
		return st.Ino, st.Nlink
	}
	for _, f := range []string{"type", "notification-fd", "timeout-kill", "down"} {
		ia, na := ino(filepath.Join(scanDir, "gateway-a", f))
		ib, _ := ino(filepath.Join(scanDir, "gateway-b", f))
		assert.Equal(t, ia, ib, "%s: one inode", f)
		assert.EqualValues(t, 2, na, "%s: two links, the template's gone", f)
		assert.Equal(t, os.FileMode(0o644), mode(t, filepath.Join(scanDir, "gateway-a", f)).Perm(), f)
		if f != "down" {
			want, err := os.ReadFile(filepath.Join(plain, "gateway-c", f))
			require.NoError(t, err)
			got, err := os.ReadFile(filepath.Join(scanDir, "gateway-a", f))
			require.NoError(t, err)
			assert.Equal(t, string(want), string(got), f)
		}
	}
	for _, f := range []string{"run", "finish", "log/run"} {
		ia, _ := ino(filepath.Join(scanDir, "gateway-a", f))
		ib, _ := ino(filepath.Join(scanDir, "gateway-b", f))
		assert.NotEqual(t, ia, ib, "%s is each slot's own", f)
	}
	entries, err := os.ReadDir(scanDir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	assert.ElementsMatch(t, []string{"gateway-a", "gateway-b"}, names, "no template or staging directory left")
}
