package slot

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/internal/s6test"
	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/s6"
)

// contenvFixture is a slot's two scripts with fakes around them: a with-contenv that notes
// each call (the caller's uid) and, like the real one with a container environment, gives its
// program PATH and the "container environment" (FROM_CONTENV, GATEWAY_HOME) only; a gateway
// and an s6-log that write down the uid and environment they got.
type contenvFixture struct {
	dir, calls, home string
	spec             Spec
}

func newContenvFixture(t *testing.T, serviceUser string) *contenvFixture {
	t.Helper()
	dir, err := os.MkdirTemp("", "s6gate-contenv-") // t.TempDir's parent is closed to others
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o777)) // the service user runs the scripts and writes its records here
	f := &contenvFixture{dir: dir, calls: filepath.Join(dir, "contenv-calls"), home: filepath.Join(dir, "home")}
	require.NoError(t, os.Mkdir(f.home, 0o777))
	require.NoError(t, os.MkdirAll(filepath.Join(f.home, profile.LogRel("p")), 0o777))
	recorder := func(name string) string {
		return "#!/bin/sh\n{ /usr/bin/id -u; /usr/bin/env; } > " + filepath.Join(dir, name) + "\n"
	}
	fakes := map[string]string{
		"with-contenv": "#!/bin/sh\n/usr/bin/id -u >> " + f.calls + "\n" +
			"exec /usr/bin/env -i PATH=\"$PATH\" FROM_CONTENV=yes GATEWAY_HOME=" + f.home + " \"$@\"\n",
		"gateway": recorder("gateway.out"),
		"s6-log":  recorder("s6-log.out"),
	}
	tools := map[string]string{}
	for name, content := range fakes {
		p := filepath.Join(dir, "fake-"+name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o755))
		tools[name] = p
	}
	f.spec = Spec{Profile: "p", Home: f.home, User: serviceUser, Bin: tools["gateway"], CommandDir: s6test.CommandDir(t, tools)}
	for name, content := range map[string]string{"run": runScript(f.spec), "log-run": logRunScript(f.spec)} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(content), 0o755))
	}
	return f
}

// run runs one script with the tree's environment treeEnv and returns the uids with-contenv
// was called as, and the uid and environment of the program the script ended in.
func (f *contenvFixture) run(t *testing.T, script, recorder string, treeEnv ...string) (contenvCalls []string, uid string, env map[string]string) {
	t.Helper()
	for _, p := range []string{f.calls, filepath.Join(f.dir, recorder)} {
		require.NoError(t, os.RemoveAll(p))
	}
	cmd := exec.Command(filepath.Join(f.dir, script))
	cmd.Dir = f.dir
	cmd.Env = append([]string{"PATH=/usr/bin:/bin", "GATEWAY_HOME=/tree/home"}, treeEnv...)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, string(out))
	if b, err := os.ReadFile(f.calls); err == nil {
		contenvCalls = strings.Fields(string(b))
	}
	b, err := os.ReadFile(filepath.Join(f.dir, recorder))
	require.NoError(t, err, string(out))
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	env = map[string]string{}
	for _, kv := range lines[1:] {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return contenvCalls, lines[0], env
}

