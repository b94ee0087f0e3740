package boot

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// runDir makes a directory with this owner and mode on the real file system (chmod after
// chown: chown clears setgid).
func runDir(t *testing.T, uid, gid int, mode os.FileMode) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "run")
	require.NoError(t, os.Mkdir(dir, 0o700))
	require.NoError(t, os.Chown(dir, uid, gid))
	require.NoError(t, os.Chmod(dir, mode))
	return dir
}

func requireRootForOwners(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("needs root to give directories other owners")
		}
		t.Skip("needs root to give directories other owners")
	}
}

const kubernetesVar = "S6_YES_I_WANT_A_WORLD_WRITABLE_RUN_BECAUSE_KUBERNETES"

// The decision table of a non-root /init, on real directories (the modes Docker's --tmpfs,
// a Kubernetes emptyDir and OpenShift give), mirrored on s6-overlay 3.2's preinit.
func TestCheckRun(t *testing.T) {
	requireRootForOwners(t)
	gw := creds{UID: 10000, GID: 10000}
	arbitrary := creds{UID: 1000, GID: 0} // docker run --user 1000: not in /etc/passwd, gid 0
	for _, tc := range []struct {
		name       string
		uid, gid   int
		mode       os.FileMode
		as         creds
		optIn      bool
		note, want string // substrings of Note and Fatal; "" = must be empty
	}{
		{name: "root, any /run", uid: 10000, gid: 10000, mode: 0o700, as: creds{}},
		{name: "owned by the user", uid: 10000, gid: 10000, mode: 0o755, as: gw},
		{name: "owned by the user but read-only to it", uid: 10000, gid: 10000, mode: 0o555, as: gw,
			want: "/run (owner uid 10000, mode 0555) is not writable by uid 10000: give uid 10000 a /run it owns (docker run --tmpfs /run:exec,uid=10000), or run as root"},
		{name: "root's 0755 (no tmpfs, image default)", uid: 0, gid: 0, mode: 0o755, as: gw,
			want: "/run (owner uid 0, mode 0755) is not writable by uid 10000: give uid 10000 a /run it owns (docker run --tmpfs /run:exec,uid=10000), or run as root"},
		{name: "root's 1777 (docker --tmpfs with this image)", uid: 0, gid: 0, mode: 0o1777 | os.ModeSticky, as: gw,
			note: "warning: /run belongs to uid 0, not 10000, and is writable by others (mode 1777); its sticky bit keeps /init's files its own (single-uid mapping)"},
		{name: "root's 0777 (Kubernetes emptyDir)", uid: 0, gid: 0, mode: 0o777, as: gw,
			want: "/run belongs to uid 0, not 10000, and is writable by others (mode 0777), which a non-root /init cannot fix: give uid 10000 a /run it owns (docker run --tmpfs /run:exec,uid=10000), or accept it with " + kubernetesVar + "=1"},
		{name: "root's 0777 with the opt-in", uid: 0, gid: 0, mode: 0o777, as: gw, optIn: true,
			note: "without a sticky bit: INSECURE, accepted because " + kubernetesVar + " is set"},
		{name: "OpenShift: gid 0, group-writable", uid: 0, gid: 0, mode: 0o770, as: arbitrary,
			note: "/run belongs to uid 0, not 1000, and is writable by group 0 (mode 0770): used with gid 0"},
		{name: "gid 0 and world-writable 1777", uid: 0, gid: 0, mode: 0o1777 | os.ModeSticky, as: arbitrary,
			want: "/run belongs to uid 0, not 1000, and is writable by others (mode 1777), which a non-root /init cannot fix: give uid 1000 a /run it owns (docker run --tmpfs /run:exec,uid=1000), or accept it with " + kubernetesVar + "=1"},
		{name: "gid 0 and world-writable 1777 with the opt-in", uid: 0, gid: 0, mode: 0o1777 | os.ModeSticky, as: arbitrary, optIn: true,
			note: "INSECURE, accepted"},
		{name: "the user's group, setgid and sticky", uid: 0, gid: 10000, mode: 0o3770 | os.ModeSetgid | os.ModeSticky, as: gw,
			note: "single-uid mapping"},
		{name: "the user's group, no sticky bit", uid: 0, gid: 10000, mode: 0o770, as: gw,
			want: "accept it with " + kubernetesVar + "=1"},
		{name: "a supplementary group", uid: 0, gid: 4242, mode: 0o770, as: creds{UID: 10000, GID: 10000, Groups: []int{4242}}, optIn: true,
			note: "INSECURE, accepted"},
		{name: "another user's /run", uid: 20000, gid: 20000, mode: 0o755, as: gw,
			want: "/run (owner uid 20000, mode 0755) is not writable by uid 10000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := runDir(t, tc.uid, tc.gid, tc.mode)
			got := checkRun(dir, tc.as, tc.optIn)
			got.Note = strings.ReplaceAll(got.Note, dir, "/run")
			got.Fatal = strings.ReplaceAll(got.Fatal, dir, "/run")
			check := func(what, got, want string) {
				if want == "" {
					assert.Empty(t, got, what)
				} else {
					assert.Contains(t, got, want, what)
					assert.NotContains(t, got, "\n", "one line")
				}
			}
			check("note", got.Note, tc.note)
			check("fatal", got.Fatal, tc.want)
		})
	}
}

