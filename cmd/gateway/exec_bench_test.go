package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/s6gate/s6gate/internal/s6test"
	"github.com/s6gate/s6gate/pkg/s6"
)

// benchGateways is how many gateways BenchmarkSupervision runs in each mode.
const benchGateways = 50

// BenchmarkSupervision compares the two supervision modes side by side in one run, with
// benchGateways gateways each running `sleep` under real s6: the PSS of the supervision per
// gateway (the two s6-supervise, s6-log and, under the wrapper, `gateway run`; the command
// is not counted), and the CPU time the whole tree spends on a stop of all of them: first
// every slot brought down by s6 (s6-svc -d: the gateways' own stop, unplanned), then the
// supervision tree torn down (s6-svscanctl -t: s6-supervise, s6-log, s6-svscan exit), from a
// cpuacct cgroup that holds every process of the tree (needs root and cgroup v1's cpuacct; else only the
// memory is reported). Run with -benchtime 1x (`make bench` runs every benchmark once).
func BenchmarkSupervision(b *testing.B) {
	results := map[string]map[string]float64{}
	for _, mode := range []string{"wrapper", "exec"} {
		results[mode] = measureSupervision(b, mode)
	}
	for b.Loop() {
	}
	for mode, r := range results {
		for k, v := range r {
			b.ReportMetric(v, k+"-"+mode)
		}
	}
}

func measureSupervision(b *testing.B, mode string) map[string]float64 {
	e := s6test.NewEnv(b, nil)
	e.Extra = append(e.Extra, "GATEWAY_SUPERVISION="+mode)
	scan := e.Start()
	names := make([]string, benchGateways)
	for i := range names {
		names[i] = fmt.Sprintf("g%03d", i)
		s6test.WriteFile(b, filepath.Join(e.ProfileHome(names[i]), "profile.json"),
			`{"command": ["/bin/sleep", "100000"], "env": {"LC_ALL": "C"}, "settle": "0s"}`)
	}
	e.GiveToServiceUser()
	for _, n := range names {
		if r := e.Run("gateway", "register", n); r.Code != 0 {
			b.Fatalf("register %s: %s", n, r.Stderr)
		}
	}
	if r := e.Run("gateway", "start", "--all", "--timeout", "60s"); r.Code != 0 {
		b.Fatalf("%s: start --all: exit %d\n%s\n%s\n%s", mode, r.Code, r.Stdout, r.Stderr, scan.Output())
	}
	// Every gateway running (under exec supervision: settled).
	s6test.Eventually(b, 60*time.Second, "all gateways running", func() bool {
		r := e.Run("gateway", "status", "--json")
		var out []struct {
			Up, Ready    bool
			GatewayState *string `json:"gateway_state"`
		}
		if json.Unmarshal([]byte(r.Stdout), &out) != nil || len(out) != benchGateways {
			return false
		}
		for _, g := range out {
			if !g.Up || !g.Ready || g.GatewayState == nil || *g.GatewayState != "running" {
				return false
			}
		}
		return true
	})

	var supervise, logger, wrapper float64
	for _, n := range names {
		for _, pid := range supervisorsOf(scan, "gateway-"+n) {
			supervise += pss(b, pid)
		}
		for _, pid := range supervisorsOf(scan, "gateway-"+n+"/log") {
			for _, c := range children(pid) {
				logger += pss(b, atoiB(b, c))
			}
		}
		pid, _ := e.State(n)["pid"].(float64)
		if comm, _ := statOf(int(pid)); comm == "gateway" || comm == "s6gate" {
			wrapper += pss(b, int(pid))
		}
	}
	n := float64(benchGateways)
	r := map[string]float64{
		"kB-PSS/gateway":               (supervise + logger + wrapper) / n,
		"kB-PSS/gateway-s6-supervise2": supervise / n,
		"kB-PSS/gateway-s6-log":        logger / n,
		"kB-PSS/gateway-wrapper":       wrapper / n,
	}

	cg, ok := cpuacctGroup(b, scan.PID())
	if !ok {
		scan.Stop(b)
		return r
	}
	// First the gateways alone, as s6 brings a slot down (s6-svc -d: SIGTERM, no marker, so
	// an unplanned stop that persists running), then the rest of the tree (s6-supervise,
	// s6-log, the s6-svscan): together what a `docker stop` costs.
	for _, n := range names {
		if out, err := exec.Command(filepath.Join(e.CommandDir, "s6-svc"), "-d", e.Slot(n)).CombinedOutput(); err != nil {
			b.Fatalf("s6-svc -d %s: %v %s", n, err, out)
		}
	}
	s6test.Eventually(b, 60*time.Second, "every gateway down and finished", func() bool {
		for _, n := range names {
			st, err := s6.Tools{Dir: e.CommandDir}.ReadStatus(b.Context(), e.Slot(n))
			if err != nil || st.Up || st.Finishing {
				return false
			}
		}
		return true
	})
	down := cpuacctUsage(b, cg)
	scan.Stop(b)
	r["ms-CPU/down-per-gateway"] = float64(down) / 1e6 / n
	r["ms-CPU/teardown-per-gateway"] = float64(cpuacctUsage(b, cg)-down) / 1e6 / n
	return r
}

func atoiB(b *testing.B, s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		b.Fatal(err)
	}
	return n
}

// pss is the proportional set size of pid in kB (0 when it is gone).
func pss(b *testing.B, pid int) float64 {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/smaps_rollup")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "Pss:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb
		}
	}
	b.Fatalf("no Pss in /proc/%d/smaps_rollup", pid)
	return 0
}

// statOf is (comm, ppid) of pid, or ("", 0) when it is gone.
func statOf(pid int) (string, int) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0
	}
	open, end := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
	f := strings.Fields(string(data[end+2:]))
	ppid, _ := strconv.Atoi(f[1])
	return string(data[open+1 : end]), ppid
}

// cpuacctGroup makes a cpuacct cgroup (v1) and moves the process tree under root into it,
// so that its usage is the CPU time the tree spends from now on. ok is false where there is
// no such cgroup or no right to make one.
func cpuacctGroup(b *testing.B, root int) (string, bool) {
	base := "/sys/fs/cgroup/cpuacct"
	if _, err := os.Stat(filepath.Join(base, "cpuacct.usage")); err != nil || root == 0 {
		return "", false
	}
	cg := filepath.Join(base, fmt.Sprintf("s6gate-bench-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		return "", false
	}
	b.Cleanup(func() { _ = os.Remove(cg) })
	for _, p := range append(s6test.Descendants(root), s6test.Proc{PID: root}) {
		_ = os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte(strconv.Itoa(p.PID)), 0o644)
	}
	return cg, true
}

func cpuacctUsage(b *testing.B, cg string) int64 {
	data, err := os.ReadFile(filepath.Join(cg, "cpuacct.usage"))
	if err != nil {
		b.Fatal(err)
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64)
	return n
}
