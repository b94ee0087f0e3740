package gwhttp

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/internal/cli"
	"github.com/s6gate/s6gate/pkg/operator"
	"github.com/s6gate/s6gate/pkg/state"
	"github.com/s6gate/s6gate/pkg/svchealth"
)

// The states s6gate_gateway_state and s6gate_gateway_desired_state enumerate (one series
// each, 1 for the current one: Prometheus' "state set"). A recorded state outside the list
// gets a series of its own.
var (
	gatewayStates = []string{state.Starting, state.Running, state.Draining, state.Stopped, state.StartupFailed, state.Failed}
	desiredStates = []string{state.Running, state.Stopped}
)

func gauge(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, labels, nil)
}

// descs are the metrics of docs/metrics.md, in its order.
type descs struct {
	up, ready, healthy, failed, state, desired, restarts, failures, lastExit, backoff, uptime *prometheus.Desc
	svcUp, svcReady, svcWantUp, svcReadable, gwReadable, gateways, live, readyC, build        *prometheus.Desc
}

func newDescs() descs {
	p := "profile"
	return descs{
		up:          gauge("s6gate_gateway_up", "1 when s6 has the gateway's process up.", p),
		ready:       gauge("s6gate_gateway_ready", "1 when the gateway is up and ready (its command settled).", p),
		healthy:     gauge("s6gate_gateway_healthy", "0 when a gateway meant to run is failed or has not been serving for longer than GATEWAY_HEALTH_GRACE (status --check's verdict).", p),
		failed:      gauge("s6gate_gateway_failed", "1 when s6 no longer restarts the gateway (crash loop reached max_failures, or fatal configuration).", p),
		state:       gauge("s6gate_gateway_state", "The recorded gateway_state: 1 for the current one.", p, "state"),
		desired:     gauge("s6gate_gateway_desired_state", "The recorded run intent (desired_state): 1 for the current one.", p, "state"),
		restarts:    prometheus.NewDesc("s6gate_gateway_restarts_total", "Starts of the gateway's command after the first, in this boot of the container.", []string{p}, nil),
		failures:    gauge("s6gate_gateway_consecutive_failures", "Failures in a row not yet cleared.", p),
		lastExit:    gauge("s6gate_gateway_last_exit_code", "How the command last ended: its exit status, or 128+N when killed by signal N. Absent before the first exit.", p),
		backoff:     gauge("s6gate_gateway_backoff_until_seconds", "Unix time of the next start while backing off after failures; 0 when not backing off.", p),
		uptime:      gauge("s6gate_gateway_uptime_seconds", "How long the command has been serving; 0 when it is not serving.", p),
		svcUp:       gauge("s6gate_service_up", "1 when s6 has the container's own service up.", "service"),
		svcReady:    gauge("s6gate_service_ready", "1 when the container's own service is serving: up, ready if it notifies, for at least a second.", "service"),
		svcWantUp:   gauge("s6gate_service_want_up", "1 when s6 wants the container's own service up (0: taken down on purpose).", "service"),
		svcReadable: gauge("s6gate_services_readable", "1 when the endpoint may read the root supervision tree (0 in a container run as root: the s6gate_service_* series are absent)."),
		gwReadable:  gauge("s6gate_gateways_readable", "1 when the gateways' status could be read (0 while the container boots or when its boot failed)."),
		gateways:    gauge("s6gate_gateways", "Registered gateways."),
		live:        gauge("s6gate_live", "1 when the supervision trees answer (/healthz)."),
		readyC:      gauge("s6gate_ready", "1 when the container's own services are up (/readyz)."),
		build:       gauge("s6gate_build_info", "s6gate's build: always 1.", "version", "revision", "goversion"),
	}
}

// collector reads the gateways (through the shared snapshot) and the container's services at
// every scrape.
type collector struct {
	src  Source
	snap *snapshot
	d    descs
	info [3]string // build info labels
}

func newCollector(src Source, snap *snapshot) *collector {
	return &collector{src: src, snap: snap, d: newDescs(), info: buildInfo()}
}

// buildInfo is the version, commit and Go version `gateway version` prints (cli.ThisBuild:
// the linker's stamp from make build, else Go's build info, else "devel" and "unknown").
func buildInfo() [3]string {
	b := cli.ThisBuild()
	return [3]string{b.Version, b.Commit, b.Go}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	d := c.d
	for _, x := range []*prometheus.Desc{d.up, d.ready, d.healthy, d.failed, d.state, d.desired, d.restarts, d.failures,
		d.lastExit, d.backoff, d.uptime, d.svcUp, d.svcReady, d.svcWantUp, d.svcReadable, d.gwReadable, d.gateways,
		d.live, d.readyC, d.build} {
		ch <- x
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	d := c.d
	now := time.Now()
	g := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	}
	g(d.build, 1, c.info[:]...)
	g(d.live, bit(c.src.Live().Err == nil))
	g(d.readyC, bit(c.src.Ready(now).Err == nil))

	svcs, err := c.src.Services()
	g(d.svcReadable, bit(!errors.Is(err, svchealth.ErrUnreadable)))
	if err == nil {
		for _, s := range svcs {
			g(d.svcUp, bit(s.Err == nil && s.Status.Up), s.Name)
			g(d.svcReady, bit(s.Serving(now)), s.Name)
			g(d.svcWantUp, bit(s.Err == nil && s.Status.WantUp), s.Name)
		}
	}

	sts, _, err := c.snap.get(context.Background())
	g(d.gwReadable, bit(err == nil))
	if err != nil {
		return
	}
	g(d.gateways, float64(len(sts)))
	for i := range sts {
		c.gateway(ch, &sts[i])
	}
}

func (c *collector) gateway(ch chan<- prometheus.Metric, s *operator.GatewayStatus) {
	d, p := c.d, s.Profile
	g := func(desc *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, append([]string{p}, labels...)...)
	}
	g(d.up, bit(s.Up))
	g(d.ready, bit(s.Serving()))
	g(d.healthy, bit(s.Healthy))
	g(d.failed, bit(s.Failed))
	stateSet(g, d.state, gatewayStates, s.GatewayState)
	stateSet(g, d.desired, desiredStates, s.DesiredState)
	ch <- prometheus.MustNewConstMetric(d.restarts, prometheus.CounterValue, float64(s.Restarts), p)
	g(d.failures, float64(s.ConsecutiveFailures))
	if code, ok := exitCode(s.LastExit); ok {
		g(d.lastExit, float64(code))
	}
	backoff := 0.0
	if s.BackoffUntil != nil {
		backoff = float64(s.BackoffUntil.UnixMilli()) / 1e3
	}
	g(d.backoff, backoff)
	uptime := 0.0
	if s.Uptime != nil {
		uptime = *s.Uptime
	}
	g(d.uptime, uptime)
}

// stateSet emits one series per known state, 1 for cur; a cur outside known gets its own.
func stateSet(g func(*prometheus.Desc, float64, ...string), desc *prometheus.Desc, known []string, cur *string) {
	found := false
	for _, k := range known {
		on := cur != nil && *cur == k
		found = found || on
		g(desc, bit(on), k)
	}
	if cur != nil && *cur != "" && !found {
		g(desc, 1, *cur)
	}
}

// exitCode is the shell's encoding of how the command last ended: its status, or 128+N when
// killed by signal N.
func exitCode(e *state.Exit) (int, bool) {
	switch {
	case e == nil:
		return 0, false
	case e.Code != nil:
		return *e.Code, true
	case e.Signal != "":
		if n := unix.SignalNum(e.Signal); n != 0 {
			return 128 + int(n), true
		}
	}
	return 0, false
}

func bit(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
