package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/client"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"
)

// BenchmarkScale grows one container to 10, 100 and 1,000 gateways (S6GATE_SCALE_SIZES, a
// comma-separated list, changes the sizes; -short runs 10 only) and measures, at each size,
// what an operator waits for:
//
//   - register: the growth to the size in ONE `docker exec sh -c` — gateways registered
//     16 at a time with `gateway register NAME --start --env LC_ALL=C -- sleep 100000`, except the last 10,
//     which a sequential loop registers to time one register at that size. A register
//     --start returns once the command has settled (the default settle time, 1 s), so a
//     sequential loop is bounded by 1 s per gateway.
//   - status: `gateway status --json` of every slot, a whole process timed inside the
//     container (median of 5).
//   - reconcile: `gw-reconcile --boot` of every profile as a whole process, timed inside the
//     container on a scan directory of its own (median of 3), and the boot's own figure,
//     /init's "cont-init: 20-s6gate-reconcile exited 0 (N ms)" after the restart.
//   - memory: the PSS of the supervision around each gateway (the `gateway run` wrapper, its
//     two s6-supervise, its s6-log; not the user's `sleep`), read on the host from
//     /proc/<pid>/smaps_rollup of the container's processes.
//   - restart: from `docker restart` returning until every gateway is up, ready and recorded
//     running by its new process; then `docker stop`, and `docker start` until all run again.
//
// LC_ALL=C keeps sleep from opening the image's C.UTF-8 locale files (LANG=C.UTF-8): where
// Docker's storage driver is fuse-overlayfs (this build machine), every file a process of the
// container maps is a descriptor of the one fuse-overlayfs process, whose limit (dockerd's
// LimitNOFILE, 20,000 here) then caps the container — at about 640 gateways running a
// localised sleep (31 descriptors each), about 1,100 with LC_ALL=C (18). overlay2 has no such
// limit. See docs/PERFORMANCE.md.
//
// The container gets a tmpfs /run (docker run --tmpfs /run:exec), where the gateways' scan
// directory and every s6-supervise's files live, as docs/PERFORMANCE.md recommends for many
// gateways; S6GATE_SCALE_RUN_TMPFS=0 keeps the image's /run (on the storage driver).
//
// It runs once per supervision mode (S6GATE_SCALE_MODES, default "wrapper,exec"), each in a
// container of its own with GATEWAY_SUPERVISION set, and prints one table per mode (make bench;
// docs/PERFORMANCE.md records one run). A size of 1,000 takes a few minutes on a 2-core machine.
func BenchmarkScale(b *testing.B) {
	for _, mode := range scaleModes(b) {
		b.Run(mode, func(b *testing.B) { benchmarkScale(b, mode) })
	}
}

// scaleModes are the supervision modes BenchmarkScale measures, each in a container of its own
// (GATEWAY_SUPERVISION): the resident `gateway run` wrapper (the default) and exec supervision.
// S6GATE_SCALE_MODES (comma-separated) picks some.
func scaleModes(b *testing.B) []string {
	spec := os.Getenv("S6GATE_SCALE_MODES")
	if spec == "" {
		spec = "wrapper,exec"
	}
	var out []string
	for _, f := range strings.Split(spec, ",") {
		f = strings.TrimSpace(f)
		require.Contains(b, []string{"wrapper", "exec"}, f, "S6GATE_SCALE_MODES=%q", spec)
		out = append(out, f)
	}
	return out
}

func benchmarkScale(b *testing.B, mode string) {
	sizes := scaleSizes(b)
	var opts []testcontainers.ContainerCustomizer
	runOn := "the image's /run"
	if os.Getenv("S6GATE_SCALE_RUN_TMPFS") != "0" {
		opts = append(opts, testcontainers.WithHostConfigModifier(func(hc *container.HostConfig) {
			hc.Tmpfs = map[string]string{"/run": "exec"}
		}))
		runOn = "--tmpfs /run:exec"
	}
	bx := start(b, map[string]string{"GATEWAY_SUPERVISION": mode}, opts...)
	var rows []scaleRow
	have := 0
	for b.Loop() {
		for _, n := range sizes {
			rows = append(rows, bx.scaleTo(have, n, mode))
			have = n
			printScaleTable(rows, runOn, mode) // so far: a failure at a larger size keeps these
		}
	}
	last := rows[len(rows)-1]
	b.ReportMetric(last.registerEach.Seconds()*1000, "ms-register-each")
	b.ReportMetric(float64(last.restart.Milliseconds()), "ms-restart-to-running")
	b.ReportMetric(float64(last.stop.Milliseconds()), "ms-docker-stop")
	b.ReportMetric(last.status.Seconds()*1000, "ms-status-json")
	b.ReportMetric(last.reconcile.Seconds()*1000, "ms-reconcile")
	b.ReportMetric(last.mem.perGateway()/1e3, "kB-pss-per-gateway")
}

