package main

import (
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// S6_STAGE2_HOOK runs first (before fix-attrs.d and cont-init.d), split into words, in the
// container environment; a failing hook stops the container with its code under
// S6_BEHAVIOUR_IF_STAGE2_FAILS=2, and is a warning otherwise.
func TestStage2Hook(t *testing.T) {
	t.Parallel()
	t.Run("runs first", func(t *testing.T) {
		t.Parallel()
		s := newSandbox(t)
		s.write("hook", "#!/bin/sh\necho \"hook $1 $FOO\" >> /out/order\n", 0o755)
		s.write("etc/cont-init.d/10-x", "#!/bin/sh\necho cont-init >> /out/order\n", 0o755)
		s.start(modePID1, []string{"FOO=bar", "S6_STAGE2_HOOK=/hook  arg1"}, "true")
		assert.Equal(t, 0, s.wait())
		assert.Equal(t, "hook arg1 bar\ncont-init\n", s.read("out/order"))
	})
	t.Run("fails", func(t *testing.T) {
		t.Parallel()
		for _, b := range []string{"1", "2"} {
			s := newSandbox(t)
			s.write("hook", "#!/bin/sh\nexit 7\n", 0o755)
			s.write("etc/cont-init.d/10-x", "#!/bin/sh\ntouch /out/cont-init\n", 0o755)
			s.start(modePID1, []string{"S6_STAGE2_HOOK=/hook", "S6_BEHAVIOUR_IF_STAGE2_FAILS=" + b}, "touch", "/out/cmd")
			if b == "2" {
				assert.Equal(t, 7, s.wait(), "the hook's code")
				assert.NoFileExists(t, s.path("out/cont-init"))
				assert.NoFileExists(t, s.path("out/cmd"))
				assert.Contains(t, s.out.String(), `fatal: hook ["/hook"] exited 7`)
			} else {
				assert.Equal(t, 0, s.wait())
				assert.FileExists(t, s.path("out/cmd"))
				assert.Contains(t, s.out.String(), `warning: hook ["/hook"] exited 7`)
			}
		}
	})
}

// /etc/fix-attrs.d: owners and modes, recursion, account fallbacks, hidden files, a failing
// line, and S6_BEHAVIOUR_IF_STAGE2_FAILS=2 stopping the container (exit 1) before cont-init.d.
func TestFixAttrs(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	s.write("data/a/f", "x", 0o600)
	s.write("data/a/.hidden", "x", 0o600)
	s.write("data/a/sub/g", "x", 0o600)
	s.write("data/single", "x", 0o600)
	s.write("etc/fix-attrs.d/01-data", "# comment\n\n/data/a true nobody,32768:32768 0640 2750\n", 0o644)
	s.write("etc/fix-attrs.d/02-single", "/data/single false unexisting:root,3:4 0604 0700\n", 0o644)
	s.write("etc/cont-init.d/10-x", "#!/bin/sh\nstat -c '%u:%g %a' /data/a /data/a/f /data/a/.hidden /data/a/sub /data/a/sub/g /data/single > /out/attrs\n", 0o755)
	s.start(modePID1, nil, "true")
	require.Equal(t, 0, s.wait())
	nobody := "65534:65534"
	assert.Equal(t, strings.Join([]string{
		nobody + " 2750", nobody + " 640", "0:0 600", nobody + " 2750", nobody + " 640", "3:0 604",
	}, "\n")+"\n", s.read("out/attrs"))
	assert.Contains(t, s.out.String(), "fix-attrs: warning: fix-attrs is deprecated")

	s2 := newSandbox(t)
	s2.write("etc/fix-attrs.d/01-bad", "/nonexistent true root 0644 0755\n", 0o644)
	s2.write("etc/cont-init.d/10-x", "#!/bin/sh\ntouch /out/cont-init\n", 0o755)
	s2.start(modePID1, []string{"S6_BEHAVIOUR_IF_STAGE2_FAILS=2"}, "true")
	assert.Equal(t, 1, s2.wait())
	assert.NoFileExists(t, s2.path("out/cont-init"), "fix-attrs.d failed: cont-init.d does not run")
	assert.Contains(t, s2.out.String(), "failed to apply")

	s3 := newSandbox(t)
	s3.write("data/a/.hidden", "x", 0o600)
	s3.write("etc/fix-attrs.d/01-data", "/data/a true root 0644 0755\n", 0o644)
	s3.start(modePID1, []string{"S6_FIX_ATTRS_HIDDEN=1"}, "true")
	assert.Equal(t, 0, s3.wait())
	st, err := os.Stat(s3.path("data/a/.hidden"))
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), st.Mode().Perm(), "S6_FIX_ATTRS_HIDDEN=1 includes dot files")
}

