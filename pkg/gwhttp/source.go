package gwhttp

import (
	"context"
	"time"

	"github.com/s6gate/s6gate/pkg/operator"
	"github.com/s6gate/s6gate/pkg/probe"
	"github.com/s6gate/s6gate/pkg/svchealth"
)

// Source is what the endpoint reports. Container is the real one; tests give their own.
type Source interface {
	// Status is `gateway status --json`'s data for every registered gateway.
	Status(ctx context.Context) ([]operator.GatewayStatus, error)
	// Services are the container's own services (svchealth.ErrUnreadable when not readable).
	Services() ([]svchealth.Service, error)
	Live() probe.Verdict
	Ready(now time.Time) probe.Verdict
}

// Container is the Source of a running container: the operator's Status, and the probes on
// the paths of Probe.
type Container struct {
	Operator *operator.Operator
	Probe    probe.Paths
}

// Status is Operator.Status of every registered gateway.
func (c *Container) Status(ctx context.Context) ([]operator.GatewayStatus, error) {
	return c.Operator.Status(ctx, nil)
}

// Services is svchealth.Services.
func (c *Container) Services() ([]svchealth.Service, error) {
	return svchealth.Services(c.Probe.Services)
}

// Live is probe.Live.
func (c *Container) Live() probe.Verdict { return probe.Live(c.Probe) }

// Ready is probe.Ready with the operator's health grace.
func (c *Container) Ready(now time.Time) probe.Verdict {
	return probe.Ready(c.Probe, now, c.Operator.Settings.HealthGrace)
}
