package boot

import (
	"errors"
	"os"
	"strings"
	"time"

	"github.com/s6gate/s6gate/pkg/aside"
)

// removeOld starts, in the background, the removal of what earlier boots left under /run
// (prepareRun set it aside): stage 2 calls it once the services are up, so the removal never
// delays them. Nothing waits for the job: a stop ends it like any other process, and what it
// did not get to is removed after the next boot.
func (s *stage2Run) removeOld() {
	if !hasLeftovers(s.l) {
		return
	}
	self, err := os.Executable()
	if err == nil {
		var devnull *os.File
		if devnull, err = os.Open(os.DevNull); err == nil {
			defer devnull.Close()
			_, _, err = s.reap.spawn(procSpec{Path: self, Argv: []string{removeOldName}, Env: os.Environ(), Dir: "/",
				Files: []*os.File{devnull, os.Stdout, os.Stderr}})
		}
	}
	if err != nil {
		s.log.printf("stage2: warning: cannot start the removal of what earlier boots left under %s: %v (it stays until a later boot removes it)", s.l.Run, err)
	}
}

func hasLeftovers(l layout) bool {
	for _, dir := range l.asideDirs() {
		if old, _ := aside.Leftovers(dir); len(old) > 0 {
			return true
		}
	}
	return false
}

// removeOldJob is the job removeOld starts (argv[0] removeOldName): removeOldTrees at idle
// priority.
func removeOldJob(l layout, log *logger) int {
	if err := aside.Idle(); err != nil {
		log.printf("remove-old: warning: cannot lower my priority: %v", err)
	}
	return removeOldTrees(l, log)
}

// removeOldTrees removes every tree set aside for l.asideDirs and logs one line when it is done.
func removeOldTrees(l layout, log *logger) int {
	start := time.Now()
	var removed int64
	var trees []string
	failed := false
	for _, dir := range l.asideDirs() {
		old, err := aside.Leftovers(dir)
		if err != nil {
			log.printf("remove-old: warning: %v", err)
			failed = true
		}
		for _, p := range old {
			n, err := aside.Remove(p)
			removed += n
			switch {
			case errors.Is(err, aside.ErrBusy): // another job has it
			case err != nil:
				log.printf("remove-old: warning: %v (left for the next boot to remove)", err)
				failed = true
			default:
				trees = append(trees, p)
			}
		}
	}
	if len(trees) > 0 {
		log.printf("remove-old: removed what earlier boots left under %s (%s): %d entries in %d ms",
			l.Run, strings.Join(trees, " "), removed, time.Since(start).Milliseconds())
	}
	if failed {
		return codeSystem
	}
	return codeOK
}