func scaleSizes(b *testing.B) []int {
	spec := os.Getenv("S6GATE_SCALE_SIZES")
	if spec == "" {
		spec = "10,100,1000"
		if testing.Short() {
			spec = "10"
		}
	}
	var out []int
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		require.NoError(b, err, "S6GATE_SCALE_SIZES=%q", spec)
		require.True(b, n >= 10 && (len(out) == 0 || n > out[len(out)-1]), "S6GATE_SCALE_SIZES: increasing sizes of at least 10")
		out = append(out, n)
	}
	return out
}

type scaleRow struct {
	n              int
	registerAll    time.Duration // the growth to n, one docker exec
	registered     int           // how many the growth registered
	registerEach   time.Duration // mean of the last 10, registered one after another
	status         time.Duration // gateway status --json, whole process, median
	reconcile      time.Duration // gw-reconcile --boot, whole process, median
	bootReconcile  time.Duration // the boot's cont-init hook, as /init timed it
	restart        time.Duration // docker restart returned → all running
	restartCall    time.Duration // the docker restart call itself
	stop           time.Duration // docker stop
	startToRunning time.Duration // docker start returned → all running
	mem            scaleMem
	statusBytes    int // its output
}

// scaleTo registers gateways have+1..n and measures the container at n gateways (mode: its
// GATEWAY_SUPERVISION).
func (bx *box) scaleTo(have, n int, mode string) scaleRow {
	b := bx.t
	b.Helper()
	r := scaleRow{n: n}
	seq := 10
	par := n - have - seq
	script := `set -e
reg() { gateway register "$1" --start --env LC_ALL=C -- sleep 100000 >/dev/null; }
if [ "$2" -gt 0 ]; then
  seq "$1" "$(($1 + $2 - 1))" | xargs -P 16 -I{} sh -c 'gateway register "s{}" --start --env LC_ALL=C -- sleep 100000 >/dev/null'
fi
t0=$(date +%s%N)
i=$(($1 + $2))
while [ "$i" -lt "$(($1 + $2 + $3))" ]; do reg "s$i"; i=$((i + 1)); done
t1=$(date +%s%N)
echo "seq_ns=$((t1 - t0))"`
	t0 := time.Now()
	code, out := bx.exec("gateway", "sh", "-c", script, "grow", strconv.Itoa(have), strconv.Itoa(max(par, 0)), strconv.Itoa(seq))
	r.registerAll = time.Since(t0)
	require.Equal(b, 0, code, "register %d..%d: %s", have, n, out)
	r.registered = n - have
	r.registerEach = time.Duration(scriptNS(b, out, "seq_ns") / int64(seq))

	bx.waitAllRunning(n, 120*time.Second)
	r.mem = bx.scaleMemory(n, mode)
	r.status, r.statusBytes = bx.timeInside(5, "gateway", "gateway status --json")
	r.reconcile, _ = bx.timeInside(3, "", `d=/run/s6gate-bench-scan; GATEWAY_SCANDIR=$d gw-reconcile --boot >/dev/null 2>&1; rc=$?; rm -rf $d; exit $rc`)

	t1 := time.Now()
	bx.restart()
	r.restartCall = time.Since(t1)
	t2 := time.Now()
	bx.waitAllRunning(n, 120*time.Second)
	r.restart = time.Since(t2)
	r.bootReconcile = bx.bootReconcileTime()

	timeout := 30
	t3 := time.Now()
	_, err := bx.cli.ContainerStop(bx.ctx, bx.id(), client.ContainerStopOptions{Timeout: &timeout})
	require.NoError(b, err)
	r.stop = time.Since(t3)
	_, err = bx.cli.ContainerStart(bx.ctx, bx.id(), client.ContainerStartOptions{})
	require.NoError(b, err)
	t4 := time.Now()
	bx.waitAllRunning(n, 120*time.Second)
	r.startToRunning = time.Since(t4)
	return r
}

func scriptNS(b testing.TB, out, key string) int64 {
	for _, f := range strings.Fields(out) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			require.NoError(b, err)
			return n
		}
	}
	b.Fatalf("no %s= in %q", key, out)
	return 0
}