// S6_CMD_WAIT_FOR_SERVICES_MAXTIME covers cont-init.d too: a script still running at the
// deadline stops the container (exit 2, s6-rc's "timed out") under
// S6_BEHAVIOUR_IF_STAGE2_FAILS=2, and is only a warning under 1.
func TestMaxTimeCoversContInit(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	s.write("etc/cont-init.d/10-slow", "#!/bin/sh\nexec sleep 30\n", 0o755)
	s.start(modePID1, []string{"S6_CMD_WAIT_FOR_SERVICES_MAXTIME=300", "S6_BEHAVIOUR_IF_STAGE2_FAILS=2"}, "touch", "/out/cmd")
	assert.Equal(t, 2, s.wait())
	assert.NoFileExists(t, s.path("out/cmd"))
	assert.Less(t, s.ended.Sub(s.started), 20*time.Second, "the cont-init.d script's 30 s were not waited for")
	assert.Contains(t, s.out.String(), "not done after S6_CMD_WAIT_FOR_SERVICES_MAXTIME=300 ms")

	s2 := newSandbox(t)
	s2.write("etc/cont-init.d/10-slow", "#!/bin/sh\nsleep 0.5\n", 0o755)
	s2.start(modePID1, []string{"S6_CMD_WAIT_FOR_SERVICES_MAXTIME=100", "S6_BEHAVIOUR_IF_STAGE2_FAILS=1"}, "touch", "/out/cmd")
	assert.Equal(t, 0, s2.wait())
	assert.FileExists(t, s2.path("out/cmd"))
	assert.Contains(t, s2.out.String(), "warning: not done after S6_CMD_WAIT_FOR_SERVICES_MAXTIME=100 ms")
}

// s6-linux-init's container handlers: SIGUSR1, SIGUSR2 and SIGPWR stop the container like
// SIGTERM; SIGWINCH does nothing.
func TestSignalsToPID1(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGPWR} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)
			s.write("etc/services.d/svc/run", "#!/bin/sh\necho $$ > /out/svc.pid\nexec sleep 1000\n", 0o755)
			s.start(modePID1, nil)
			s.waitContent("out/svc.pid")
			s.signal(syscall.SIGWINCH)
			s.signal(sig)
			assert.Equal(t, 0, s.wait())
			assert.Contains(t, s.out.String(), "stop: "+unixSigName(sig)+" received")
			assert.NotContains(t, s.out.String(), "SIGWINCH received")
		})
	}
}

func unixSigName(sig syscall.Signal) string { return unix.SignalName(sig) }

// SIGWINCH alone leaves the container running.
func TestSigwinchIgnored(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	s.write("etc/services.d/svc/run", "#!/bin/sh\necho $$ >> /out/svc.pid\nexec sleep 1000\n", 0o755)
	s.write("etc/services.d/mark/run", "#!/bin/sh\ntest -e /out/winch && touch /out/after-winch\nexec sleep 1000\n", 0o755)
	s.start(modePID1, nil)
	s.waitContent("out/svc.pid")
	s.signal(syscall.SIGWINCH)
	// Proof that the tree kept running after the signal: a service restarted afterwards runs.
	s.write("out/winch", "", 0o644)
	_, err := s.inside("/command/s6-svc", "-r", "/run/service/mark")
	require.NoError(t, err)
	s.waitFile("out/after-winch")
	select {
	case <-s.done:
		t.Fatal("SIGWINCH stopped the container")
	default:
	}
	s.signal(syscall.SIGTERM)
	assert.Equal(t, 0, s.wait())
}

// S6_CMD_RECEIVE_SIGNALS: while the CMD runs, signals to PID 1 go to it (and the container
// stops when it exits, with its code); halt from inside still stops the container.
func TestCmdReceiveSignals(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	s.write("cmd", "#!/bin/sh\ntrap 'echo USR1 >> /out/got' USR1\ntrap 'echo TERM >> /out/got; exit 42' TERM\necho ready > /out/ready\nwhile :; do sleep 0.05; done\n", 0o755)
	s.start(modePID1, []string{"S6_CMD_RECEIVE_SIGNALS=1"}, "/cmd")
	s.waitContent("out/ready")
	s.signal(syscall.SIGUSR1)
	s.eventually(func() bool { return s.read("out/got") == "USR1\n" }, "USR1 at the CMD")
	s.signal(syscall.SIGTERM)
	assert.Equal(t, 42, s.wait(), "the CMD got TERM and its exit code is the container's")
	assert.Equal(t, "USR1\nTERM\n", s.read("out/got"))
	assert.Contains(t, s.out.String(), "signal: SIGUSR1 forwarded to the CMD")

	// A CMD that survives TERM calls halt: the stop is not diverted to it (it would run
	// forever): it runs, and the CMD is killed at its end.
	s2 := newSandbox(t)
	s2.write("cmd", "#!/bin/sh\ntrap 'echo TERM >> /out/got' TERM\n/run/s6/basedir/bin/halt\nwhile :; do sleep 0.05; done\n", 0o755)
	s2.start(modePID1, []string{"S6_CMD_RECEIVE_SIGNALS=1", "S6_SERVICES_GRACETIME=300", "S6_KILL_GRACETIME=300"}, "/cmd")
	s2.wait() // fails the test if the container is still running after the sandbox timeout
	assert.Contains(t, s2.out.String(), "stop: SIGTERM received")
	assert.NotContains(t, s2.out.String(), "forwarded to the CMD")
}

