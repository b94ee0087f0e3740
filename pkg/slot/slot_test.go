package slot_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/owner"
	"github.com/s6gate/s6gate/pkg/slot"
)

func spec(p string) slot.Spec {
	return slot.Spec{Profile: p, Home: "/opt/data", CommandDir: "/command", User: "gateway", Bin: "/usr/local/bin/gateway"}
}

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	st, err := os.Lstat(p)
	require.NoError(t, err)
	return st.Mode()
}

func TestSeedSkeletonLayoutAndModes(t *testing.T) {
	old := unix.Umask(0o077) // a hostile umask must not change any mode
	defer unix.Umask(old)
	svc := filepath.Join(t.TempDir(), "gateway-foo")
	require.NoError(t, os.Mkdir(svc, 0o755))

	require.NoError(t, slot.SeedSkeleton(svc, nil))

	fifodir := os.ModeDir | os.ModeSetgid | os.ModeSticky | 0o730
	assert.Equal(t, fifodir, mode(t, filepath.Join(svc, "event")))
	assert.Equal(t, os.ModeDir|0o755, mode(t, filepath.Join(svc, "supervise")))
	assert.Equal(t, fifodir, mode(t, filepath.Join(svc, "supervise", "event")))
	assert.Equal(t, os.ModeNamedPipe|0o660, mode(t, filepath.Join(svc, "supervise", "control")))
	assert.NoDirExists(t, filepath.Join(svc, "log"), "no log/ is synthesized")
}

func TestSeedSkeletonHandlesLogAndIsIdempotent(t *testing.T) {
	svc := filepath.Join(t.TempDir(), "gateway-foo")
	require.NoError(t, os.MkdirAll(filepath.Join(svc, "log"), 0o755))
	require.NoError(t, slot.SeedSkeleton(svc, nil))
	require.NoError(t, slot.SeedSkeleton(svc, nil), "second call is a no-op")

	fifodir := os.ModeDir | os.ModeSetgid | os.ModeSticky | 0o730
	assert.Equal(t, fifodir, mode(t, filepath.Join(svc, "log", "event")))
	assert.Equal(t, os.ModeDir|0o755, mode(t, filepath.Join(svc, "log", "supervise")))
	assert.Equal(t, fifodir, mode(t, filepath.Join(svc, "log", "supervise", "event")))
	assert.Equal(t, os.ModeNamedPipe|0o660, mode(t, filepath.Join(svc, "log", "supervise", "control")))
}

func TestSeedSkeletonOwnership(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root")
		}
		t.Skip("needs root")
	}
	svc := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(svc, "log"), 0o755))
	require.NoError(t, slot.SeedSkeleton(svc, &owner.Owner{UID: 10000, GID: 10001}))
	for _, p := range []string{"event", "supervise", "supervise/event", "supervise/control", "log/supervise/control"} {
		st, err := os.Lstat(filepath.Join(svc, p))
		require.NoError(t, err)
		sys := st.Sys().(*syscall.Stat_t)
		assert.Equal(t, uint32(10000), sys.Uid, p)
		assert.Equal(t, uint32(10001), sys.Gid, p)
	}
	// chown must not have cleared set-gid/sticky (mode is applied after the owner).
	assert.Equal(t, os.ModeDir|os.ModeSetgid|os.ModeSticky|0o730, mode(t, filepath.Join(svc, "event")))
}

func TestRunScript(t *testing.T) {
	run := slot.RunScript(spec("coder"))
	assert.True(t, strings.HasPrefix(run, "#!/command/with-contenv /bin/sh\n"))
	assert.Contains(t, run, "export HOME='/opt/data'\n")
	assert.Contains(t, run, "export GATEWAY_SUPERVISED=1\n", "marks the child as supervised")
	assert.Contains(t, run, "export GATEWAY_NOTIFY_FD=3\n")
	assert.Contains(t, run, "exec '/usr/local/bin/gateway' run -p 'coder' --replace\n")
	assert.Contains(t, run, "exec '/command/s6-setuidgid' 'gateway' \"$0\"")
	assert.Less(t, strings.Index(run, "s6-setuidgid"), strings.Index(run, "export "), "privileges are dropped before any export")
	assert.Less(t, strings.Index(run, "HOME="), strings.Index(run, "run -p"), "HOME is set before the exec")

	s := spec("coder")
	s.Command = []string{"sh", "-c", "echo 'hi'; exit 3"}
	assert.Contains(t, slot.RunScript(s), `--replace -- 'sh' '-c' 'echo '"'"'hi'"'"'; exit 3'`)
}