func TestCheckRunMissingOrNotADirectory(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "run")
	assert.Equal(t, runCheck{}, checkRun(missing, creds{}, false), "root creates it")
	got := checkRun(missing, creds{UID: 10000, GID: 10000}, false)
	assert.Contains(t, got.Fatal, "no such file or directory: give uid 10000 a "+missing+" it owns")

	file := filepath.Join(t.TempDir(), "run")
	writeFile(t, file, "", 0o644)
	assert.Contains(t, checkRun(file, creds{}, false).Fatal, "is not a directory: give the container a writable")
}

// mountTmpfs mounts a tmpfs with flags on a new directory, for the mount-option checks.
func mountTmpfs(t *testing.T, flags uintptr, data string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "run")
	require.NoError(t, os.Mkdir(dir, 0o755))
	err := unix.Mount("tmpfs", dir, "tmpfs", flags, data)
	if errors.Is(err, unix.EPERM) && os.Getenv("CI") != "true" {
		t.Skip("cannot mount a tmpfs here:", err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	return dir
}

// Docker's --tmpfs mounts noexec unless told :exec; s6-supervise could not exec ./run there.
func TestCheckRunRefusesNoexecAndReadOnly(t *testing.T) {
	requireRootForOwners(t)
	noexec := mountTmpfs(t, unix.MS_NOEXEC|unix.MS_NOSUID|unix.MS_NODEV, "mode=1777")
	for _, c := range []creds{{}, {UID: 10000, GID: 10000}} {
		got := checkRun(noexec, c, true)
		assert.Equal(t, noexec+" is mounted noexec, so s6-supervise cannot start any service from it: mount it with exec (docker run --tmpfs "+noexec+":exec)", got.Fatal, "uid %d", c.UID)
	}
	exec := mountTmpfs(t, unix.MS_NOSUID|unix.MS_NODEV, "mode=1777")
	assert.Empty(t, checkRun(exec, creds{UID: 10000, GID: 10000}, false).Fatal)

	ro := mountTmpfs(t, unix.MS_RDONLY, "mode=1777")
	assert.Equal(t, ro+" is on a read-only file system: give the container a writable "+ro+" (docker run --tmpfs "+ro+":exec)", checkRun(ro, creds{}, false).Fatal)
	assert.Contains(t, checkRun(ro, creds{UID: 10000, GID: 10000}, false).Fatal, "is on a read-only file system: give uid 10000 a "+ro+" it owns")
}

func TestClaimRun(t *testing.T) {
	requireRootForOwners(t)
	for _, tc := range []struct {
		uid  int
		mode os.FileMode
		note string
	}{
		{0, 0o755, ""},
		{0, 0o1777 | os.ModeSticky, "(owner uid 0, mode 1777) made root's, mode 0755"},
		{10000, 0o755, "(owner uid 10000, mode 0755) made root's, mode 0755"},
	} {
		dir := runDir(t, tc.uid, tc.uid, tc.mode)
		note := claimRun(dir)
		if tc.note == "" {
			assert.Empty(t, note)
		} else {
			assert.Equal(t, dir+" "+tc.note, note)
		}
		var st unix.Stat_t
		require.NoError(t, unix.Stat(dir, &st))
		assert.Equal(t, uint32(0), st.Uid)
		assert.Equal(t, uint32(0o755), st.Mode&0o7777)
	}
}

// On a read-only root, S6_READ_ONLY_ROOT makes prepareRun write nothing outside /run: a
// missing /var/run link and missing /command links are reported, not made.
func TestPrepareRunReadOnlyRootWritesOnlyUnderRun(t *testing.T) {
	root := t.TempDir()
	l := layoutUnder(root)
	writeFile(t, filepath.Join(root, "usr/bin/s6-svc"), "", 0o755)
	require.NoError(t, os.MkdirAll(l.Run, 0o755))
	var out strings.Builder
	require.NoError(t, prepareRun(l, newLogger(&out), "/init", 1, true))
	_, err := os.Lstat(l.VarRun)
	assert.ErrorIs(t, err, os.ErrNotExist, "/var/run left alone")
	_, err = os.Lstat(l.Command)
	assert.ErrorIs(t, err, os.ErrNotExist, "/command left alone")
	assert.Contains(t, out.String(), "is not a symlink to "+l.Run+"; left alone (S6_READ_ONLY_ROOT is set)")
	assert.Contains(t, out.String(), "1 tool links missing in "+l.Command+"; left alone")
	assert.FileExists(t, l.haltPath())

	// Without the knob, a read-only /command (here: a file in its way) is a warning only.
	root = t.TempDir()
	l = layoutUnder(root)
	writeFile(t, filepath.Join(root, "usr/bin/s6-svc"), "", 0o755)
	writeFile(t, l.Command, "", 0o444)
	out.Reset()
	require.NoError(t, prepareRun(l, newLogger(&out), "/init", 1, false))
	assert.Contains(t, out.String(), "boot: warning: cannot complete "+l.Command)
}