// S6_VERBOSITY: 0 errors only, 1 warnings too, 2 (default) every step. And each unsupported
// knob gets one boot line.
func TestVerbosityAndUnsupportedKnobs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		v             string
		info, warning bool
	}{{"0", false, false}, {"1", false, true}, {"2", true, true}} {
		s := newSandbox(t)
		s.write("etc/cont-init.d/10-x", "#!/bin/sh\nexit 0\n", 0o644) // not executable: a warning
		s.start(modePID1, []string{"S6_VERBOSITY=" + tc.v}, "sh", "-c", "exit 3")
		assert.Equal(t, 3, s.wait())
		out := s.out.String()
		assert.Equal(t, tc.info, strings.Contains(out, "stage2: running CMD"), "S6_VERBOSITY=%s info: %s", tc.v, out)
		assert.Equal(t, tc.warning, strings.Contains(out, "is not executable"), "S6_VERBOSITY=%s warning: %s", tc.v, out)
	}
	s := newSandbox(t)
	s.start(modePID1, []string{"S6_RUNTIME_PROFILE=dev", "S6_SERVICES_READYTIME=100", "S6_WAIT_FOR_CLOSING_FD=3"}, "true")
	assert.Equal(t, 0, s.wait())
	out := s.out.String()
	for _, knob := range []string{"S6_RUNTIME_PROFILE=", "S6_SERVICES_READYTIME=", "S6_WAIT_FOR_CLOSING_FD=3"} {
		assert.Equal(t, 1, strings.Count(out, "boot: warning: "+knob), "one boot line for %s:\n%s", knob, out)
	}
}

// S6_LOGGING: 1 sends what stage 2 (cont-init.d), the services without a logger and the CMD
// write to the catch-all logger in /run/uncaught-logs and to stderr; 2 only to the logger;
// S6_CATCHALL_USER runs it as that user. The stop stays prompt (the logger goes with the last
// processes) and stage 3's lines still reach stderr.
func TestCatchallLogger(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"1", "2"} {
		t.Run("S6_LOGGING="+mode, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)
			s.write("etc/cont-init.d/10-x", "#!/bin/sh\necho from-cont-init\n", 0o755)
			s.write("etc/services.d/svc/run", "#!/bin/sh\necho from-service\necho from-service-stderr >&2\ntouch /out/svc-started\nexec sleep 1000\n", 0o755)
			s.write("cmd", "#!/bin/sh\nuntil grep -q from-service-stderr /run/uncaught-logs/current 2>/dev/null; do sleep 0.02; done\necho from-cmd\ncp /run/uncaught-logs/current /out/current-at-cmd\nstat -c %U /run/uncaught-logs/current > /out/owner\n", 0o755)
			s.start(modePID1, []string{"S6_LOGGING=" + mode, "S6_CATCHALL_USER=nobody", "S6_KILL_GRACETIME=" + longGrace, "S6_LOGGING_SCRIPT=n3 T"}, "/cmd")
			assert.Equal(t, 0, s.wait())
			assert.Less(t, s.ended.Sub(s.started), promptStop, "the logger does not hold the stop for S6_KILL_GRACETIME")
			logged := s.read("out/current-at-cmd")
			for _, line := range []string{"from-cont-init", "from-service", "from-service-stderr", "s6gate-init: cont-init: 10-x exited 0"} {
				assert.Contains(t, logged, line, "in /run/uncaught-logs/current")
			}
			assert.Regexp(t, `(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+ +from-service$`, logged, "T timestamps from S6_LOGGING_SCRIPT")
			assert.Equal(t, "nobody\n", s.read("out/owner"), "S6_CATCHALL_USER")
			out := s.out.String()
			assert.Equal(t, mode == "1", strings.Contains(out, "from-service-stderr"), "a copy on stderr only with 1:\n%s", out)
			assert.Contains(t, out, "stop: done in", "stage 3 writes to stderr (s6-svscan gives it back before finish)")
			assert.Contains(t, out, "boot: S6_LOGGING="+mode)
		})
	}
}
