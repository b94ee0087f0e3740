package probe_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/internal/s6test"
	"github.com/s6gate/s6gate/pkg/bootrecord"
	"github.com/s6gate/s6gate/pkg/probe"
	"github.com/s6gate/s6gate/pkg/svchealth"
)

func TestMain(m *testing.M) { s6test.Main(m) }

// tree is a root tree (services.d copies linked into its scan directory, as /init lays them
// out) and a gateways' tree, each under a real s6-svscan.
type tree struct {
	p     probe.Paths
	root  *s6test.Scan
	gates *s6test.Scan
}

func newTree(t *testing.T, services map[string]string) *tree {
	t.Helper()
	s6test.Require(t)
	base := t.TempDir()
	p := probe.Paths{
		ScanDir: filepath.Join(base, "gateways"),
		Services: svchealth.Paths{Scandir: filepath.Join(base, "service"), LegacyServices: filepath.Join(base, "legacy"),
			S6rcLive: filepath.Join(base, "s6-rc"), History: filepath.Join(base, "history.json")},
	}
	require.NoError(t, os.MkdirAll(p.Services.Scandir, 0o755))
	for name, run := range services {
		dir := filepath.Join(p.Services.LegacyServices, name)
		s6test.WriteFile(t, filepath.Join(dir, "run"), "#!/bin/sh\n"+run+"\n")
		require.NoError(t, os.Chmod(filepath.Join(dir, "run"), 0o755))
		require.NoError(t, os.Symlink(dir, filepath.Join(p.Services.Scandir, name)))
	}
	return &tree{p: p, root: s6test.StartScan(t, p.Services.Scandir)}
}

// gateways starts the gateways' tree with one gateway slot that crash-loops: the gateway is
// as unhealthy as one can be, which is none of the probes' business.
func (tr *tree) gateways(t *testing.T) {
	t.Helper()
	slot := filepath.Join(tr.p.ScanDir, "gateway-bad")
	s6test.WriteFile(t, filepath.Join(slot, "run"), "#!/bin/sh\nexit 1\n")
	require.NoError(t, os.Chmod(filepath.Join(slot, "run"), 0o755))
	tr.gates = s6test.StartScan(t, tr.p.ScanDir)
}

func boot(t *testing.T, tr *tree, st string) {
	t.Helper()
	require.NoError(t, bootrecord.Write(tr.p.ScanDir, bootrecord.Record{State: st, Step: "check the data root", Reason: "read-only", Fix: "mount it read-write"}))
}

// Readiness is the container's services, never a gateway's health: a crash-looping gateway
// leaves the container ready.
func TestReadyWithACrashLoopingGateway(t *testing.T) {
	tr := newTree(t, map[string]string{"app": "exec sleep 1000"})
	require.NoError(t, os.MkdirAll(tr.p.ScanDir, 0o755))
	boot(t, tr, bootrecord.OK)
	tr.gateways(t)
	s6test.Eventually(t, 10*time.Second, "ready", func() bool {
		return probe.Ready(tr.p, time.Now().Add(time.Hour), time.Second).Err == nil
	})
	v := probe.Live(tr.p)
	require.NoError(t, v.Err)
	require.False(t, v.Partial)
}

func TestNotReadyWhileAServiceIsDown(t *testing.T) {
	tr := newTree(t, map[string]string{"app": "exec sleep 1000", "sidecar": "exit 1"})
	boot(t, tr, bootrecord.OK)
	tr.gateways(t)
	// Within the grace, a service that is down does not count yet; an hour on it does.
	require.NoError(t, probe.Ready(tr.p, time.Now(), time.Hour).Err)
	var err error
	s6test.Eventually(t, 10*time.Second, "sidecar reported", func() bool {
		err = probe.Ready(tr.p, time.Now().Add(time.Hour), time.Second).Err
		return err != nil
	})
	require.ErrorIs(t, err, probe.ErrServiceDown)
	require.Contains(t, err.Error(), "services.d/sidecar")
	require.NoError(t, probe.Live(tr.p).Err, "a service down is no reason to restart the container")
}

func TestBootStates(t *testing.T) {
	tr := newTree(t, nil)
	require.NoError(t, os.MkdirAll(tr.p.ScanDir, 0o755))

	// Booting: not ready, but live (the gateways' scanner is not up yet, and need not be).
	boot(t, tr, bootrecord.Booting)
	require.ErrorIs(t, probe.Ready(tr.p, time.Now(), time.Second).Err, probe.ErrBooting)
	require.NoError(t, probe.Live(tr.p).Err)

	// Failed: not ready, saying why; live (a restart would fail the same way).
	boot(t, tr, bootrecord.Failed)
	err := probe.Ready(tr.p, time.Now(), time.Second).Err
	require.ErrorContains(t, err, "the boot failed (check the data root): read-only; fix: mount it read-write")
	require.NoError(t, probe.Live(tr.p).Err)

	// Booted, and the gateways' scanner answers: ready and live.
	boot(t, tr, bootrecord.OK)
	tr.gateways(t)
	require.NoError(t, probe.Ready(tr.p, time.Now(), time.Second).Err)
	require.NoError(t, probe.Live(tr.p).Err)

	// The gateways' scanner gone after a good boot: neither.
	tr.gates.Stop(t)
	require.ErrorIs(t, probe.Live(tr.p).Err, probe.ErrScannerDown)
	require.ErrorIs(t, probe.Ready(tr.p, time.Now(), time.Second).Err, probe.ErrScannerDown)

	// The root tree's scanner gone: not live.
	tr.root.Stop(t)
	require.ErrorIs(t, probe.Live(tr.p).Err, probe.ErrScannerDown)
	require.ErrorContains(t, probe.Live(tr.p).Err, tr.p.Services.Scandir)
}

// No boot record (a host's plain s6-svscan, no gw-reconcile --boot): the scanner answering is
// the boot's end.
func TestNoBootRecord(t *testing.T) {
	tr := newTree(t, nil)
	require.NoError(t, os.MkdirAll(tr.p.ScanDir, 0o755))
	require.ErrorIs(t, probe.Ready(tr.p, time.Now(), time.Second).Err, probe.ErrBooting)
	require.NoError(t, probe.Live(tr.p).Err)
	tr.gateways(t)
	require.NoError(t, probe.Ready(tr.p, time.Now(), time.Second).Err)
}
