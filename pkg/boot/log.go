package boot

import (
	"fmt"
	"io"
	"strings"
	"sync"
)

// logger writes the one-line progress messages of /init: "s6gate-init: <phase>: <message>".
// Each line goes out in a single write so lines from concurrent processes (stage 2, the stop
// hook, s6 itself) do not interleave on the container's stderr.
//
// S6_VERBOSITY filters them: a line with "fatal:" (or "cannot ", an error) always goes out, one with "warning:" from
// verbosity 1, every other line (information) from 2, the default.
type logger struct {
	mu        sync.Mutex
	w         io.Writer
	verbosity int
}

func newLogger(w io.Writer) *logger { return &logger{w: w, verbosity: defaultVerbosity} }

// lineLevel is the verbosity a message needs to be printed.
func lineLevel(msg string) int {
	switch {
	case strings.Contains(msg, "fatal:"), strings.Contains(msg, "cannot "):
		return verbosityErrors
	case strings.Contains(msg, "warning:"):
		return verbosityWarnings
	default:
		return defaultVerbosity
	}
}

func (l *logger) printf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	if lineLevel(msg) > l.verbosity {
		return
	}
	_, _ = io.WriteString(l.w, "s6gate-init: "+msg+"\n")
}
