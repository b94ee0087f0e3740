// Package exitcode is the one exit-code table that every s6gate binary uses, so scripts and
// supervisors can branch on a number instead of parsing messages:
//
//	0  OK      the operation did what was asked (including "nothing to do")
//	1  Failed  the operation was attempted and failed (s6 refused, disk full, time-out, …)
//	2  Usage   bad usage or input: unknown verb or flag, invalid profile or variable name,
//	           missing data root. Nothing on disk was changed.
//
// Packages do not import this one to classify their errors: an error type opts into a code by
// implementing ExitCode() int, and Of walks the %w chain to find it.
package exitcode

import (
	"errors"
	"fmt"
)

// The codes shared by every binary. Programs with a protocol of their own document extra codes
// next to these (for example the gateway's 75 and 78, or /init passing its CMD's status through).
const (
	OK     = 0
	Failed = 1
	Usage  = 2
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
