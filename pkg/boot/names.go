package boot

// Names under which the /init binary is started for its other jobs (argv[0]'s base name).
const (
	stage2Name = "s6gate-stage2" // the stage-2 child: cont-init.d, services.d, CMD
	finishName = "finish"        // <scandir>/.s6-svscan/finish: stage 3, as PID 1
	crashName  = "crash"         // <scandir>/.s6-svscan/crash
	haltName   = "halt"          // /run/s6/basedir/bin/halt
	// removeOldName removes, in the background, what earlier boots left under /run.
	removeOldName = "s6gate-remove-old"
)

// stopSignals are the signals that get a <scandir>/.s6-svscan/ handler (signalHook: the stop
// sequence, or the CMD with S6_CMD_RECEIVE_SIGNALS; SIGWINCH does nothing), as s6-linux-init
// makes them for a container. Others keep s6-svscan's defaults (SIGHUP: rescan and prune).
func stopSignals() []string {
	return []string{"SIGTERM", "SIGINT", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGPWR", "SIGWINCH"}
}

// IsJobName reports whether name, the base name of argv[0], is one under which /init starts
// itself again for another job (stage 2, a stop hook, stage 3, halt). A multi-call binary
// that holds /init (cmd/s6gate) routes these names to Main: boot links them to the running
// executable, which is that binary, not the /init link.
func IsJobName(name string) bool {
	switch name {
	case stage2Name, finishName, crashName, haltName, removeOldName:
		return true
	}
	for _, sig := range stopSignals() {
		if name == sig {
			return true
		}
	}
	return false
}
