package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
	"github.com/testcontainers/testcontainers-go"
)

// httpPort is where the tests ask gw-http to listen (GATEWAY_HTTP_ADDR=:9090).
const httpPort = "9090"

// startWithHTTP runs the image with the HTTP endpoint on and its port published on the host's
// loopback; it returns the box and the endpoint's base URL. More options (the user, a
// read-only root) come after.
func startWithHTTP(t *testing.T, env map[string]string, opts ...testcontainers.ContainerCustomizer) (*box, string) {
	t.Helper()
	if env == nil {
		env = map[string]string{}
	}
	env["GATEWAY_HTTP_ADDR"] = ":" + httpPort
	b := start(t, env, append([]testcontainers.ContainerCustomizer{testcontainers.WithExposedPorts(httpPort + "/tcp")}, opts...)...)
	port, err := b.c.MappedPort(b.ctx, httpPort+"/tcp")
	require.NoError(t, err)
	base := "http://" + net.JoinHostPort("127.0.0.1", port.Port())
	eventually(t, 30*time.Second, "gw-http answers", func() bool {
		code, _ := get(t, "GET", base+"/healthz")
		return code == http.StatusOK
	})
	return b, base
}

// get does one request and returns the status code and body (0 when it could not connect).
func get(t *testing.T, method, u string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, nil)
	require.NoError(t, err)
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// scrapeValue parses /metrics with Prometheus' own text parser and returns the value of the
// series name{profile=p} (or name alone when p is "").
func scrapeValue(t *testing.T, base, name, p string) (float64, bool) {
	t.Helper()
	code, body := get(t, "GET", base+"/metrics")
	require.Equal(t, http.StatusOK, code, body)
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	require.NoError(t, err)
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
	for _, m := range f.Metric {
		got := ""
		for _, l := range m.Label {
			if l.GetName() == "profile" {
				got = l.GetValue()
			}
		}
		if got == p {
			if m.Counter != nil {
				return m.Counter.GetValue(), true
			}
			return m.Gauge.GetValue(), true
		}
	}
	return 0, false
}

// The endpoint, on in a root container: one gateway crash-looping ("bad", meant to run) and
// one serving ("good"). /metrics says so per profile, read by Prometheus' parser; the
// container stays live and ready (over HTTP and by the exec probes) while status --check, the
// per-gateway verdict, fails; /status is status --json; only GET and HEAD are served; gw-http
// runs as the service user.
func TestHTTPEndpoint(t *testing.T) {
	b, base := startWithHTTP(t, map[string]string{"GATEWAY_HEALTH_GRACE": "1s"})
	b.gw("register", "good", "--start")
	b.gw("register", "bad", "--", "sh", "-c", "echo failing; exit 3")
	code, out := b.exec("gateway", "gateway", "start", "-p", "bad")
	require.Equal(t, 1, code, out)

	eventually(t, 30*time.Second, "bad reported failing in /metrics", func() bool {
		v, ok := scrapeValue(t, base, "s6gate_gateway_last_exit_code", "bad")
		h, _ := scrapeValue(t, base, "s6gate_gateway_healthy", "bad")
		return ok && v == 3 && h == 0
	})
	for _, c := range []struct {
		name, profile string
		want          float64
	}{
		{"s6gate_gateway_up", "good", 1},
		{"s6gate_gateway_ready", "good", 1},
		{"s6gate_gateway_healthy", "good", 1},
		{"s6gate_gateway_ready", "bad", 0},
		{"s6gate_gateways", "", 3}, // default, good, bad
		{"s6gate_live", "", 1},
		{"s6gate_ready", "", 1},
		{"s6gate_gateways_readable", "", 1},
	} {
		v, ok := scrapeValue(t, base, c.name, c.profile)
		require.Truef(t, ok, "%s{profile=%q} missing", c.name, c.profile)
		require.Equalf(t, c.want, v, "%s{profile=%q}", c.name, c.profile)
	}
	v, ok := scrapeValue(t, base, "s6gate_gateway_consecutive_failures", "bad")
	require.True(t, ok)
	require.GreaterOrEqual(t, v, 1.0)

	// Probes: the container is fine; one gateway is not, which is the metrics' business.
	for _, p := range []string{"/healthz", "/readyz"} {
		code, body := get(t, "GET", base+p)
		require.Equalf(t, http.StatusOK, code, "%s: %s", p, body)
	}
	for _, flag := range []string{"--live", "--ready"} {
		code, out := b.exec("", "gateway", "status", flag)
		require.Equalf(t, 0, code, "status %s: %s", flag, out)
	}
	code, out = b.exec("", "gateway", "status", "--check")
	require.Equal(t, 1, code, out)
	require.Contains(t, out, "'bad'")

	// /status is what status --json prints (the fields that do not move with the clock or
	// with bad's crash loop).
	type st struct {
		Profile      string  `json:"profile"`
		Slot         string  `json:"slot"`
		DesiredState *string `json:"desired_state"`
		Healthy      bool    `json:"healthy"`
	}
	var viaHTTP, viaExec []st
	code, body := get(t, "GET", base+"/status")
	require.Equal(t, http.StatusOK, code, body)
	require.NoError(t, json.Unmarshal([]byte(body), &viaHTTP), body)
	require.NoError(t, json.Unmarshal([]byte(jsonPart(b.gw("status", "--json"))), &viaExec))
	require.Equal(t, viaExec, viaHTTP)

	// Read-only, and nothing else is there.
	for _, c := range []struct {
		method, path string
		code         int
	}{
		{"POST", "/status", 405}, {"PUT", "/metrics", 405}, {"DELETE", "/healthz", 405},
		{"GET", "/stop", 404}, {"GET", "/", 404}, {"HEAD", "/metrics", 200},
	} {
		code, body := get(t, c.method, base+c.path)
		require.Equalf(t, c.code, code, "%s %s: %s", c.method, c.path, body)
	}

	// gw-http runs as the service user.
	code, out = b.exec("", "sh", "-c", `for f in /proc/[0-9]*/status; do if grep -q '^Name:[[:space:]]*gw-http$' "$f"; then grep '^Uid:' "$f"; fi; done`)
	require.Equal(t, 0, code, out)
	require.Regexp(t, `^Uid:\s+10000\s+10000\s+10000\s+10000\s*$`, strings.TrimSpace(out))
}

