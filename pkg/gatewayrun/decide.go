package gatewayrun

import (
	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/state"
)

// Reason is why a gateway stops.
type Reason int

// The reasons a gateway stops.
const (
	Unplanned   Reason = iota // SIGTERM without a matching marker, SIGQUIT
	Planned                   // SIGTERM with a matching marker, SIGINT
	Restart                   // SIGUSR1
	FatalConfig               // the profile cannot run as configured
	ChildExited               // the child command exited by itself
)

func (r Reason) String() string {
	switch r {
	case Unplanned:
		return "signal-initiated shutdown (unplanned: container or supervisor stop)"
	case Planned:
		return "planned stop"
	case Restart:
		return "restart requested"
	case FatalConfig:
		return "fatal configuration"
	case ChildExited:
		return "command exited"
	}
	return "unknown"
}

// Decision is what a stopping gateway persists and how it exits.
type Decision struct {
	State    string // gateway_state to write; "" leaves the recorded one alone
	ExitCode int    // -1: use the child's status
}

// Decide is the persist-decision table of SPEC §7.
func Decide(r Reason) Decision {
	switch r {
	case Planned:
		return Decision{State: state.Stopped, ExitCode: 0}
	case Restart:
		return Decision{State: state.Stopped, ExitCode: exitcode.Restart}
	case FatalConfig:
		return Decision{State: state.StartupFailed, ExitCode: exitcode.FatalConfig}
	case ChildExited:
		return Decision{State: "", ExitCode: -1}
	default: // Unplanned, and anything unknown: the safe side is to come back.
		return Decision{State: state.Running, ExitCode: 1}
	}
}