// In a tree that loaded the container environment (S6GATE_CONTENV=1), run and log/run use
// the tree's environment and start no with-contenv; elsewhere they go through with-contenv
// exactly once — also when run drops from root to the service user on the way — and what
// reaches the gateway and s6-log is the container environment, not the tree's. The marker
// never reaches the gateway.
func TestScriptsLoadTheContainerEnvironmentOnlyWhenTheTreeDidNot(t *testing.T) {
	me, err := user.Current()
	require.NoError(t, err)
	f := newContenvFixture(t, me.Username)

	calls, _, env := f.run(t, "run", "gateway.out", "S6GATE_CONTENV=1", "ONLY_IN_TREE=1")
	assert.Empty(t, calls, "run: the tree loaded the container environment")
	assert.Equal(t, "1", env["ONLY_IN_TREE"])
	assert.NotContains(t, env, "FROM_CONTENV")
	assert.NotContains(t, env, "S6GATE_CONTENV", "the marker is the tree's, not the gateway's")
	calls, _, env = f.run(t, "log-run", "s6-log.out", "S6GATE_CONTENV=1", "ONLY_IN_TREE=1")
	assert.Empty(t, calls, "log/run: the tree loaded the container environment")
	assert.Equal(t, "/tree/home", env["GATEWAY_HOME"])

	for _, marker := range []string{"", "S6GATE_CONTENV=0", "S6GATE_CONTENV=yes"} {
		calls, _, env = f.run(t, "run", "gateway.out", marker, "ONLY_IN_TREE=1")
		assert.Equal(t, []string{strconv.Itoa(os.Geteuid())}, calls, "run, %q: with-contenv once", marker)
		assert.Equal(t, "yes", env["FROM_CONTENV"])
		assert.NotContains(t, env, "ONLY_IN_TREE")
		calls, _, env = f.run(t, "log-run", "s6-log.out", marker, "ONLY_IN_TREE=1")
		assert.Equal(t, []string{strconv.Itoa(os.Geteuid())}, calls, "log/run, %q: with-contenv once", marker)
		assert.Equal(t, f.home, env["GATEWAY_HOME"], "log/run takes GATEWAY_HOME from the container environment")
	}

	if os.Geteuid() != 0 {
		return
	}
	// Started by root: with-contenv as root, once; then run re-executes itself as the service
	// user without loading it again.
	nobody, err := user.Lookup("nobody")
	require.NoError(t, err)
	f = newContenvFixture(t, "nobody")
	calls, uid, env := f.run(t, "run", "gateway.out", "ONLY_IN_TREE=1")
	assert.Equal(t, []string{"0"}, calls, "root's run: with-contenv once, as root")
	assert.Equal(t, nobody.Uid, uid, "the gateway runs as the service user")
	assert.Equal(t, "yes", env["FROM_CONTENV"])
	calls, uid, _ = f.run(t, "run", "gateway.out", "S6GATE_CONTENV=1")
	assert.Empty(t, calls)
	assert.Equal(t, nobody.Uid, uid)
}

// The same under a real s6-svscan, with the real with-contenv, the real gateway and a
// container environment directory (s6test.Env.ContainerEnv): a slot in a tree that exported
// S6GATE_CONTENV=1 gets the tree's environment, a slot in a tree that did not gets the
// container's, and in both the gateway's command sees the profile's variables and HOME, and
// none of the plumbing (the marker, the --setenv carriers).
func TestSlotEnvironmentUnderRealS6(t *testing.T) {
	s6test.RequireRoot(t)
	for _, tc := range []struct {
		name           string
		marker         bool
		want, val, not string
	}{
		{"tree loaded the container environment", true, "ONLY_IN_TREE", "1", "FROM_CONTENV"},
		{"tree did not", false, "FROM_CONTENV", "yes", "ONLY_IN_TREE"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := s6test.NewEnv(t, nil)
			e.ContainerEnv = map[string]string{"FROM_CONTENV": "yes"}
			for _, kv := range e.Environ() {
				k, v, _ := strings.Cut(kv, "=")
				e.ContainerEnv[k] = v
			}
			e.Extra = []string{"ONLY_IN_TREE=1"}
			if tc.marker {
				e.Extra = append(e.Extra, "S6GATE_CONTENV=1")
			}
			e.Start()
			seen := filepath.Join(e.ProfileHome("envp"), "seen")
			e.MustRun("gateway", "register", "envp", "--env", "PROFILE_VAR=a b'c", "--env", "HOME=/profile/home", "--start",
				"--", "/bin/sh", "-c", `env > "$GATEWAY_HOME/profiles/envp/seen.new" && mv "$GATEWAY_HOME/profiles/envp/seen.new" "$GATEWAY_HOME/profiles/envp/seen"; exec sleep 100000`)
			s6test.Eventually(t, 10*time.Second, "the command's environment", func() bool {
				_, err := os.Stat(seen)
				return err == nil
			})
			b, err := os.ReadFile(seen)
			require.NoError(t, err)
			env := envMap(strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"))
			assert.Equal(t, tc.val, env[tc.want], "%s reaches the gateway", tc.want)
			assert.NotContains(t, env, tc.not)
			assert.Equal(t, "a b'c", env["PROFILE_VAR"])
			assert.Equal(t, "/profile/home", env["HOME"])
			assert.Equal(t, e.Home, env["GATEWAY_HOME"])
			for k := range env {
				assert.False(t, strings.HasPrefix(k, "S6GATE_"), "%s reached the command", k)
			}
			// The logger started in the same environment and writes where GATEWAY_HOME says.
			s6test.Eventually(t, 10*time.Second, "the gateway's log file", func() bool {
				_, err := os.Stat(filepath.Join(e.Home, profile.LogRel("envp"), "current"))
				return err == nil
			})
			st, err := s6.Tools{Dir: e.CommandDir}.ReadStatus(t.Context(), e.Slot("envp"))
			require.NoError(t, err)
			assert.True(t, st.Up && st.Ready, "%+v", st)
		})
	}
}
