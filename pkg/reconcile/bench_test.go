package reconcile_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/reconcile"
)

// BenchmarkReconcile1000 reconciles a data root of 1,000 profiles (half running, half
// stopped) into an empty scan directory on tmpfs, as at boot. Target: < 150 ms per run on a
// 2-core machine.
func BenchmarkReconcile1000(b *testing.B) {
	shm := "/dev/shm"
	if st, err := os.Stat(shm); err != nil || !st.IsDir() {
		b.Skip("no /dev/shm tmpfs")
	}
	root := b.TempDir()
	for i := range 1000 {
		home := filepath.Join(root, "profiles", fmt.Sprintf("p%04d", i))
		if err := os.MkdirAll(home, 0o755); err != nil {
			b.Fatal(err)
		}
		st := "running"
		if i%2 == 1 {
			st = "stopped"
		}
		if err := os.WriteFile(filepath.Join(home, "gateway_state.json"), []byte(`{"gateway_state":"`+st+`"}`), 0o640); err != nil {
			b.Fatal(err)
		}
	}
	scanBase, err := os.MkdirTemp(shm, "s6gate-bench-")
	if err != nil {
		b.Fatal(err)
	}
	defer os.RemoveAll(scanBase)
	opts := reconcile.Options{
		Settings: config.Settings{Home: root, CommandDir: "/usr/bin", User: "nobody", Bin: "/usr/local/bin/gateway"},
		Out:      io.Discard,
		Log:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	n := 0
	for b.Loop() {
		b.StopTimer()
		opts.Settings.ScanDir = filepath.Join(scanBase, fmt.Sprint(n))
		if err := os.Mkdir(opts.Settings.ScanDir, 0o755); err != nil {
			b.Fatal(err)
		}
		n++
		b.StartTimer()
		entries, err := reconcile.Run(context.Background(), opts)
		if err != nil || len(entries) != 1001 {
			b.Fatalf("reconcile: %d entries, %v", len(entries), err)
		}
		b.StopTimer()
		_ = os.RemoveAll(opts.Settings.ScanDir)
		b.StartTimer()
	}
	b.ReportMetric(1001, "profiles/op")
}
