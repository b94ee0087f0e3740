package main

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/safedir"
	"github.com/s6gate/s6gate/pkg/state"
)

// The whole-process benchmarks time what an operator (or /init) waits for at 1,000 gateways:
// the multi-call binary, built as `make build` builds it, started through a link named after
// the command, from its exec to its exit — Go runtime start, package initialisation, the work,
// the output and the exit — on a fixture in /dev/shm (a tmpfs, as the container's /run).
// Targets (issue 9): `gateway status --json` < 100 ms, `gw-reconcile --boot` < 150 ms.
//
// Each reports, per process, the median wall time (ms-wall) and the median CPU time the
// process used, user + system from its rusage (ms-cpu): on a shared machine the CPU time is
// the steadier figure. With S6GATE_BENCH_BASELINE=/path/to/an/older/s6gate every iteration
// also runs that binary on the same fixture, alternating which goes first, and reports its
// figures as base-ms-wall and base-ms-cpu: old and new measured in one run.

// processBenchProfiles is the number of profiles besides default.
const processBenchProfiles = 1000

// BenchmarkStatusProcess1000 runs `gateway status --json` of 1,001 supervised slots (1,000
// profiles and default, all up and running) as a whole process; its output (about 540 kB,
// as in the container) is read through a pipe.
//
// The fixture is not a real supervision tree: 1,000 s6-supervise processes (and their
// gateways) are too heavy for a benchmark. It is the files s6-supervise and the gateways
// write, with the locks they hold: per slot supervise/status (s6 2.11's 35-byte layout, up and
// ready) and supervise/lock, fcntl-locked by this process as s6-supervise locks it; the scan
// directory's .s6-svscan/control FIFO, held open for reading by this process as s6-svscan
// holds it; the boot token; and per profile a gateway_state.json written by state.Update as a
// running gateway writes it. status reads exactly these.
func BenchmarkStatusProcess1000(b *testing.B) {
	bins := processBenchBinaries(b)
	dir := shmDir(b)
	env := statusFixture(b, dir, processBenchProfiles)
	args := []string{"status", "--json"}
	var out []byte
	check := func(o []byte) {
		var st []struct {
			Profile string `json:"profile"`
			Up      bool   `json:"up"`
		}
		if err := json.Unmarshal(o, &st); err != nil || len(st) != processBenchProfiles+1 || !st[0].Up || !st[len(st)-1].Up {
			b.Fatalf("status --json: %d entries (%v): %.300s", len(st), err, o)
		}
	}
	for _, bin := range bins {
		out = runProcess(b, bin.gateway, env, args, nil).out
		check(out)
	}
	measureProcesses(b, bins, func(bin processBin) processRun {
		return runProcess(b, bin.gateway, env, args, nil)
	})
	b.ReportMetric(float64(len(out))/1000, "kB-output")
}

// BenchmarkReconcileProcess1000 runs `gw-reconcile --boot` of 1,001 profiles (1,000 and
// default, all meant to run) as at a container's start: an empty tmpfs scan directory that
// it makes anew, and homes left by killed gateways (a stale gateway.pid and the lock file's
// PID), which it sweeps. The fixture's homes are restored before every run, outside the
// timing; the run ends with its s6-svscanctl exec, which finds no s6-svscan (as at boot).
func BenchmarkReconcileProcess1000(b *testing.B) {
	bins := processBenchBinaries(b)
	dir := shmDir(b)
	env, restore := reconcileFixture(b, dir, processBenchProfiles)
	scan := filepath.Join(dir, "scan")
	run := func(bin processBin) processRun {
		b.StopTimer()
		restore()
		if err := os.RemoveAll(scan); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		r := runProcess(b, bin.reconcile, env, []string{"--boot"}, nil)
		b.StopTimer()
		if n := countSlots(b, scan); n != processBenchProfiles+1 {
			b.Fatalf("gw-reconcile --boot made %d slots, want %d: %.500s", n, processBenchProfiles+1, r.out)
		}
		b.StartTimer()
		return r
	}
	for _, bin := range bins {
		run(bin)
	}
	measureProcesses(b, bins, run)
}

// processBin is one multi-call binary under test, through links named like the commands.
type processBin struct {
	name               string // "" for the binary of this tree, "base" for the baseline
	gateway, reconcile string
}

// processBenchBinaries builds this tree's cmd/s6gate as `make build` does (static, stripped)
// and links the command names to it; with S6GATE_BENCH_BASELINE set, the baseline binary too.
func processBenchBinaries(b testing.TB) []processBin {
	b.Helper()
	dir := b.TempDir()
	s6gate := filepath.Join(dir, "s6gate")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w -buildid=", "-o", s6gate, ".")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	bins := []processBin{linkCommands(b, "", s6gate)}
	if base := os.Getenv("S6GATE_BENCH_BASELINE"); base != "" {
		abs, err := filepath.Abs(base)
		if err != nil {
			b.Fatal(err)
		}
		bins = append(bins, linkCommands(b, "base", abs))
	}
	return bins
}

