package boot

import (
	"fmt"
	"io"
	"sync"
)

// logger writes the one-line progress messages of /init: "s6gate-init: <phase>: <message>".
// Each line goes out in a single write so lines from concurrent processes (stage 2, the stop
// hook, s6 itself) do not interleave on the container's stderr.
type logger struct {
	mu sync.Mutex
	w  io.Writer
}

func newLogger(w io.Writer) *logger { return &logger{w: w} }

func (l *logger) printf(format string, args ...any) {
	line := "s6gate-init: " + fmt.Sprintf(format, args...) + "\n"
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = io.WriteString(l.w, line)
}
