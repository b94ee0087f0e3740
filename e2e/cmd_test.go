package e2e

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
)

// runOnce runs the image with a command and returns its exit code and logs. The volume, if
// given, is mounted on /opt/data. initFlag runs it under Docker's --init (tini as PID 1).
func runOnceOpts(t *testing.T, vol string, initFlag bool, cmd ...string) (int, string) {
	t.Helper()
	return runContainer(t, vol, initFlag, testcontainers.WithCmd(cmd...))
}

func runContainer(t *testing.T, vol string, initFlag bool, extra ...testcontainers.ContainerCustomizer) (int, string) {
	t.Helper()
	requireEngine(t)
	ctx := context.Background()
	opts := append([]testcontainers.ContainerCustomizer{
		testcontainers.WithWaitStrategy(wait.ForExit().WithExitTimeout(60 * time.Second)),
	}, extra...)
	if vol != "" {
		opts = append(opts, testcontainers.WithMounts(testcontainers.VolumeMount(vol, "/opt/data")))
	}
	if initFlag {
		yes := true
		opts = append(opts, testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) { hc.Init = &yes }))
	}
	c, err := testcontainers.Run(ctx, Image, opts...)
	t.Cleanup(func() {
		if c != nil {
			_ = c.Terminate(context.Background())
		}
	})
	require.NoError(t, err)
	st, err := c.State(ctx)
	require.NoError(t, err)
	r, err := c.Logs(ctx)
	require.NoError(t, err)
	defer r.Close()
	out, _ := io.ReadAll(r)
	return st.ExitCode, string(out)
}

// onVolume runs a plain command (no /init, so no boot) on a volume, as an admin would.
func onVolume(t *testing.T, vol string, cmd ...string) {
	t.Helper()
	code, out := runContainer(t, vol, false, testcontainers.WithEntrypoint(cmd...))
	require.Equal(t, 0, code, out)
}

func TestCMDExitCodeBecomesTheContainers(t *testing.T) {
	for _, tt := range []struct {
		script string
		code   int
	}{{"exit 0", 0}, {"exit 7", 7}, {"kill -TERM $$", 128 + 15}} {
		t.Run(tt.script, func(t *testing.T) {
			code, out := runOnceOpts(t, "", false, "sh", "-c", tt.script)
			assert.Equal(t, tt.code, code, out)
		})
	}
}

func TestPID1IsS6SvscanAndOrphansAreReaped(t *testing.T) {
	// The CMD leaves an orphan that exits soon (its parent, the command substitution's shell,
	// is gone at once), then waits until the orphan is gone from /proc: a zombie stays there
	// until someone reaps it. (Counting every zombie of the container instead would also count
	// a process that just ended and that its own parent is about to reap.)
	script := `cat /proc/1/comm; o=$(sleep 0.2 >/dev/null 2>&1 & echo $!); i=0
while [ -e /proc/$o ] && [ $i -lt 1000 ]; do sleep 0.01; i=$((i+1)); done
if [ -e /proc/$o ]; then echo "orphan $o left: $(grep State /proc/$o/status)"; else echo "orphan reaped"; fi`
	code, out := runOnceOpts(t, "", false, "sh", "-c", script)
	require.Equal(t, 0, code, out)
	assert.Contains(t, out, "s6-svscan\n")
	assert.Contains(t, out, "orphan reaped")
}

func TestDockerInitStillWorks(t *testing.T) {
	code, out := runOnceOpts(t, "", true, "sh", "-c", "gateway list; exit 3")
	assert.Equal(t, 3, code, out)
	assert.Contains(t, out, "default", "the boot reconciler ran and the verbs work under --init")

	// And as a long-running container: gateways come up, status answers.
	b := start(t, nil, testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
		yes := true
		hc.Init = &yes
	}))
	b.gw("register", "coder", "--start")
	b.waitUp("coder")
	_, comm := b.exec("", "cat", "/proc/1/comm")
	assert.NotEqual(t, "s6-svscan", strings.TrimSpace(comm), "docker's init is PID 1 here")
}

// volumeFile prints a file from a volume through a plain container (no /init, so no boot).
func volumeFile(t *testing.T, vol, path string, opts ...testcontainers.ContainerCustomizer) string {
	t.Helper()
	code, out := runContainer(t, vol, false, append(opts, testcontainers.WithEntrypoint("cat", path))...)
	require.Equal(t, 0, code, out)
	return out
}