// Off by default: no service directory, no process, no port.
func TestHTTPEndpointOffByDefault(t *testing.T) {
	b := start(t, nil)
	require.False(t, b.fileExists("/run/service/s6gate-http"))
	code, out := b.exec("", "sh", "-c", `grep -l '^Name:[[:space:]]*gw-http$' /proc/[0-9]*/status 2>/dev/null; true`)
	require.Equal(t, 0, code)
	require.Empty(t, strings.TrimSpace(out))
	// The exec probes work without it.
	for _, flag := range []string{"--live", "--ready"} {
		code, out := b.exec("", "gateway", "status", flag)
		require.Equalf(t, 0, code, "status %s: %s", flag, out)
	}
}

// A bad GATEWAY_HTTP_ADDR is one line in docker logs, and the service stays down (not
// restarted every second); the container and its gateways run on.
func TestHTTPEndpointBadAddress(t *testing.T) {
	b := start(t, map[string]string{"GATEWAY_HTTP_ADDR": "9090"})
	eventually(t, 30*time.Second, "the one line", func() bool {
		return strings.Contains(b.logs(), `gw-http: serve: GATEWAY_HTTP_ADDR="9090": want [HOST]:PORT`)
	})
	code, out := b.exec("", "/command/s6-svstat", "-o", "up,wantedup", "/run/service/s6gate-http")
	require.Equal(t, 0, code, out)
	require.Equal(t, "false false", strings.TrimSpace(out))
	require.Equal(t, 1, strings.Count(b.logs(), "gw-http: serve:"))
	code, out = b.exec("", "gateway", "status", "--ready")
	require.Equal(t, 0, code, out)
}

