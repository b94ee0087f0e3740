// Package exitcode is the one exit-code table that every s6gate binary uses, so scripts and
// supervisors can branch on a number instead of parsing messages:
//
//	0   OK           the operation did what was asked (including "nothing to do")
//	1   Failed       the operation was attempted and failed (s6 refused, disk full, time-out, …)
//	2   Usage        bad usage or input: unknown verb or flag, invalid profile or variable
//	                 name, missing data root. Nothing on disk was changed.
//	75  Restart      `gateway run` only: stopped to be started again (EX_TEMPFAIL)
//	78  FatalConfig  `gateway run` only: the profile cannot run as configured (EX_CONFIG); the
//	                 slot's finish turns it into 125 so s6 stops retrying
//	125 GaveUp       `gateway run` only: its command failed the profile's max_failures times in
//	                 a row; the gateway is marked failed and the slot's finish exits 125 too
//	                 (s6's "permanent failure": no restart until an operator starts it)
//
// /init passes its CMD's status through instead (128+signal, 126/127 when exec fails).
//
// # The error-line convention
//
// A package classifies an error by making it with Usagef or by giving its type an
// ExitCode() int method that returns one of these constants (never a bare number); Of walks
// the %w chain to find it, and anything unclassified is Failed. Packages wrap errors with the
// object they acted on (a path, a profile), never with the verb or the program's name: the
// binary prints exactly one line, `prog: verb: cause` (Line).
package exitcode

import (
	"errors"
	"fmt"
	"strings"
)

// The codes shared by every binary. Programs with a protocol of their own document extra codes
// next to these (for example the gateway's 75 and 78, or /init passing its CMD's status through).
const (
	OK          = 0
	Failed      = 1
	Usage       = 2
	Restart     = 75
	FatalConfig = 78
	GaveUp      = 125
)

// Coder is implemented by errors that know which exit code they stand for.
type Coder interface {
	ExitCode() int
}

// Of returns the exit code for err: OK for nil, the code of the first error in the chain that
// implements Coder, and Failed otherwise.
func Of(err error) int {
	if err == nil {
		return OK
	}
	var c Coder
	if errors.As(err, &c) {
		return c.ExitCode()
	}
	return Failed
}

// UsageError is a bad-usage or bad-input error: exit code 2.
type UsageError struct {
	Msg string
}

func (e *UsageError) Error() string { return e.Msg }

// ExitCode implements Coder.
func (e *UsageError) ExitCode() int { return Usage }

// Usagef formats a UsageError.
func Usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}

// Line is the one line a binary prints for err: "prog: verb: cause" (verb may be empty), with
// the cause folded onto one line.
func Line(prog, verb string, err error) string {
	cause := strings.Join(strings.Fields(err.Error()), " ")
	if verb == "" {
		return prog + ": " + cause
	}
	return prog + ": " + verb + ": " + cause
}