// timeInside runs the shell command cmd in the container k times, each timed there (from
// before its exec to after its exit, so docker exec's own cost is left out), and returns the
// median and the size of the last output.
func (bx *box) timeInside(k int, user, cmd string) (time.Duration, int) {
	b := bx.t
	b.Helper()
	script := fmt.Sprintf(`i=0; while [ $i -lt %d ]; do
t0=$(date +%%s%%N); out=$( { %s ; } 2>&1 ); rc=$?; t1=$(date +%%s%%N)
[ $rc = 0 ] || { echo "rc=$rc $out" | head -c 2000; exit 1; }
echo "ns=$((t1 - t0)) bytes=${#out}"; i=$((i + 1)); done`, k, cmd)
	code, out := bx.exec(user, "sh", "-c", script)
	require.Equal(b, 0, code, "%s: %s", cmd, out)
	var ds []time.Duration
	size := 0
	for _, l := range strings.Split(out, "\n") {
		var ns int64
		var n int
		if i := strings.Index(l, "ns="); i >= 0 {
			if _, err := fmt.Sscanf(l[i:], "ns=%d bytes=%d", &ns, &n); err == nil {
				ds = append(ds, time.Duration(ns))
				size = n
			}
		}
	}
	require.Len(b, ds, k, out)
	slices.Sort(ds)
	return ds[len(ds)/2], size
}

// waitAllRunning waits until `gateway status --json` shows n gateways (besides default) up,
// ready and recorded running by their current process. It polls every n ms (at least 50 ms),
// so the figure is that much coarser at 1,000.
func (bx *box) waitAllRunning(n int, d time.Duration) {
	b := bx.t
	b.Helper()
	deadline := time.Now().Add(d)
	last := ""
	for {
		code, out := bx.exec("gateway", "gateway", "status", "--json")
		up := 0
		if code == 0 {
			var st []gstatus
			if json.Unmarshal([]byte(jsonPart(out)), &st) == nil {
				for _, s := range st {
					if s.Profile != "default" && s.Up && s.Ready && s.GatewayState != nil && *s.GatewayState == "running" {
						up++
					}
				}
			}
			last = fmt.Sprintf("%d of %d running", up, n)
		} else {
			last = fmt.Sprintf("status exit %d: %.300s", code, out)
		}
		if up >= n {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("after %s: %s", d, last)
		}
		// A status of 1,000 gateways costs about 0.1 s of CPU (and a docker exec more): polled
		// every 50 ms it would take half of a 2-core machine from the boot it measures.
		time.Sleep(max(50*time.Millisecond, time.Duration(n)*time.Millisecond))
	}
}

var contInitRe = regexp.MustCompile(`cont-init: 20-s6gate-reconcile exited 0 \((\d+) ms\)`)

// bootReconcileTime is /init's own timing of the last boot's reconcile hook.
func (bx *box) bootReconcileTime() time.Duration {
	b := bx.t
	b.Helper()
	insp, err := bx.cli.ContainerInspect(bx.ctx, bx.id(), client.ContainerInspectOptions{})
	require.NoError(b, err)
	r, err := bx.cli.ContainerLogs(bx.ctx, bx.id(), client.ContainerLogsOptions{ShowStdout: true, ShowStderr: true, Since: insp.Container.State.StartedAt})
	require.NoError(b, err)
	defer r.Close()
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var ms int64 = -1
	for sc.Scan() {
		if m := contInitRe.FindSubmatch(sc.Bytes()); m != nil {
			ms, _ = strconv.ParseInt(string(m[1]), 10, 64)
		}
	}
	if ms < 0 {
		return -1
	}
	return time.Duration(ms) * time.Millisecond
}

// scaleMem is the PSS of the container's processes by kind, in bytes.
type scaleMem struct {
	n                                        int
	wrapper, supervise, logger, user, shared int64
	count                                    map[string]int
}

func (m scaleMem) perGateway() float64 {
	return float64(m.wrapper+m.supervise+m.logger) / float64(m.n)
}

