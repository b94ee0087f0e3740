// Package operator implements the operator verbs (SPEC §8): register, unregister, start, stop,
// restart, status and list. Each verb validates everything it was given before it touches the
// file system, records the operator's intent (desired_state) in the profile's state file, and
// then acts through s6 on the profile's slot.
//
// Intent first, then s6: if the s6 call fails, the recorded intent still says what the
// operator asked for, and the next boot honours it. A verb naming a profile without a slot
// fails with *slot.NotRegisteredError before any s6 tool runs and before anything is written,
// so a typo never creates a profile. Raw s6-svc calls bypass the recorded intent.
//
// stop writes a planned-stop marker for the PID s6 supervises before it asks s6 to bring the
// slot down, so the gateway persists "stopped"; failing to write it never blocks the stop.
//
// Before a verb on one profile does anything it waits for the boot (an s6-svscan answering on
// the scan directory) and takes the profile's verb lock (package verblock), and re-checks
// under the lock that the profile is still registered.
//
// The verbs act with the caller's rights; the gateway binary becomes the service user first
// (package svcuser), so that everything they create is the service user's.
package operator
