package boot

import (
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/contenv"
)

// moreKnobs reads the knobs of knobs_s6o.go from the container environment.
func (s *stage2Run) moreKnobs() moreKnobs {
	k, warns := parseMoreKnobs(contenvLookup(s.l))
	for _, w := range warns {
		s.log.printf("stage2: warning: %s", w)
	}
	return k
}

// hook runs S6_STAGE2_HOOK (its words, as s6-overlay's unquoted `$hook`) in the container
// environment and returns its exit code.
func (s *stage2Run) hook(argv []string) int {
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		devnull = os.Stdin
	} else {
		defer devnull.Close()
	}
	env := s.env()
	start := time.Now()
	ws, err := s.runTracked(procSpec{Argv: argv, Env: env, Dir: "/", Files: []*os.File{devnull, os.Stdout, os.Stderr}}, nil)
	var code int
	if err != nil {
		code = contenv.ExecCode(err)
		s.log.printf("stage2: cannot run hook %q: %v (exit %d)", argv, err, code)
		return code
	}
	code = statusCode(ws)
	s.log.printf("stage2: hook %q exited %d (%d ms)", argv, code, time.Since(start).Milliseconds())
	return code
}

// fail stops the container after a stage-2 failure with S6_BEHAVIOUR_IF_STAGE2_FAILS=2: one
// message, the exit code, halt. Only the first failure counts.
func (s *stage2Run) fail(code int, format string, args ...any) {
	s.phaseMu.Lock()
	defer s.phaseMu.Unlock()
	if s.failed {
		return
	}
	s.failed, s.done = true, true
	s.log.printf(format, args...)
	s.setExitcode(code)
	s.halt()
}

// bootDone marks the end of what S6_CMD_WAIT_FOR_SERVICES_MAXTIME covers.
func (s *stage2Run) bootDone() {
	s.phaseMu.Lock()
	s.done = true
	s.phaseMu.Unlock()
}

// deadlinePassed runs when S6_CMD_WAIT_FOR_SERVICES_MAXTIME is over: if fix-attrs,
// cont-init.d or the services are not through, that is a stage-2 failure (s6-rc's "timed
// out", exit code 2). With 2 the container stops (the running script gets the stop's
// SIGTERM); with 1 a warning; with 0 nothing, and stage 2 goes on.
func (s *stage2Run) deadlinePassed(k knobs) {
	s.phaseMu.Lock()
	done := s.done
	s.phaseMu.Unlock()
	if done {
		return
	}
	warn, stop := stage2Decision(k.Stage2Fails, true)
	switch {
	case stop:
		s.fail(2, "stage2: fatal: not done after %s=%d ms and %s=%d: stopping the container with exit code 2", envWaitServicesTime, k.WaitServicesTime.Milliseconds(), envStage2Fails, k.Stage2Fails)
	case warn:
		s.log.printf("stage2: warning: not done after %s=%d ms; continuing", envWaitServicesTime, k.WaitServicesTime.Milliseconds())
	}
}

// cmdFiles are the CMD's stdin, stdout and stderr: stage 2's, so the catch-all logger's with
// S6_LOGGING, except that with S6_CMD_USE_TERMINAL=1 and a terminal on stdin (docker run -it)
// the CMD writes to the container's stderr, the terminal, as in s6-overlay.
func cmdFiles(l layout, env []string) []*os.File {
	files := []*os.File{os.Stdin, os.Stdout, os.Stderr}
	v, _ := contenv.Getenv(env, envUseTerminal)
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err != nil || n <= 0 || !isTerminal(0) {
		return files
	}
	if console := stage2Console(l); console != nil {
		files[1], files[2] = console, console
	}
	return files
}

func isTerminal(fd int) bool {
	_, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	return err == nil
}
