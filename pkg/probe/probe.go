package probe

import (
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/s6gate/s6gate/pkg/bootrecord"
	"github.com/s6gate/s6gate/pkg/s6"
	"github.com/s6gate/s6gate/pkg/svchealth"
)

// Paths are what the probes look at.
type Paths struct {
	ScanDir  string          // the gateways' scan directory (GATEWAY_SCANDIR)
	Services svchealth.Paths // the root tree and /init's state (svchealth.DefaultPaths)
}

// Verdict is a probe's answer. Err is nil when the probe passes; it is one line naming what
// failed otherwise. Partial: the root tree could not be read by this caller, so the verdict
// is on the rest only.
type Verdict struct {
	Err     error
	Partial bool
}

// Errors the verdicts wrap, for callers that branch on them.
var (
	ErrBooting     = errors.New("the container is still booting")
	ErrScannerDown = errors.New("a supervision tree does not answer")
	ErrServiceDown = errors.New("a service of the container meant to run is not")
)

// Live reports whether the supervision trees answer. While the boot has not finished (no
// record, or "booting") the gateways' scanner is not asked: it starts only after the boot. A
// failed boot is live (a restart would fail the same way; readiness says why).
func Live(p Paths) Verdict {
	var v Verdict
	if up, err := s6.ScannerUp(p.Services.Scandir); err != nil {
		if !errors.Is(err, fs.ErrPermission) {
			return Verdict{Err: fmt.Errorf("%w: root tree %s: %w", ErrScannerDown, p.Services.Scandir, err)}
		}
		v.Partial = true
	} else if !up {
		return Verdict{Err: fmt.Errorf("%w: no s6-svscan on %s", ErrScannerDown, p.Services.Scandir)}
	}
	r, ok, _ := bootrecord.Read(p.ScanDir)
	if !ok || r.State != bootrecord.OK {
		return v
	}
	up, err := s6.ScannerUp(p.ScanDir)
	if err != nil {
		v.Err = fmt.Errorf("%w: gateways' tree %s: %w", ErrScannerDown, p.ScanDir, err)
	} else if !up {
		v.Err = fmt.Errorf("%w: no scanner on the gateways' tree %s", ErrScannerDown, p.ScanDir)
	}
	return v
}

// Ready reports whether the container's services are up: the boot succeeded, the gateways'
// scanner answers, and no service of the container has been not serving for longer than grace
// (svchealth.Check). Nothing about a single gateway.
func Ready(p Paths, now time.Time, grace time.Duration) Verdict {
	r, ok, err := bootrecord.Read(p.ScanDir)
	switch {
	case err != nil:
		return Verdict{Err: fmt.Errorf("boot record: %w", err)}
	case ok && r.State == bootrecord.Failed:
		return Verdict{Err: r.Err()}
	case ok && r.State != bootrecord.OK:
		return Verdict{Err: ErrBooting}
	}
	// No record at all: a tree not made by gw-reconcile --boot (a host's plain s6-svscan);
	// its scanner answering is the boot's end.
	if up, err := s6.ScannerUp(p.ScanDir); err != nil {
		return Verdict{Err: fmt.Errorf("%w: gateways' tree %s: %w", ErrScannerDown, p.ScanDir, err)}
	} else if !up && !ok {
		return Verdict{Err: ErrBooting}
	} else if !up {
		return Verdict{Err: fmt.Errorf("%w: no scanner on the gateways' tree %s", ErrScannerDown, p.ScanDir)}
	}
	problems, err := svchealth.Check(p.Services, now, grace)
	if errors.Is(err, svchealth.ErrUnreadable) {
		return Verdict{Partial: true}
	}
	if err != nil {
		return Verdict{Err: err}
	}
	if len(problems) > 0 {
		return Verdict{Err: fmt.Errorf("%w: %s", ErrServiceDown, problems[0])}
	}
	return Verdict{}
}