// scaleMemory reads, on the host, /proc/<pid>/smaps_rollup of every process of the container
// (the descendants of its PID 1) and sums PSS by kind: the `gateway run` wrappers, the
// s6-supervise of the gateways' tree, the s6-log loggers, the users' commands (sleep), and the
// rest (init, the root tree, the gateways' s6-svscan), shared by all gateways.
func (bx *box) scaleMemory(n int, mode string) scaleMem {
	b := bx.t
	b.Helper()
	insp, err := bx.cli.ContainerInspect(bx.ctx, bx.id(), client.ContainerInspectOptions{})
	require.NoError(b, err)
	root := insp.Container.State.Pid
	require.NotZero(b, root)
	type pinfo struct {
		ppid int
		comm string
	}
	procs := map[int]pinfo{}
	ents, err := os.ReadDir("/proc")
	require.NoError(b, err)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		raw, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		i, j := bytes.IndexByte(raw, '('), bytes.LastIndexByte(raw, ')')
		if i < 0 || j < i {
			continue
		}
		f := strings.Fields(string(raw[j+1:]))
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		procs[pid] = pinfo{ppid: ppid, comm: string(raw[i+1 : j])}
	}
	inContainer := func(pid int) bool {
		for k := 0; pid > 1 && k < 64; k++ {
			if pid == root {
				return true
			}
			pid = procs[pid].ppid
		}
		return false
	}
	m := scaleMem{n: n, count: map[string]int{}}
	for pid, p := range procs {
		if !inContainer(pid) {
			continue
		}
		pss := pssOf(pid)
		parent := procs[p.ppid]
		var kind string
		switch {
		case p.comm == "gateway":
			kind, m.wrapper = "gateway run", m.wrapper+pss
		case p.comm == "s6-supervise" && (parent.comm == "s6-svscan" || parent.comm == "gw-svscan") && p.ppid != root:
			kind, m.supervise = "s6-supervise", m.supervise+pss
		case p.comm == "s6-log":
			kind, m.logger = "s6-log", m.logger+pss
		case p.comm == "sleep":
			kind, m.user = "sleep", m.user+pss
		default:
			kind, m.shared = "other", m.shared+pss
		}
		m.count[kind]++
	}
	wrappers := n
	if mode == "exec" {
		// Exec supervision: the command is s6-supervise's child, and nothing of s6gate stays
		// beside it.
		wrappers = 0
	}
	require.Equal(b, wrappers, m.count["gateway run"], "gateway run wrappers (%s supervision) in %v", mode, m.count)
	require.Equal(b, n, m.count["sleep"], "users' commands in %v", m.count)
	return m
}

func pssOf(pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "Pss:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	return 0
}

func printScaleTable(rows []scaleRow, runOn, mode string) {
	var w strings.Builder
	fmt.Fprintf(&w, "\nBenchmarkScale/%s: one container (%s, GATEWAY_SUPERVISION=%s), gateways running `sleep 100000`\n", mode, runOn, mode)
	line := func(label string, f func(r scaleRow) string) {
		fmt.Fprintf(&w, "| %-58s |", label)
		for _, r := range rows {
			fmt.Fprintf(&w, " %12s |", f(r))
		}
		w.WriteString("\n")
	}
	ms := func(d time.Duration) string {
		if d < 0 {
			return "—"
		}
		return fmt.Sprintf("%.0f ms", d.Seconds()*1000)
	}
	kb := func(v float64) string { return fmt.Sprintf("%.0f kB", v/1e3) }
	line("gateways", func(r scaleRow) string { return strconv.Itoa(r.n) })
	fmt.Fprintf(&w, "|%s|%s\n", strings.Repeat("-", 60), strings.Repeat("--------------|", len(rows)))
	line("register: growth to this size, one docker exec (16 at once)", func(r scaleRow) string {
		return fmt.Sprintf("%.1f s/%d", r.registerAll.Seconds(), r.registered)
	})
	line("register --start, one (sequential loop of 10; 1 s settle)", func(r scaleRow) string { return ms(r.registerEach) })
	line("docker restart → all running", func(r scaleRow) string { return ms(r.restart) })
	line("  (the docker restart call)", func(r scaleRow) string { return ms(r.restartCall) })
	line("docker stop", func(r scaleRow) string { return ms(r.stop) })
	line("docker start → all running", func(r scaleRow) string { return ms(r.startToRunning) })
	line("gateway status --json, whole process", func(r scaleRow) string { return ms(r.status) })
	line("  (its output)", func(r scaleRow) string { return fmt.Sprintf("%d kB", r.statusBytes/1000) })
	line("gw-reconcile --boot, whole process (runtime, own scan dir)", func(r scaleRow) string { return ms(r.reconcile) })
	line("gw-reconcile at boot (/init's cont-init timing)", func(r scaleRow) string { return ms(r.bootReconcile) })
	line("PSS per gateway: wrapper + 2 s6-supervise + s6-log", func(r scaleRow) string { return kb(r.mem.perGateway()) })
	line("  gateway run wrapper", func(r scaleRow) string { return kb(float64(r.mem.wrapper) / float64(r.n)) })
	line("  s6-supervise ×2", func(r scaleRow) string { return kb(float64(r.mem.supervise) / float64(r.n)) })
	line("  s6-log", func(r scaleRow) string { return kb(float64(r.mem.logger) / float64(r.n)) })
	line("  (user's sleep, not counted)", func(r scaleRow) string { return kb(float64(r.mem.user) / float64(r.n)) })
	line("  (shared: init, root tree, gateways' s6-svscan; total)", func(r scaleRow) string { return kb(float64(r.mem.shared)) })
	fmt.Print(w.String())
}
