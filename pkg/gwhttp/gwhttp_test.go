package gwhttp

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/pkg/operator"
	"github.com/s6gate/s6gate/pkg/probe"
	"github.com/s6gate/s6gate/pkg/s6"
	"github.com/s6gate/s6gate/pkg/state"
	"github.com/s6gate/s6gate/pkg/svchealth"
)

// fake is a Source with fixed answers; it counts Status calls.
type fake struct {
	sts      []operator.GatewayStatus
	stsErr   error
	svcs     []svchealth.Service
	svcErr   error
	live     probe.Verdict
	ready    probe.Verdict
	statuses atomic.Int64
}

func (f *fake) Status(context.Context) ([]operator.GatewayStatus, error) {
	f.statuses.Add(1)
	return f.sts, f.stsErr
}
func (f *fake) Services() ([]svchealth.Service, error) { return f.svcs, f.svcErr }
func (f *fake) Live() probe.Verdict                    { return f.live }
func (f *fake) Ready(time.Time) probe.Verdict          { return f.ready }

func ptr[T any](v T) *T { return &v }

// twoGateways: "api" serving for 12.5 s after 2 restarts, "bad" failed after being killed by
// SIGKILL and backing off.
func twoGateways() []operator.GatewayStatus {
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	backoff := time.Date(2026, 1, 2, 3, 5, 0, 500_000_000, time.UTC)
	return []operator.GatewayStatus{
		{Profile: "api", Supervised: true, Up: true, PID: ptr(812), Ready: true, WantUp: true, NormallyUp: true, Since: &since,
			GatewayState: ptr(state.Running), DesiredState: ptr(state.Running), Uptime: ptr(12.5), Restarts: 2,
			LastExit: &state.Exit{Code: ptr(3), At: "2026-01-02T03:04:00Z"}, Healthy: true},
		{Profile: "bad", Supervised: true, Up: true, PID: ptr(930), Ready: true, WantUp: true,
			GatewayState: ptr(state.Failed), DesiredState: ptr(state.Running), Restarts: 9, ConsecutiveFailures: 10,
			LastExit: &state.Exit{Signal: "SIGKILL", At: "2026-01-02T03:04:59Z", Failure: true}, BackoffUntil: &backoff,
			Failed: true, FailedReason: "10 consecutive failures", Healthy: false},
	}
}

