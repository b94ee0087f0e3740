package e2e

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// PeerImage is a real s6-overlay (3.2.3.0, compiled from source by `make peer-image`) on the
// same Debian base as s6gate: the reference the differential tests and the benchmark compare
// s6gate with. $PEER_IMAGE overrides it.
var PeerImage = envOr("PEER_IMAGE", "s6gate-peer:s6-overlay-3.2.3.0")

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

var (
	peerOnce sync.Once
	peerWhy  string // why the peer image cannot be had ("" when it is there)
)

// requirePeer makes sure PeerImage exists: when it is missing it is built once per run with
// docker/s6-overlay/mkpeer.sh (what `make peer-image` runs; it compiles s6-overlay from
// ../shared/peers/s6-overlay, or $S6_OVERLAY_PEER, in about 2 minutes). When that cannot be
// done the test skips locally and fails under CI=true.
func requirePeer(t testing.TB) {
	t.Helper()
	requireEngine(t)
	peerOnce.Do(func() {
		if dockerOK("image", "inspect", PeerImage) {
			return
		}
		t.Logf("%s is missing: building it with docker/s6-overlay/mkpeer.sh", PeerImage)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "../docker/s6-overlay/mkpeer.sh", "image")
		cmd.Env = append(os.Environ(), "PEER_IMAGE="+PeerImage)
		out, err := cmd.CombinedOutput()
		t.Logf("mkpeer.sh:\n%s", out)
		if err != nil {
			peerWhy = "the s6-overlay peer image " + PeerImage + " is missing and mkpeer.sh failed (" + err.Error() + "): run `make peer-image`"
		}
	})
	if peerWhy == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true and " + peerWhy)
	}
	t.Skip(peerWhy)
}

// dockerOK runs the docker CLI quietly and says whether it succeeded.
func dockerOK(args ...string) bool {
	return exec.Command("docker", args...).Run() == nil
}

// docker runs the docker CLI and returns its trimmed combined output; it fails the test on error.
func docker(t testing.TB, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "docker", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}
