// Package gatewayrun is the supervised gateway process, `gateway run` (SPEC §7): it takes the
// profile lock, records starting → running, tells s6 it is ready, runs the profile's command
// as a child (or a built-in idle gateway), and on its way out classifies the signal that ended
// it, drains the child within a bound, and persists the one state the next boot must see.
//
// The heart of it is Decide, the persist-decision table:
//
//	situation                                        gateway_state      exit
//	unmarked SIGTERM (container stop, bare kill,     running            1
//	  s6-svc -t), SIGQUIT
//	marked SIGTERM (operator stop), SIGINT           stopped            0
//	SIGUSR1 (restart requested)                      stopped            75
//	fatal configuration                              startup_failed     78
//	child command exited on its own                  unchanged          its status
//	SIGKILL / crash of the gateway itself            unchanged (running)  —
//
// "Unmarked" means no planned-stop marker matched (package marker): whoever stops a gateway on
// purpose leaves one first. Everything else is the container or the supervisor tearing down,
// and the gateway must come back after the restart, so it persists running.
//
// Under exec supervision (Options.Exec; exec.go) Run records the command running (with the
// time it will have settled, which the readers honour), tells s6 it is ready and execs the
// command in place of itself; the slot's finish (Finish) takes the table's decision from how
// the command ended, for the same states. A profile with a readiness check is supervised by
// the wrapper all the same.
//
// Only the gateway command (internal/cmd/gateway) imports this package; the profile lock it holds is package pidlock, its
// exit codes 75 and 78 are in package exitcode.
package gatewayrun