func newFake() *fake {
	now := time.Now()
	return &fake{
		sts: twoGateways(),
		svcs: []svchealth.Service{
			{Name: "services.d/s6gate-gateways", Notifies: true, Status: s6.Status{Up: true, Ready: true, WantUp: true, Since: now.Add(-time.Minute)}},
			{Name: "services.d/sidecar", Status: s6.Status{Up: false, WantUp: true, Since: now}},
		},
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// scrape gets /metrics and parses it with Prometheus' own text parser.
func scrape(t *testing.T, h http.Handler) map[string]*dto.MetricFamily {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, PathMetrics, nil)
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	require.Equal(t, http.StatusOK, rec.Code, rec.Body.String())
	require.True(t, strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain"), rec.Header().Get("Content-Type"))
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(rec.Body)
	require.NoError(t, err)
	return fams
}

// value is the value of the series of family name with the given labels (all of them).
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	t.Helper()
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
	for _, m := range f.Metric {
		got := map[string]string{}
		for _, l := range m.Label {
			got[l.GetName()] = l.GetValue()
		}
		if len(got) != len(want) {
			continue
		}
		match := true
		for k, v := range want {
			match = match && got[k] == v
		}
		if !match {
			continue
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		case m.Untyped != nil:
			return m.Untyped.GetValue(), true
		}
	}
	return 0, false
}

func TestMetricsReadByPrometheusParser(t *testing.T) {
	f := newFake()
	f.ready = probe.Verdict{Err: errors.New("a service is down")}
	fams := scrape(t, Handler(f, quiet()))

	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
		typ    dto.MetricType
	}{
		{"s6gate_gateway_up", []string{"profile", "api"}, 1, dto.MetricType_GAUGE},
		{"s6gate_gateway_ready", []string{"profile", "api"}, 1, dto.MetricType_GAUGE},
		{"s6gate_gateway_ready", []string{"profile", "bad"}, 0, dto.MetricType_GAUGE}, // backing off: not serving
		{"s6gate_gateway_healthy", []string{"profile", "api"}, 1, dto.MetricType_GAUGE},
		{"s6gate_gateway_healthy", []string{"profile", "bad"}, 0, dto.MetricType_GAUGE},
		{"s6gate_gateway_failed", []string{"profile", "bad"}, 1, dto.MetricType_GAUGE},
		{"s6gate_gateway_state", []string{"profile", "api", "state", "running"}, 1, dto.MetricType_GAUGE},
		{"s6gate_gateway_state", []string{"profile", "api", "state", "stopped"}, 0, dto.MetricType_GAUGE},
		{"s6gate_gateway_state", []string{"profile", "bad", "state", "failed"}, 1, dto.MetricType_GAUGE},
		{"s6gate_gateway_desired_state", []string{"profile", "bad", "state", "running"}, 1, dto.MetricType_GAUGE},
		{"s6gate_gateway_desired_state", []string{"profile", "bad", "state", "stopped"}, 0, dto.MetricType_GAUGE},
		{"s6gate_gateway_restarts_total", []string{"profile", "bad"}, 9, dto.MetricType_COUNTER},
		{"s6gate_gateway_consecutive_failures", []string{"profile", "bad"}, 10, dto.MetricType_GAUGE},
		{"s6gate_gateway_last_exit_code", []string{"profile", "api"}, 3, dto.MetricType_GAUGE},
		{"s6gate_gateway_last_exit_code", []string{"profile", "bad"}, 128 + 9, dto.MetricType_GAUGE}, // SIGKILL
		{"s6gate_gateway_backoff_until_seconds", []string{"profile", "bad"}, 1767323100.5, dto.MetricType_GAUGE},
		{"s6gate_gateway_backoff_until_seconds", []string{"profile", "api"}, 0, dto.MetricType_GAUGE},
		{"s6gate_gateway_uptime_seconds", []string{"profile", "api"}, 12.5, dto.MetricType_GAUGE},
		{"s6gate_gateway_uptime_seconds", []string{"profile", "bad"}, 0, dto.MetricType_GAUGE},
		{"s6gate_gateways", nil, 2, dto.MetricType_GAUGE},
		{"s6gate_gateways_readable", nil, 1, dto.MetricType_GAUGE},
		{"s6gate_service_up", []string{"service", "services.d/s6gate-gateways"}, 1, dto.MetricType_GAUGE},
		{"s6gate_service_ready", []string{"service", "services.d/s6gate-gateways"}, 1, dto.MetricType_GAUGE},
		{"s6gate_service_up", []string{"service", "services.d/sidecar"}, 0, dto.MetricType_GAUGE},
		{"s6gate_service_want_up", []string{"service", "services.d/sidecar"}, 1, dto.MetricType_GAUGE},
		{"s6gate_services_readable", nil, 1, dto.MetricType_GAUGE},
		{"s6gate_live", nil, 1, dto.MetricType_GAUGE},
		{"s6gate_ready", nil, 0, dto.MetricType_GAUGE},
	} {
		got, ok := value(t, fams, tc.name, tc.labels...)
		require.Truef(t, ok, "%s%v: no such series", tc.name, tc.labels)
		require.Equalf(t, tc.want, got, "%s%v", tc.name, tc.labels)
		require.Equalf(t, tc.typ, fams[tc.name].GetType(), "%s: type", tc.name)
		require.NotEmptyf(t, fams[tc.name].GetHelp(), "%s: HELP", tc.name)
	}
	_, ok := value(t, fams, "s6gate_gateway_last_exit_code", "profile", "none")
	require.False(t, ok)
	bi := fams["s6gate_build_info"]
	require.NotNil(t, bi)
	require.Len(t, bi.Metric, 1)
	require.Equal(t, 1.0, bi.Metric[0].Gauge.GetValue())
	require.Contains(t, fams, "process_resident_memory_bytes")
}

// A profile name is a label value: whatever the validator lets through (and a hostile state
// file's odd gateway_state) must come out as a series the parser reads back unchanged.
func TestMetricsEscapeLabelValues(t *testing.T) {
	f := newFake()
	f.sts = []operator.GatewayStatus{{Profile: "a_b-9", GatewayState: ptr("we\"ird\\state\n")}}
	fams := scrape(t, Handler(f, quiet()))
	got, ok := value(t, fams, "s6gate_gateway_state", "profile", "a_b-9", "state", "we\"ird\\state\n")
	require.True(t, ok)
	require.Equal(t, 1.0, got)
}

// While the gateways cannot be read (booting, boot failed) the container's series are there
// and say so; no gateway series is.
func TestMetricsWithoutGateways(t *testing.T) {
	f := newFake()
	f.stsErr = errors.New("container is still booting")
	f.svcErr = svchealth.ErrUnreadable
	fams := scrape(t, Handler(f, quiet()))
	v, ok := value(t, fams, "s6gate_gateways_readable")
	require.True(t, ok)
	require.Zero(t, v)
	v, _ = value(t, fams, "s6gate_services_readable")
	require.Zero(t, v)
	require.NotContains(t, fams, "s6gate_gateway_up")
	require.NotContains(t, fams, "s6gate_service_up")
}

func TestStatusIsStatusJSON(t *testing.T) {
	f := newFake()
	rec := httptest.NewRecorder()
	Handler(f, quiet()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, PathStatus, nil))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, "application/json", rec.Header().Get("Content-Type"))
	want, ok := operator.AppendStatusJSON(nil, twoGateways())
	require.True(t, ok)
	require.Equal(t, string(want), rec.Body.String())

	f.stsErr = errors.New("the boot failed (check the data root): read-only")
	f2 := &fake{stsErr: f.stsErr}
	rec = httptest.NewRecorder()
	Handler(f2, quiet()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, PathStatus, nil))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Equal(t, "the boot failed (check the data root): read-only\n", rec.Body.String())
}