func TestRunScriptQuotesEnv(t *testing.T) {
	s := spec("x")
	s.Env = map[string]string{"FOO": "bar baz", "QUOTED": "a'b", "INJECT": "$(touch /tmp/pwned)`id`;rm -rf /", "NL": "a\nb"}
	run := slot.RunScript(s)
	assert.Contains(t, run, "export FOO='bar baz'\n")
	assert.Contains(t, run, `export QUOTED='a'"'"'b'`+"\n")
	assert.Contains(t, run, "export INJECT='$(touch /tmp/pwned)`id`;rm -rf /'\n")

	// The shell gives back exactly the values, with nothing expanded or executed.
	body := run[strings.Index(run, "export HOME"):strings.Index(run, "exec '/usr/local/bin/gateway'")]
	out, err := exec.Command("/bin/sh", "-c", body+"\nprintf '%s|%s|%s|%s' \"$FOO\" \"$QUOTED\" \"$INJECT\" \"$NL\"").Output()
	require.NoError(t, err)
	assert.Equal(t, "bar baz|a'b|$(touch /tmp/pwned)`id`;rm -rf /|a\nb", string(out))
}

func TestQuoteRoundTrip(t *testing.T) {
	for _, v := range []string{"", "plain", "a b", "'", "''", `"`, `\`, "$HOME", "a\tb\nc", "*", "-n"} {
		out, err := exec.Command("/bin/sh", "-c", "printf '%s' "+slot.Quote(v)).Output()
		require.NoError(t, err, v)
		assert.Equal(t, v, string(out))
	}
}

func TestLogRunScript(t *testing.T) {
	log := slot.LogRunScript(spec("coder"))
	assert.Contains(t, log, "$GATEWAY_HOME", "log dir is computed at run time")
	assert.Contains(t, log, "logs/gateways/coder")
	assert.NotContains(t, log, "/opt/data/logs/gateways/coder", "no baked absolute log path")
	assert.Contains(t, log, "'/command/s6-log' 1 n10 s1000000 T \"$dir\"", "`1` forwards lines to stdout before the file copy")
	assert.Contains(t, log, "'/command/s6-setuidgid' 'gateway'")
}

func TestFinishScriptMaps78To125(t *testing.T) {
	p := filepath.Join(t.TempDir(), "finish")
	require.NoError(t, os.WriteFile(p, []byte(slot.FinishScript(spec("x"))), 0o755))
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
	p, err := slot.Publish(scan, s, nil)
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
	assert.Equal(t, os.ModeNamedPipe|0o660, mode(t, filepath.Join(p, "log", "supervise", "control")))

	entries, err := os.ReadDir(scan)
	require.NoError(t, err)
	require.Len(t, entries, 1, "no staging directory left behind")
}

func TestPublishRejectsDuplicateAndBadNames(t *testing.T) {
	scan := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(scan, "gateway-coder"), 0o755))
	_, err := slot.Publish(scan, spec("coder"), nil)
	var are *slot.AlreadyRegisteredError
	require.ErrorAs(t, err, &are)
	assert.Contains(t, err.Error(), "already registered")
	entries, _ := os.ReadDir(scan)
	assert.Len(t, entries, 1, "staging removed after the refusal")

	_, err = slot.Publish(scan, spec("Bad/Name"), nil)
	require.Error(t, err)
	assert.Equal(t, exitcode.Usage, exitcode.Of(err))
	s := spec("ok")
	s.Env = map[string]string{"BAD-NAME": "x"}
	_, err = slot.Publish(scan, s, nil)
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

	got, err := slot.List(scan)
	require.NoError(t, err)
	assert.Equal(t, []string{"assistant", "coder", "writer"}, got)

	got, err = slot.List(filepath.Join(scan, "missing"))
	require.NoError(t, err)
	assert.Empty(t, got)

	assert.NoError(t, slot.Check(scan, "coder"))
	err = slot.Check(scan, "typo")
	var nre *slot.NotRegisteredError
	require.ErrorAs(t, err, &nre)
	assert.Equal(t, "typo", nre.Profile)
	assert.Equal(t, "gateway-typo", nre.Service)
	assert.Contains(t, err.Error(), "'typo'")
	assert.Contains(t, err.Error(), "gateway register typo")
}

func TestProfileOf(t *testing.T) {
	p, ok := slot.ProfileOf("gateway-coder")
	assert.True(t, ok)
	assert.Equal(t, "coder", p)
	p, ok = slot.ProfileOf("not-prefixed")
	assert.False(t, ok)
	assert.Equal(t, "not-prefixed", p, "an unprefixed name is kept verbatim")
}

func TestDetachAndPurge(t *testing.T) {
	scan := t.TempDir()
	_, err := slot.Publish(scan, spec("coder"), nil)
	require.NoError(t, err)
	d, err := slot.Detach(scan, "coder")
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(filepath.Base(d), "."), "detached slot is a dot entry")
	assert.NoDirExists(t, filepath.Join(scan, "gateway-coder"))
	require.NoError(t, slot.Purge(d))
	assert.NoDirExists(t, d)

	d, err = slot.Detach(scan, "absent")
	require.NoError(t, err)
	assert.Empty(t, d)
	assert.NoError(t, slot.Purge(d))
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

	_, err = slot.Publish(scan, spec("coder"), nil)
	require.Error(t, err)
	assert.ErrorIs(t, err, syscall.ENOSPC)
	entries, err := os.ReadDir(scan)
	require.NoError(t, err)
	require.Len(t, entries, 1, "only the filler: no slot and no staging directory")
	assert.Equal(t, "filler", entries[0].Name())
}

// Root renders into a staging directory inside the service user's scan directory. Until the
// slot is complete nobody else can enter it, and every entry ends up the service user's,
// with its exact mode (set-gid and sticky survive the chown).
func TestStagedSlotIsPrivateUntilCompleteThenOwned(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI runs as root; this test must run there")
		}
		t.Skip("needs root")
	}
	scan := t.TempDir()
	svc := &owner.Owner{UID: 4242, GID: 4343}
	staged, err := slot.Stage(scan, spec("coder"), svc)
	require.NoError(t, err)
	assert.Equal(t, os.ModeDir|0o755, mode(t, staged))
	err = filepath.Walk(staged, func(p string, info os.FileInfo, err error) error {
		require.NoError(t, err)
		sys := info.Sys().(*syscall.Stat_t)
		assert.Equal(t, uint32(4242), sys.Uid, p)
		assert.Equal(t, uint32(4343), sys.Gid, p)
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, os.ModeDir|os.ModeSetgid|os.ModeSticky|0o730, mode(t, filepath.Join(staged, "supervise", "event")))
	assert.Equal(t, os.ModeNamedPipe|0o660, mode(t, filepath.Join(staged, "log", "supervise", "control")))
	assert.Equal(t, os.FileMode(0o750), mode(t, filepath.Join(staged, "run")).Perm())
}

// A staging directory swapped for a symlink mid-render is never written through: Render works
// on a descriptor, and the swap makes it fail instead.
func TestRenderRefusesASymlinkedDirectory(t *testing.T) {
	base := t.TempDir()
	victim := t.TempDir()
	link := filepath.Join(base, "staging")
	require.NoError(t, os.Symlink(victim, link))
	require.Error(t, slot.Render(link, spec("coder"), nil))
	entries, err := os.ReadDir(victim)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing written through the symlink")
}
