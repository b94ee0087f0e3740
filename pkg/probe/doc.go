// Package probe answers the two questions a container orchestrator asks, each about the
// container as a whole and never about one gateway (that is what metrics and `status --check`
// are for):
//
//   - Live: do the supervision trees answer? The root tree's s6-svscan (when this caller may
//     ask it) and, once the boot has succeeded, the gateways' scanner. A failed liveness
//     check restarts the container and with it every gateway, so it fails only when no
//     restart could be worse than what runs now: a scanner that is gone.
//   - Ready: are the container's own services up? The boot succeeded, the gateways' scanner
//     answers, and every services.d service and essential s6-rc longrun that s6 wants up is
//     serving (package svchealth).
//
// Both only read (FIFOs' readers, s6's status files, the boot record): no process is spawned,
// nothing waits, nothing is written. The root tree's status files are root's in a container
// run as root: a caller that may not read them (the HTTP endpoint, which runs as the service
// user) gets the verdict on the rest and Verdict.Partial says so.
package probe
