package main_test

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/s6gate/s6gate/internal/s6test"
)

// BenchmarkFootprint reports, once per run, the size of every binary as `make build` makes
// it (static, stripped) and the resident memory of an idle built-in gateway, started from the
// single binary and through a `gateway` link to the multi-call binary s6gate (what the image
// runs). Targets: each binary < 5 MB, idle gateway < 10 MB RSS.
func BenchmarkFootprint(b *testing.B) {
	dir := b.TempDir()
	sizes := map[string]float64{}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	for _, c := range []string{"gateway", "gw-reconcile", "gw-render", "gw-mark", "with-contenv", "printcontenv", "init", "s6-rc", "s6gate"} {
		if _, err := os.Stat(filepath.Join("..", c)); err != nil {
			continue
		}
		cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", filepath.Join(dir, c), "./cmd/"+c)
		cmd.Dir = filepath.Join("..", "..")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			b.Fatalf("build %s: %v\n%s", c, err, out)
		}
		st, err := os.Stat(filepath.Join(dir, c))
		if err != nil {
			b.Fatal(err)
		}
		sizes[c] = float64(st.Size()) / 1e6
	}

	mc := filepath.Join(b.TempDir(), "gateway")
	if err := os.Symlink(filepath.Join(dir, "s6gate"), mc); err != nil {
		b.Fatal(err)
	}
	rss := idleRSS(b, filepath.Join(dir, "gateway"))
	rssMulticall := idleRSS(b, mc)
	for b.Loop() {
	}
	// After the loop: b.Loop resets the timer, and with it any metric reported before.
	for c, mb := range sizes {
		b.ReportMetric(mb, "MB-"+c)
	}
	b.ReportMetric(rss, "MB-rss-idle-gateway")
	b.ReportMetric(rssMulticall, "MB-rss-idle-gateway-multicall")
}

// idleRSS starts `gateway run -p default` from bin on a fresh data root and returns its
// resident memory once it recorded running.
func idleRSS(b *testing.B, bin string) float64 {
	root := b.TempDir()
	gw := exec.Command(bin, "run", "-p", "default")
	gw.Env = []string{"GATEWAY_HOME=" + root, "GATEWAY_USER=" + strconv.Itoa(os.Getuid())}
	if err := gw.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = gw.Process.Signal(syscall.SIGTERM); _ = gw.Wait() }()
	s6test.Eventually(b, 10*time.Second, "idle gateway running", func() bool {
		s, _ := os.ReadFile(filepath.Join(root, "gateway_state.json"))
		return strings.Contains(string(s), `"running"`)
	})
	return rssMB(b, gw.Process.Pid)
}

func rssMB(b *testing.B, pid int) float64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if kb, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			n, err := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(kb), "kB")))
			if err != nil {
				b.Fatal(err)
			}
			return float64(n) / 1024
		}
	}
	b.Fatal("no VmRSS")
	return 0
}