func TestProbes(t *testing.T) {
	for _, tc := range []struct {
		path     string
		live     probe.Verdict
		ready    probe.Verdict
		code     int
		wantBody string
	}{
		{PathHealthz, probe.Verdict{}, probe.Verdict{Err: errors.New("x")}, 200, "live\n"},
		{PathHealthz, probe.Verdict{Err: probe.ErrScannerDown}, probe.Verdict{}, 503, "not live: a supervision tree does not answer\n"},
		{PathReadyz, probe.Verdict{Err: errors.New("x")}, probe.Verdict{}, 200, "ready\n"},
		{PathReadyz, probe.Verdict{}, probe.Verdict{Err: probe.ErrBooting}, 503, "not ready: the container is still booting\n"},
	} {
		t.Run(tc.path+" "+tc.wantBody, func(t *testing.T) {
			f := newFake()
			f.live, f.ready = tc.live, tc.ready
			rec := httptest.NewRecorder()
			Handler(f, quiet()).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			require.Equal(t, tc.code, rec.Code)
			require.Equal(t, tc.wantBody, rec.Body.String())
		})
	}
}

// Only GET and HEAD, only the four paths; never a verb.
func TestMethodsAndPaths(t *testing.T) {
	srv := httptest.NewServer(Handler(newFake(), quiet()))
	defer srv.Close()
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/metrics", 200},
		{"HEAD", "/metrics", 200},
		{"GET", "/healthz", 200},
		{"HEAD", "/status", 200},
		{"POST", "/metrics", 405},
		{"PUT", "/status", 405},
		{"DELETE", "/status", 405},
		{"PATCH", "/healthz", 405},
		{"OPTIONS", "/readyz", 405},
		{"POST", "/stop", 405},
		{"GET", "/", 404},
		{"GET", "/metrics/", 404},
		{"GET", "/status/api", 404},
		{"GET", "/start?profile=api", 404},
		{"GET", "/debug/pprof/", 404},
	} {
		req, err := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		require.NoError(t, err)
		resp, err := srv.Client().Do(req)
		require.NoError(t, err)
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		require.Equalf(t, tc.code, resp.StatusCode, "%s %s", tc.method, tc.path)
		if tc.code == 405 {
			require.Equal(t, "GET, HEAD", resp.Header.Get("Allow"))
		}
	}
}

// Garbage on the wire is a 4xx from net/http, and the server goes on serving.
func TestMalformedRequests(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, ln, Handler(newFake(), quiet()), quiet()) }()
	defer func() { cancel(); require.NoError(t, <-done) }()
	for _, raw := range []string{
		"GARBAGE\r\n\r\n",
		"GET /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
		"GET /metrics HTTP/1.1\r\n" + strings.Repeat("X-A: "+strings.Repeat("a", 1000)+"\r\n", 20) + "\r\n",
		"GET /%zz HTTP/1.1\r\nHost: x\r\n\r\n",
	} {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		require.NoError(t, c.SetDeadline(time.Now().Add(10*time.Second)))
		_, err = c.Write([]byte(raw))
		require.NoError(t, err)
		line, err := bufio.NewReader(c).ReadString('\n')
		require.NoError(t, err)
		c.Close()
		require.Regexpf(t, `^HTTP/1\.1 4\d\d `, line, "%q", raw)
	}
	resp, err := http.Get("http://" + ln.Addr().String() + PathHealthz)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, 200, resp.StatusCode)
}

func TestServerLimits(t *testing.T) {
	s := NewServer(http.NotFoundHandler(), quiet())
	require.Equal(t, ReadHeaderTimeout, s.ReadHeaderTimeout)
	require.NotZero(t, s.ReadHeaderTimeout)
	require.NotZero(t, s.ReadTimeout)
	require.NotZero(t, s.WriteTimeout)
	require.NotZero(t, s.IdleTimeout)
	require.NotZero(t, s.MaxHeaderBytes)
}

// A burst of scrapes and status reads costs one status read.
func TestStatusReadOncePerSecond(t *testing.T) {
	f := newFake()
	h := Handler(f, quiet())
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			path := PathStatus
			if i%2 == 0 {
				path = PathMetrics
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		}()
	}
	wg.Wait()
	require.LessOrEqual(t, f.statuses.Load(), int64(2)) // 2 if the burst straddles StatusMaxAge
}

func TestCheckAddr(t *testing.T) {
	for _, ok := range []string{":9090", "127.0.0.1:9090", "[::1]:9090", "0.0.0.0:1", "localhost:8080"} {
		require.NoError(t, CheckAddr(ok), ok)
	}
	for _, bad := range []string{"", "9090", ":0", ":65536", ":http", "example.com:80", "1.2.3.4", ":-1"} {
		err := CheckAddr(bad)
		require.Error(t, err, bad)
		require.Contains(t, err.Error(), "GATEWAY_HTTP_ADDR")
	}
}
