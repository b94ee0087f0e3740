package boot

import (
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// The diverted signals (stopSignals, names.go) are those whose <scandir>/.s6-svscan/ handler
// is this binary, as s6-linux-init makes them for a container: SIGTERM (halt), SIGINT (reboot),
// SIGUSR1 and SIGPWR (poweroff), SIGUSR2 (halt) all stop the container; SIGQUIT stops it too
// (s6gate's choice, documented); SIGWINCH does nothing. With S6_CMD_RECEIVE_SIGNALS they all go
// to the CMD instead while it runs.

// stopSignalNames are the diverted signals that stop the container.
func isStopSignal(sig string) bool { return sig != "SIGWINCH" }

func (l layout) cmdPidFile() string    { return filepath.Join(l.S6, "cmdpid") }
func (l layout) haltRequested() string { return filepath.Join(l.S6, "halt-requested") }

// signalHook is <scandir>/.s6-svscan/SIG*: it forwards the signal to the CMD when stage 2
// recorded one (S6_CMD_RECEIVE_SIGNALS) and no halt was asked for, else stops the container
// (or, for SIGWINCH, does nothing).
func signalHook(l layout, log *logger, sig string) int {
	if pid := divertTarget(l); pid > 0 {
		if num := unix.SignalNum(sig); num != 0 {
			if err := unix.Kill(pid, num); err == nil {
				log.printf("signal: %s forwarded to the CMD (pid %d) (%s)", sig, pid, envReceiveSignals)
				return codeOK
			}
		}
	}
	if !isStopSignal(sig) {
		return codeOK
	}
	return stopHook(l, log, sig)
}

// divertTarget is the pid of the CMD that signals go to (S6_CMD_RECEIVE_SIGNALS), or 0: none
// recorded, the CMD is gone, or halt asked for the stop (halt signals PID 1 too).
func divertTarget(l layout) int {
	if _, err := os.Stat(l.haltRequested()); err == nil {
		return 0
	}
	pid := readPidFile(l.cmdPidFile())
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return 0
	}
	return pid
}

// requestHalt asks s6-svscan for the stop sequence, marking it as a halt so that it is not
// diverted to the CMD.
func requestHalt(l layout) error {
	_ = os.WriteFile(l.haltRequested(), nil, 0o644)
	return signalSvscan(l, syscall.SIGTERM)
}
