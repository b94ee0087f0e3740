// Package e2e proves the promise in a real container restarted by a real Docker engine,
// through testcontainers-go: running gateways come back, stopped ones stay stopped, and an
// unprivileged operator (`docker exec -u gateway`) manages gateways at runtime.
//
// It runs against the image s6gate:latest (`make image`; `make test` builds it first), or the
// one named by $S6GATE_IMAGE; minimal_test.go also against s6gate:minimal (`make
// image-minimal`), or $S6GATE_MINIMAL_IMAGE; `make test` runs the restart scenarios a third
// time against s6gate:overlay (s6gate inside a real s6-overlay, `make image-overlay`). No
// image is ever pulled. Without an engine the tests skip locally and fail under CI=true.
package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
	"github.com/testcontainers/testcontainers-go/wait"
)

// Image is the image under test: $S6GATE_IMAGE, or s6gate:latest (`make image`).
var Image = imageUnderTest()

func imageUnderTest() string {
	if img := os.Getenv("S6GATE_IMAGE"); img != "" {
		return img
	}
	return "s6gate:latest"
}

// prerequisite is why the suite cannot run here ("" when it can); set once in TestMain.
var prerequisite string

func TestMain(m *testing.M) {
	// The reaper image cannot be pulled on these machines.
	if os.Getenv("TESTCONTAINERS_RYUK_DISABLED") == "" {
		os.Setenv("TESTCONTAINERS_RYUK_DISABLED", "true")
	}
	prerequisite = checkEngine()
	code := m.Run()
	if prerequisite == "" {
		_ = exec.Command("docker", "image", "rm", "-f", helpersTag).Run() // built by the helpers tests, if they ran
	}
	os.Exit(code)
}

func checkEngine() string {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		return "no Docker engine: " + err.Error()
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		return "no Docker engine answers: " + err.Error()
	}
	if _, err := cli.ImageInspect(ctx, Image); err != nil {
		return "image " + Image + " is missing (run `make image`): " + err.Error()
	}
	return ""
}

func requireEngine(t testing.TB) {
	t.Helper()
	if prerequisite == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true and the E2E suite cannot run: " + prerequisite)
	}
	t.Skip(prerequisite)
}

// box is one s6gate container with its own named volume.
type box struct {
	t   testing.TB
	ctx context.Context
	c   *testcontainers.DockerContainer
	cli *testcontainers.DockerClient
	vol string
}

func randomName(prefix string) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// start runs the image with a fresh named volume on /opt/data and waits until the boot
// reconciler is done and the verbs answer.
func start(t testing.TB, env map[string]string, opts ...testcontainers.ContainerCustomizer) *box {
	t.Helper()
	requireEngine(t)
	return startOn(t, randomName("s6gate-e2e-"), env, opts...)
}

func startOn(t testing.TB, vol string, env map[string]string, opts ...testcontainers.ContainerCustomizer) *box {
	t.Helper()
	ctx := context.Background()
	all := append([]testcontainers.ContainerCustomizer{
		testcontainers.WithMounts(testcontainers.VolumeMount(vol, "/opt/data")),
		testcontainers.WithEnv(env),
		testcontainers.WithWaitStrategy(wait.ForExec([]string{"gateway", "list"}).
			WithStartupTimeout(60 * time.Second).WithPollInterval(50 * time.Millisecond)),
	}, opts...)
	c, err := testcontainers.Run(ctx, Image, all...)
	b := &box{t: t, ctx: ctx, c: c, vol: vol}
	t.Cleanup(func() {
		if c != nil {
			if t.Failed() {
				t.Logf("container logs:\n%s", b.logs())
			}
			_ = c.Terminate(context.Background(), testcontainers.RemoveVolumes(vol))
		}
	})
	require.NoError(t, err)
	b.cli, err = testcontainers.NewDockerClientWithOpts(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { b.cli.Close() })
	return b
}

func (b *box) id() string { return b.c.GetContainerID() }

// exec runs cmd in the container as user ("" = the image's user, root) and returns the exit
// code and combined output.
func (b *box) exec(user string, cmd ...string) (int, string) {
	b.t.Helper()
	opts := []tcexec.ProcessOption{tcexec.Multiplexed()}
	if user != "" {
		opts = append(opts, tcexec.WithUser(user))
	}
	code, r, err := b.c.Exec(b.ctx, cmd, opts...)
	require.NoError(b.t, err, "exec %v", cmd)
	out, _ := io.ReadAll(r)
	return code, string(out)
}