// The Kubernetes way of running it: as uid 10000 on a read-only root (the StatefulSet's
// `docker run` twin, docs/deploy-kubernetes.md); the root tree is then the service user's
// too, so the container's own services are in the metrics.
func TestHTTPEndpointHardened(t *testing.T) {
	env := nonRootEnv()
	b, base := startWithHTTP(t, env, hardened()...)
	b.requireAllUID("10000")
	v, ok := scrapeValue(t, base, "s6gate_services_readable", "")
	require.True(t, ok)
	require.Equal(t, 1.0, v)
	code, body := get(t, "GET", base+"/metrics")
	require.Equal(t, 200, code)
	require.Contains(t, body, `s6gate_service_up{service="services.d/s6gate-gateways"} 1`)
	code, body = get(t, "GET", base+"/readyz")
	require.Equal(t, 200, code, body)
	// The StatefulSet's probes, as the kubelet runs them (as the container's user).
	for _, flag := range []string{"--live", "--ready"} {
		code, out := b.exec("", "/usr/local/bin/gateway", "status", flag)
		require.Equalf(t, 0, code, "status %s: %s", flag, out)
		require.NotContains(t, out, "not readable", "the whole tree is the user's")
	}
}

// prometheusDir is where docker/prometheus.sh keeps Prometheus and promtool; a test that
// needs them skips without them (fails under CI=true, where make test builds them first).
func prometheusDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("S6GATE_PROMETHEUS_DIR")
	if dir == "" {
		home, _ := os.UserHomeDir()
		dir = filepath.Join(home, ".cache", "s6gate", "prometheus-v0.316.0")
	}
	for _, b := range []string{"prometheus", "promtool"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			msg := fmt.Sprintf("no %s in %s: run docker/prometheus.sh (make test does)", b, dir)
			if os.Getenv("CI") == "true" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
	return dir
}

// A real Prometheus server scrapes the container, and its query API has the series; the
// scrape passes `promtool check metrics` (the exposition format's conventions: _total
// counters, units, HELP on every metric).
func TestPrometheusScrapesTheContainer(t *testing.T) {
	pdir := prometheusDir(t)
	b, base := startWithHTTP(t, nil)
	b.gw("register", "web", "--start")

	_, body := get(t, "GET", base+"/metrics")
	check := exec.Command(filepath.Join(pdir, "promtool"), "check", "metrics")
	check.Stdin = strings.NewReader(body)
	out, err := check.CombinedOutput()
	require.NoErrorf(t, err, "promtool check metrics:\n%s", out)

	// Prometheus on the loopback, scraping the published port every second.
	target := strings.TrimPrefix(base, "http://")
	work := t.TempDir()
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: s6gate\n    static_configs:\n      - targets: [%q]\n", target)
	require.NoError(t, os.WriteFile(filepath.Join(work, "prometheus.yml"), []byte(cfg), 0o644))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	listen := ln.Addr().String()
	ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	prom := exec.CommandContext(ctx, filepath.Join(pdir, "prometheus"), "--config.file="+filepath.Join(work, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(work, "data"), "--web.listen-address="+listen)
	logf, err := os.Create(filepath.Join(work, "prometheus.log"))
	require.NoError(t, err)
	prom.Stdout, prom.Stderr = logf, logf
	require.NoError(t, prom.Start())
	t.Cleanup(func() {
		cancel()
		_ = prom.Wait()
		logf.Close()
		if t.Failed() {
			l, _ := os.ReadFile(filepath.Join(work, "prometheus.log"))
			t.Logf("prometheus log:\n%s", l)
		}
	})

	type result struct {
		Status string `json:"status"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  []any             `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	query := func(q string) result {
		var r result
		code, body := get(t, "GET", "http://"+listen+"/api/v1/query?query="+url.QueryEscape(q))
		if code != http.StatusOK {
			return r
		}
		require.NoError(t, json.Unmarshal([]byte(body), &r), body)
		return r
	}
	eventually(t, 60*time.Second, "Prometheus has scraped s6gate_gateway_up for web", func() bool {
		r := query(`s6gate_gateway_up{job="s6gate"}`)
		var profiles []string
		for _, s := range r.Data.Result {
			profiles = append(profiles, s.Metric["profile"])
		}
		slices.Sort(profiles)
		return r.Status == "success" && slices.Equal(profiles, []string{"default", "web"})
	})
	r := query(`up{job="s6gate"}`)
	require.Len(t, r.Data.Result, 1)
	require.Equal(t, "1", r.Data.Result[0].Value[1])
	r = query(`s6gate_gateway_ready{profile="web"}`)
	require.Len(t, r.Data.Result, 1)
	require.Equal(t, "1", r.Data.Result[0].Value[1])
	r = query(`s6gate_build_info`)
	require.Len(t, r.Data.Result, 1)
}