func linkCommands(b testing.TB, name, s6gate string) processBin {
	b.Helper()
	dir := b.TempDir()
	p := processBin{name: name, gateway: filepath.Join(dir, "gateway"), reconcile: filepath.Join(dir, "gw-reconcile")}
	for _, l := range []string{p.gateway, p.reconcile} {
		if err := os.Symlink(s6gate, l); err != nil {
			b.Fatal(err)
		}
	}
	return p
}

// shmDir is a fresh directory on /dev/shm, removed when the benchmark ends.
func shmDir(b testing.TB) string {
	b.Helper()
	if st, err := os.Stat("/dev/shm"); err != nil || !st.IsDir() {
		b.Skip("no /dev/shm tmpfs")
	}
	dir, err := os.MkdirTemp("/dev/shm", "s6gate-procbench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// processRun is one whole process: its wall time, its CPU time (user + system) and its stdout.
type processRun struct {
	wall, cpu time.Duration
	out       []byte
}

// runProcess runs bin with args in env and fails the benchmark unless it exits 0.
func runProcess(b testing.TB, bin string, env, args []string, stdout io.Writer) processRun {
	b.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var out capture
	cmd.Stdout, cmd.Stderr = &out, &out
	if stdout != nil {
		cmd.Stdout = stdout
	}
	t0 := time.Now()
	err := cmd.Run()
	wall := time.Since(t0)
	if err != nil {
		b.Fatalf("%s %v: %v\n%.2000s", bin, args, err, out.b)
	}
	ru := cmd.ProcessState.SysUsage().(*syscall.Rusage)
	cpu := time.Duration(syscall.TimevalToNsec(ru.Utime) + syscall.TimevalToNsec(ru.Stime))
	return processRun{wall: wall, cpu: cpu, out: out.b}
}

// capture is a bytes.Buffer that keeps its memory from run to run.
type capture struct{ b []byte }

func (c *capture) Write(p []byte) (int, error) { c.b = append(c.b, p...); return len(p), nil }

// measureProcesses runs every binary once per iteration, alternating which goes first, and
// reports the medians.
func measureProcesses(b *testing.B, bins []processBin, run func(processBin) processRun) {
	b.Helper()
	runs := make([][]processRun, len(bins))
	i := 0
	for b.Loop() {
		for k := range bins {
			j := (k + i) % len(bins)
			runs[j] = append(runs[j], run(bins[j]))
		}
		i++
	}
	for j, bin := range bins {
		prefix := ""
		if bin.name != "" {
			prefix = bin.name + "-"
		}
		b.ReportMetric(medianMS(runs[j], func(r processRun) time.Duration { return r.wall }), prefix+"ms-wall")
		b.ReportMetric(medianMS(runs[j], func(r processRun) time.Duration { return r.cpu }), prefix+"ms-cpu")
	}
}

func medianMS(runs []processRun, f func(processRun) time.Duration) float64 {
	if len(runs) == 0 {
		return 0
	}
	ds := make([]time.Duration, len(runs))
	for i, r := range runs {
		ds[i] = f(r)
	}
	slices.Sort(ds)
	return float64(ds[len(ds)/2]) / 1e6
}

// benchProfiles is default and p0000 … p<n-1>.
func benchProfiles(n int) []string {
	names := []string{"default"}
	for i := range n {
		names = append(names, fmt.Sprintf("p%04d", i))
	}
	return names
}

// benchHome makes (if needed) and opens a profile's home under root.
func benchHome(b testing.TB, root, name string) *safedir.Dir {
	b.Helper()
	rel := ""
	if name != "default" {
		rel = "profiles/" + name
	}
	d, _, err := safedir.MkdirAll(root, rel, 0o755)
	if err != nil {
		b.Fatal(err)
	}
	return d
}

// processEnv is the environment of the commands: the fixture's data root and scan directory,
// the host's s6 tools, and the caller as the service user (no privileges to drop).
func processEnv(b testing.TB, root, scan string) []string {
	b.Helper()
	self := strconv.Itoa(os.Geteuid())
	if os.Geteuid() == 0 {
		self = "root"
	}
	return []string{"PATH=/usr/bin:/bin", "GATEWAY_HOME=" + root, "GATEWAY_SCANDIR=" + scan,
		"S6_COMMAND_DIR=/usr/bin", "GATEWAY_USER=" + self, "GATEWAY_BIN=/usr/local/bin/gateway"}
}

// statusFixture lays out n+1 supervised, running gateways under dir (see
// BenchmarkStatusProcess1000) and returns the commands' environment. The locks and the FIFO's
// reader are held until the benchmark ends.
func statusFixture(b testing.TB, dir string, n int) []string {
	b.Helper()
	root, scan := filepath.Join(dir, "data"), filepath.Join(dir, "scan")
	for _, d := range []string{root, filepath.Join(scan, ".s6-svscan")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	control := filepath.Join(scan, ".s6-svscan", "control")
	if err := unix.Mkfifo(control, 0o600); err != nil {
		b.Fatal(err)
	}
	held := []int{}
	b.Cleanup(func() {
		for _, fd := range held {
			unix.Close(fd)
		}
	})
	fd, err := unix.Open(control, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	held = append(held, fd)
	const token = "0123456789abcdef0123456789abcdef"
	if err := os.WriteFile(filepath.Join(scan, state.BootFile), []byte(token+"\n"), 0o644); err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	up := now.Add(-10 * time.Minute)
	for i, name := range benchProfiles(n) {
		sup := filepath.Join(scan, "gateway-"+name, "supervise")
		if err := os.MkdirAll(sup, 0o755); err != nil {
			b.Fatal(err)
		}
		lock, err := unix.Open(filepath.Join(sup, "lock"), unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o644)
		if err != nil {
			b.Fatal(err)
		}
		held = append(held, lock)
		if err := unix.FcntlFlock(uintptr(lock), unix.F_SETLK, &unix.Flock_t{Type: unix.F_WRLCK}); err != nil {
			b.Fatal(err)
		}
		pid := 2000 + 3*i
		if err := os.WriteFile(filepath.Join(sup, "status"), s6Status211(up, pid), 0o644); err != nil {
			b.Fatal(err)
		}
		home := benchHome(b, root, name)
		start := uint64(40000 + i)
		started := up.Add(5 * time.Millisecond)
		_, err = state.Update(home, up, func(s *state.State) {
			s.GatewayState, s.DesiredState, s.PID, s.StartTime = state.Running, state.Running, pid, &start
			s.BootID, s.CommandStartedAt = "boot-"+token, started.UTC().Format(state.TimeFormat)
		})
		home.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
	return processEnv(b, root, scan)
}

// s6Status211 is the supervise/status file s6-supervise 2.11 writes for a service up and
// ready since at, with pid, wanted up: TAI64N stamp, TAI64N readiness stamp, pid (8 bytes),
// wait status (2 bytes), flags.
func s6Status211(at time.Time, pid int) []byte {
	b := make([]byte, 35)
	tai := uint64(1<<62+37) + uint64(at.Unix())
	for _, off := range []int{0, 12} {
		binary.BigEndian.PutUint64(b[off:], tai)
		binary.BigEndian.PutUint32(b[off+8:], uint32(at.Nanosecond()))
	}
	binary.BigEndian.PutUint64(b[24:], uint64(pid))
	b[34] = 1<<2 | 1<<3 // want up, ready
	return b
}

// reconcileFixture lays out n+1 profiles under dir/data, each with the state file of a
// running gateway, and returns the commands' environment (scan directory dir/scan) and a
// function that puts back what a killed gateway leaves: gateway.pid and the lock file's PID.
func reconcileFixture(b testing.TB, dir string, n int) (env []string, restore func()) {
	b.Helper()
	root := filepath.Join(dir, "data")
	if err := os.Mkdir(root, 0o755); err != nil {
		b.Fatal(err)
	}
	names := benchProfiles(n)
	now := time.Now()
	for i, name := range names {
		home := benchHome(b, root, name)
		start := uint64(40000 + i)
		_, err := state.Update(home, now, func(s *state.State) {
			s.GatewayState, s.DesiredState, s.PID, s.StartTime = state.Running, state.Running, 2000+3*i, &start
			s.BootID, s.CommandStartedAt = "boot-0123456789abcdef0123456789abcdef", now.UTC().Format(state.TimeFormat)
		})
		home.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
	restore = func() {
		for i, name := range names {
			home := filepath.Join(root, "profiles", name)
			if name == "default" {
				home = root
			}
			pid := 2000 + 3*i
			if err := os.WriteFile(filepath.Join(home, "gateway.pid"), fmt.Appendf(nil, "{\"pid\": %d, \"start_time\": %d}\n", pid, 40000+i), 0o640); err != nil {
				b.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(home, "gateway.lock"), fmt.Appendf(nil, "%d\n", pid), 0o640); err != nil {
				b.Fatal(err)
			}
		}
	}
	return processEnv(b, root, filepath.Join(dir, "scan")), restore
}

// countSlots counts the slot directories in scan.
func countSlots(b testing.TB, scan string) int {
	b.Helper()
	entries, err := os.ReadDir(scan)
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.IsDir() && e.Name()[0] != '.' {
			n++
		}
	}
	return n
}