// gw runs `gateway ARGS...` as the unprivileged service user and requires success.
func (b *box) gw(args ...string) string {
	b.t.Helper()
	code, out := b.exec("gateway", append([]string{"gateway"}, args...)...)
	require.Equal(b.t, 0, code, "gateway %v as uid 10000: %s", args, out)
	return out
}

// s6Overlay reports whether the image runs upstream's s6-overlay /init (s6gate:overlay, `make
// image-overlay`) rather than s6gate's own.
func (b *box) s6Overlay() bool {
	return b.fileExists("/package/admin/s6-overlay/libexec/preinit")
}

func (b *box) fileExists(p string) bool {
	code, _ := b.exec("", "test", "-e", p)
	return code == 0
}

type gstatus struct {
	Profile      string  `json:"profile"`
	Up           bool    `json:"up"`
	PID          *int    `json:"pid"`
	Ready        bool    `json:"ready"`
	GatewayState *string `json:"gateway_state"`
	DesiredState *string `json:"desired_state"`
}

func (b *box) status(p string) gstatus {
	b.t.Helper()
	out := b.gw("status", "-p", p, "--json")
	var s []gstatus
	require.NoError(b.t, json.Unmarshal([]byte(jsonPart(out)), &s), out)
	require.Len(b.t, s, 1)
	return s[0]
}

// jsonPart drops anything before the JSON document (warnings on the multiplexed stream).
func jsonPart(s string) string {
	if i := strings.IndexAny(s, "[{"); i > 0 {
		return s[i:]
	}
	return s
}

func (b *box) state(p string) map[string]any {
	b.t.Helper()
	path := "/opt/data/profiles/" + p + "/gateway_state.json"
	if p == "default" {
		path = "/opt/data/gateway_state.json"
	}
	code, out := b.exec("", "cat", path)
	if code != 0 {
		return map[string]any{}
	}
	var m map[string]any
	if json.Unmarshal([]byte(out), &m) != nil {
		return map[string]any{}
	}
	return m
}

// bootLines returns the boot-log lines of boot number n (1-based) for each profile, keyed by
// profile. Every boot logs the default profile first.
func (b *box) bootLines(n int) map[string]string {
	b.t.Helper()
	_, out := b.exec("", "cat", "/opt/data/logs/container-boot.log")
	boots := 0
	lines := map[string]string{}
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, " profile=default ") {
			boots++
		}
		if boots == n {
			for _, f := range strings.Fields(l) {
				if p, ok := strings.CutPrefix(f, "profile="); ok {
					lines[p] = l
				}
			}
		}
	}
	return lines
}

// waitBoot waits until boot number n has logged and the verbs answer again.
func (b *box) waitBoot(n int) {
	b.t.Helper()
	eventually(b.t, 60*time.Second, fmt.Sprintf("boot %d to finish", n), func() bool {
		if len(b.bootLines(n)) == 0 {
			return false
		}
		code, _ := b.exec("gateway", "gateway", "list")
		return code == 0
	})
}

func (b *box) restart() {
	b.t.Helper()
	timeout := 20
	_, err := b.cli.ContainerRestart(b.ctx, b.id(), client.ContainerRestartOptions{Timeout: &timeout})
	require.NoError(b.t, err)
}

func (b *box) logs() string {
	r, err := b.c.Logs(context.Background())
	if err != nil {
		return err.Error()
	}
	defer r.Close()
	var buf bytes.Buffer
	_, _ = io.Copy(&buf, r)
	return buf.String()
}

// waitUp waits until profile p is up, ready, and its gateway recorded running as that PID.
func (b *box) waitUp(p string) gstatus {
	b.t.Helper()
	var s gstatus
	eventually(b.t, 30*time.Second, p+" up and running", func() bool {
		s = b.status(p)
		st := b.state(p)
		return s.Up && s.Ready && s.PID != nil && st["gateway_state"] == "running" && st["pid"] == float64(*s.PID)
	})
	return s
}

func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
