package main

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The grace times of a test whose stop must not wait for them, and the bound on that stop:
// the bound is far above what a stop takes on a busy machine (CI runs beside two busy loops per
// core) and still far below the grace, so a stop that waits it out fails.
const (
	longGrace  = "20000" // ms
	promptStop = 10 * time.Second
)

func TestMain(m *testing.M) {
	if spec := os.Getenv(sandboxEnv); spec != "" {
		runSandbox(spec) // never returns
	}
	dir, err := os.MkdirTemp("", "s6gate-init-test-bin-")
	if err != nil {
		panic(err)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// The full life of a container without a CMD: boot leftovers cleaned, the s6-overlay layout,
// cont-init.d before services.d, the container environment, supervision, and a docker stop
// that returns as soon as everything is down — far below the grace times.
func TestBootSuperviseAndStop(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	// Leftovers of an earlier life of the same writable layer.
	s.write("run/service/stale/run", "#!/bin/sh\nexec sleep 1000\n", 0o755)
	s.write("run/s6/leftover", "x", 0o644)
	s.write("run/s6-linux-init-container-results/exitcode", "99\n", 0o644)
	s.write("var/run/old.pid", "1", 0o644)

	s.write("etc/cont-init.d/10-first", "#!/bin/sh\necho 10-first >> /out/order\n", 0o755)
	s.write("etc/cont-init.d/02-zero", "#!/bin/sh\necho 02-zero >> /out/order\n", 0o755)
	s.write("etc/cont-init.d/05-noexec", "#!/bin/sh\necho 05-noexec >> /out/order\n", 0o644)
	s.write("etc/cont-init.d/.hidden", "#!/bin/sh\necho hidden >> /out/order\n", 0o755)
	s.write("etc/cont-init.d/20-env", "#!/bin/sh\necho 20-env >> /out/order\nid -u > /out/cont-init.uid\necho \"$FOO\" > /out/cont-init.foo\n", 0o755)
	s.write("etc/services.d/svc/run", "#!/command/with-contenv /bin/sh\ncp /out/order /out/order-at-svc-start\necho \"FOO=$FOO\" > /out/svc.env\necho $$ >> /out/svc.pids\nexec sleep 1000\n", 0o755)
	s.write("etc/services.d/plain/run", "#!/bin/sh\nenv > /out/plain.env\nexec sleep 1000\n", 0o755)
	s.write("etc/services.d/logged/run", "#!/bin/sh\necho hello-from-logged\nexec sleep 1000\n", 0o755)
	s.write("etc/services.d/logged/log/run", "#!/bin/sh\nmkdir -p /var/log/logged\nexec s6-log /var/log/logged\n", 0o755)
	s.write("etc/cont-finish.d/10-finish", "#!/bin/sh\necho finished > /out/finished\n", 0o755)

	s.start(modePID1, []string{"FOO=bar baz", "S6_SERVICES_GRACETIME=" + longGrace, "S6_KILL_GRACETIME=" + longGrace})
	s.waitContent("out/svc.pids")
	s.waitContent("out/plain.env")

	comm, err := os.ReadFile("/proc/" + itoa(s.hostPid()) + "/comm")
	require.NoError(t, err)
	assert.Equal(t, "s6-svscan\n", string(comm), "PID 1 of the container is s6-svscan")
	cmdline, _ := os.ReadFile("/proc/" + itoa(s.hostPid()) + "/cmdline")
	assert.Contains(t, string(cmdline), "/run/service")

	// Layout.
	assert.NoDirExists(t, s.path("run/service/stale"), "/run/service is emptied at boot")
	assert.NoFileExists(t, s.path("run/s6/leftover"))
	assert.NoFileExists(t, s.path("run/s6-linux-init-container-results/exitcode"), "a stale exit code must not leak")
	assert.DirExists(t, s.path("run/s6-linux-init-container-results"))
	link, err := os.Readlink(s.path("var/run"))
	require.NoError(t, err, "/var/run is a symlink")
	assert.Equal(t, "/run", link)
	assert.FileExists(t, s.path("run/s6/basedir/bin/halt"))
	for _, tool := range []string{"s6-svc", "s6-svscanctl", "s6-svstat", "s6-setuidgid", "s6-log", "execlineb", "with-contenv", "printcontenv"} {
		assert.FileExists(t, s.path("command/"+tool), "/command/%s", tool)
	}
	target, err := os.Readlink(s.path("run/service/svc"))
	require.NoError(t, err)
	assert.Equal(t, "/run/s6/legacy-services/svc", target)

	// cont-init.d: lexical order, non-executable and dot files skipped, before services, as root.
	assert.Equal(t, "02-zero\n10-first\n20-env\n", s.read("out/order"))
	assert.Equal(t, "02-zero\n10-first\n20-env\n", s.read("out/order-at-svc-start"))
	assert.Equal(t, "0\n", s.read("out/cont-init.uid"))
	assert.Contains(t, s.out.String(), "05-noexec is not executable: skipped")

	// Container environment: dumped, restored by with-contenv, absent from a plain service.
	assert.Equal(t, "bar baz", s.read("run/s6/container_environment/FOO"))
	assert.Equal(t, "bar baz\n", s.read("out/cont-init.foo"))
	assert.Equal(t, "FOO=bar baz\n", s.read("out/svc.env"))
	assert.NotContains(t, s.read("out/plain.env"), "FOO=")
	assert.Contains(t, s.read("out/plain.env"), "PATH=/command:")
	out, err := s.inside("/command/printcontenv", "FOO")
	require.NoError(t, err, out)
	assert.Equal(t, "bar baz\n", out)

	// Supervision: kill the service, s6 starts it again.
	first := strings.TrimSpace(s.read("out/svc.pids"))
	out, err = s.inside("/command/s6-svc", "-k", "/run/service/svc")
	require.NoError(t, err, out)
	s.eventually(func() bool { return len(strings.Fields(s.read("out/svc.pids"))) >= 2 }, "svc restarted")
	assert.NotEqual(t, first, strings.Fields(s.read("out/svc.pids"))[1])
	s.eventually(func() bool { return strings.Contains(s.read("var/log/logged/current"), "hello-from-logged") }, "logger output")

	// docker stop: everything exits at once on TERM, so the stop must not wait for the grace.
	sent := s.signal(syscall.SIGTERM)
	code := s.wait()
	elapsed := s.ended.Sub(sent)
	assert.Equal(t, 0, code)
	assert.Less(t, elapsed, promptStop, "stop took %s with %s ms grace times", elapsed, longGrace)
	assert.Equal(t, "finished\n", s.read("out/finished"), "cont-finish.d ran")
	logs := s.out.String()
	for _, line := range []string{
		"s6gate-init: boot: container environment saved to /run/s6/container_environment",
		"s6gate-init: stage2: running 3 scripts from /etc/cont-init.d",
		"s6gate-init: stage2: cont-init.d done in",
		"s6gate-init: stage2: supervising 3 services from /etc/services.d: logged plain svc",
		"s6gate-init: stage2: no CMD",
		"s6gate-init: stop: SIGTERM received: bringing services down (S6_SERVICES_GRACETIME=" + longGrace + " ms)",
		"s6gate-init: stop: 3 services down in",
		"s6gate-init: cont-finish: 10-finish exited 0",
		"s6gate-init: stop: done in",
	} {
		assert.Contains(t, logs, line)
	}
	assert.Contains(t, s.read("var/log/logged/current"), "hello-from-logged")
}

// The CMD's status is the container's: exit codes, 128+signal, 126/127 when it cannot run.
func TestCmdExitCode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		cmd  []string
		code int
	}{
		{"exit 0", []string{"sh", "-c", "exit 0"}, 0},
		{"exit 7", []string{"sh", "-c", "exit 7"}, 7},
		{"exit 255", []string{"sh", "-c", "exit 255"}, 255},
		{"signal USR1", []string{"sh", "-c", "kill -USR1 $$"}, 128 + int(syscall.SIGUSR1)},
		{"not found", []string{"no-such-command"}, 127},
		{"not executable", []string{"/etc/passwd"}, 126},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)
			s.start(modePID1, nil, tc.cmd...)
			assert.Equal(t, tc.code, s.wait())
			assert.Contains(t, s.out.String(), "s6gate-init: stop: done in")
		})
	}
}

// The CMD runs after cont-init.d and services.d, in the container environment and WORKDIR,
// with S6_CMD_ARG0 in front; the exit code file can be overridden by nobody else meanwhile.
func TestCmdEnvironment(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	s.write("etc/cont-init.d/10-addvar", "#!/bin/sh\nprintf added > /run/s6/container_environment/ADDED\n", 0o755)
	// "Up" only means spawned; readiness (notification-fd) is what the CMD can rely on.
	s.write("etc/services.d/svc/notification-fd", "3\n", 0o644)
	s.write("etc/services.d/svc/run", "#!/bin/sh\nsleep 0.2\ntouch /out/svc-started\necho >&3\nexec sleep 1000\n", 0o755)
	s.start(modePID1, []string{"FOO=bar", "S6_CMD_ARG0=/bin/sh -c", "S6_CMD_WAIT_FOR_SERVICES=1"},
		`echo "FOO=$FOO ADDED=$ADDED pwd=$(pwd)" > /out/cmd; test -e /out/svc-started && exit 3`)
	assert.Equal(t, 3, s.wait(), "the service was ready before the CMD (S6_CMD_WAIT_FOR_SERVICES)")
	assert.Equal(t, "FOO=bar ADDED=added pwd=/\n", s.read("out/cmd"))
}

// S6_BEHAVIOUR_IF_STAGE2_FAILS, as s6-overlay: every cont-init.d script runs whatever the
// value; 0 continue silently, 1 continue with a warning, 2 stop the container with exit code 1
// (the CMD does not run, cont-finish.d does).
func TestStage2Fails(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		behaviour string
		code      int
		warn      bool
		cmd       bool
	}{
		{"0", 0, false, true},
		{"1", 0, true, true},
		{"2", 1, true, false},
	} {
		t.Run("S6_BEHAVIOUR_IF_STAGE2_FAILS="+tc.behaviour, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)
			s.write("etc/cont-init.d/10-ok", "#!/bin/sh\ntouch /out/10-ok\n", 0o755)
			s.write("etc/cont-init.d/20-fail", "#!/bin/sh\nexit 3\n", 0o755)
			s.write("etc/cont-init.d/30-later", "#!/bin/sh\ntouch /out/30-later\n", 0o755)
			s.write("etc/cont-finish.d/10-finish", "#!/bin/sh\ntouch /out/finished\n", 0o755)
			s.start(modePID1, []string{"S6_BEHAVIOUR_IF_STAGE2_FAILS=" + tc.behaviour}, "touch", "/out/cmd")
			assert.Equal(t, tc.code, s.wait())
			assert.FileExists(t, s.path("out/10-ok"))
			assert.FileExists(t, s.path("out/30-later"), "later cont-init.d scripts run")
			assert.FileExists(t, s.path("out/finished"))
			assert.Equal(t, tc.cmd, fileExists(s.path("out/cmd")), "CMD")
			assert.Equal(t, tc.warn, strings.Contains(s.out.String(), "exited nonzero"), "warning or stop message")
			assert.Contains(t, s.out.String(), "cont-init: 20-fail exited 3")
		})
	}
}

// A service that ignores SIGTERM is killed once the grace times are over; the stop still
// ends with exit code 0, and not much later than the sum of the two grace times.
func TestStopKillsStubbornService(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	s.write("etc/services.d/stubborn/run", "#!/bin/sh\ntrap '' TERM\necho $$ > /out/stubborn.pid\nexec sleep 1000\n", 0o755)
	s.write("etc/services.d/prompt/run", "#!/bin/sh\nexec sleep 1000\n", 0o755)
	s.start(modePID1, []string{"S6_SERVICES_GRACETIME=500", "S6_KILL_GRACETIME=1000"})
	s.waitContent("out/stubborn.pid")
	sent := s.signal(syscall.SIGTERM)
	assert.Equal(t, 0, s.wait())
	elapsed := s.ended.Sub(sent)
	assert.GreaterOrEqual(t, elapsed, 1400*time.Millisecond, "the stubborn service had its grace")
	// The grace times themselves are pinned by the log lines below; past them the stop only
	// has to end (4 s was once 4.7 s beside two busy loops per core and another test run).
	assert.Less(t, elapsed, 1500*time.Millisecond+promptStop)
	logs := s.out.String()
	assert.Contains(t, logs, "s6gate-init: stop: 1 of 2 services still up after 500 ms: stubborn")
	assert.Contains(t, logs, "still alive after 1000 ms: sending KILL")
}

// A cont-finish.d script that hangs is killed after S6_KILL_FINISH_MAXTIME; the next one runs.
func TestFinishMaxTime(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	s.write("etc/cont-finish.d/10-hang", "#!/bin/sh\nexec sleep 1000\n", 0o755)
	s.write("etc/cont-finish.d/20-next", "#!/bin/sh\ntouch /out/next\n", 0o755)
	// The time is each script's: 20-next must get done in it on a busy machine too (200 ms
	// was once too short for its touch beside two busy loops per core and another test run).
	s.start(modePID1, []string{"S6_KILL_FINISH_MAXTIME=3000"}, "true")
	assert.Equal(t, 0, s.wait())
	assert.FileExists(t, s.path("out/next"))
	assert.Contains(t, s.out.String(), "s6gate-init: cont-finish: 10-hang killed after 3000 ms (S6_KILL_FINISH_MAXTIME)")
	assert.Less(t, s.ended.Sub(s.started), 3*time.Second+promptStop, "the hanging script was not waited for")
}

// halt from inside, with an exit code chosen through the exitcode file.
func TestHaltWithExitcode(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	s.write("etc/services.d/stopper/run", "#!/bin/sh\nprintf 5 > /run/s6-linux-init-container-results/exitcode\n/run/s6/basedir/bin/halt\nexec sleep 1000\n", 0o755)
	s.start(modePID1, nil)
	assert.Equal(t, 5, s.wait())
}

// Orphans re-parented to PID 1 are reaped: no zombie stays.
func TestOrphansReaped(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	s.start(modePID1, nil, "sh", "-c", "for i in 1 2 3 4 5; do (sleep 0.1 &); done; touch /out/spawned; exec sleep 1000")
	s.waitFile("out/spawned")
	s.eventually(func() bool {
		sleeps, zombies := 0, 0
		for _, p := range s.procs() {
			if p.State == 'Z' {
				zombies++
			}
			if p.Comm == "sleep" {
				sleeps++
			}
		}
		return sleeps == 1 && zombies == 0
	}, "the five orphans gone and reaped")
	s.signal(syscall.SIGTERM)
	assert.Equal(t, 128+int(syscall.SIGTERM), s.wait(), "the CMD was stopped by SIGTERM: its status is the container's")
}

// S6_KEEP_ENV=1: no environment directory, the supervision tree sees everything.
func TestKeepEnv(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	s.write("etc/services.d/plain/run", "#!/bin/sh\necho \"FOO=$FOO\" > /out/plain.env\nexec sleep 1000\n", 0o755)
	s.start(modePID1, []string{"S6_KEEP_ENV=1", "FOO=kept"}, "sh", "-c", "while [ ! -s /out/plain.env ]; do sleep 0.01; done; printcontenv FOO > /out/printcontenv")
	assert.Equal(t, 0, s.wait())
	assert.Equal(t, "FOO=kept\n", s.read("out/plain.env"))
	assert.Equal(t, "kept\n", s.read("out/printcontenv"))
	assert.NoDirExists(t, s.path("run/s6/container_environment"))
}

// docker run --init: /init is not PID 1. It says so, becomes a sub-reaper under the other
// init, and the container works: CMD status, services, orphans adopted, stop.
func TestNotPID1(t *testing.T) {
	t.Parallel()
	t.Run("cmd", func(t *testing.T) {
		t.Parallel()
		s := newSandbox(t)
		s.start(modeChild, nil, "sh", "-c", "exit 7")
		assert.Equal(t, 7, s.wait())
		assert.Regexp(t, `s6gate-init: boot: not PID 1 \(pid \d+ under "exe"\): running as a child sub-reaper`, s.out.String())
	})
	t.Run("services and stop", func(t *testing.T) {
		t.Parallel()
		s := newSandbox(t)
		s.write("etc/services.d/svc/run", "#!/bin/sh\ntouch /out/svc\nexec sleep 999\n", 0o755)
		s.write("etc/cont-finish.d/10-finish", "#!/bin/sh\ntouch /out/finished\n", 0o755)
		s.start(modeChild, []string{"S6_KILL_GRACETIME=" + longGrace, "S6_SERVICES_GRACETIME=" + longGrace},
			"sh", "-c", "(sleep 1000 &); touch /out/spawned; exec sleep 2000")
		s.waitFile("out/svc")
		s.waitFile("out/spawned")
		var svscan, orphan nsProc
		s.eventually(func() bool {
			for _, p := range s.procs() {
				switch {
				case p.Comm == "s6-svscan":
					svscan = p
				case p.Cmdline == "sleep 1000" && p.HostPPid != 0:
					orphan = p
				}
			}
			return svscan.HostPid != 0 && orphan.HostPid != 0 && orphan.HostPPid == svscan.HostPid
		}, "the orphan adopted by s6-svscan (the sub-reaper), not by the init above")
		assert.NotEqual(t, 1, svscan.NsPid)

		sent := s.signal(syscall.SIGTERM) // to the mini docker-init, which forwards it
		assert.Equal(t, 128+int(syscall.SIGTERM), s.wait())
		assert.Less(t, s.ended.Sub(sent), promptStop)
		assert.FileExists(t, s.path("out/finished"))
		assert.Contains(t, s.out.String(), "s6gate-init: stop: SIGTERM received")
	})
}

// Every stop signal docker can send runs the same bounded stop; a second one while it runs
// is ignored, also once stage 3 (Go code as PID 1) has taken over.
func TestStopSignals(t *testing.T) {
	t.Parallel()
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)
			s.write("etc/services.d/svc/run", "#!/bin/sh\necho up > /out/svc\nexec sleep 1000\n", 0o755)
			s.write("etc/cont-finish.d/10-slow", "#!/bin/sh\ntouch /out/finish-started\nsleep 0.3\necho done > /out/finish-done\n", 0o755)
			s.start(modePID1, []string{"S6_SERVICES_GRACETIME=5000", "S6_KILL_GRACETIME=5000"})
			s.waitContent("out/svc")
			s.signal(sig)
			s.waitFile("out/finish-started")
			s.signal(syscall.SIGTERM) // docker stop again, while stage 3 runs
			s.signal(syscall.SIGUSR1) // and a stray signal
			assert.Equal(t, 0, s.wait())
			assert.Equal(t, "done\n", s.read("out/finish-done"), "cont-finish.d was not cut short")
			assert.Contains(t, s.out.String(), "s6gate-init: stop: "+sigName(sig)+" received")
		})
	}
}

// A stop while a cont-init.d script still runs: the script gets the SIGTERM, nothing after it
// starts, cont-finish.d runs.
func TestStopDuringContInit(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	s.write("etc/cont-init.d/10-slow", "#!/bin/sh\necho started > /out/slow\nexec sleep 1000\n", 0o755)
	s.write("etc/cont-init.d/20-later", "#!/bin/sh\ntouch /out/later\n", 0o755)
	s.write("etc/services.d/svc/run", "#!/bin/sh\ntouch /out/svc\nexec sleep 1000\n", 0o755)
	s.write("etc/cont-finish.d/10-finish", "#!/bin/sh\ntouch /out/finished\n", 0o755)
	s.start(modePID1, []string{"S6_SERVICES_GRACETIME=" + longGrace, "S6_KILL_GRACETIME=" + longGrace}, "touch", "/out/cmd")
	s.waitContent("out/slow")
	sent := s.signal(syscall.SIGTERM)
	assert.Equal(t, 0, s.wait())
	assert.Less(t, s.ended.Sub(sent), promptStop)
	for _, f := range []string{"out/later", "out/svc", "out/cmd"} {
		assert.NoFileExists(t, s.path(f))
	}
	assert.FileExists(t, s.path("out/finished"))
	assert.Contains(t, s.out.String(), "cont-init: 10-slow exited 143")
}

// Orphans are also reaped while Go code is PID 1 again (stage 3): a cont-finish.d script
// leaves orphans behind, the next one checks from inside that none stays a zombie.
func TestOrphansReapedInStage3(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	s.write("etc/cont-finish.d/10-orphans", "#!/bin/sh\nfor i in 1 2 3; do (sleep 0.05 &); done\n", 0o755)
	s.write("etc/cont-finish.d/20-check", `#!/bin/sh
i=0
while [ $i -lt 300 ]; do
  z=$(grep -l '^State:.*zombie' /proc/[0-9]*/status 2>/dev/null | wc -l)
  n=$(grep -l '^Name:.sleep$' /proc/[0-9]*/status 2>/dev/null | wc -l)
  if [ "$z" -eq 0 ] && [ "$n" -eq 0 ]; then echo reaped > /out/stage3; exit 0; fi
  sleep 0.01
  i=$((i+1))
done
echo "zombies=$z sleeps=$n" > /out/stage3
`, 0o755)
	s.start(modePID1, nil, "sh", "-c", "exit 0")
	assert.Equal(t, 0, s.wait())
	assert.Equal(t, "reaped\n", s.read("out/stage3"))
}

// docker restart: the same writable layer boots again, cleanly.
func TestRestartSameLayer(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	s.write("etc/services.d/svc/run", "#!/bin/sh\necho $$ >> /out/svc.pids\nexec sleep 1000\n", 0o755)
	s.write("etc/cont-init.d/10-slot", "#!/bin/sh\nmkdir -p /run/service/runtime-slot\nprintf '#!/bin/sh\\nexec sleep 1000\\n' > /run/service/runtime-slot/run\nchmod +x /run/service/runtime-slot/run\necho boot >> /out/boots\n", 0o755)
	s.start(modePID1, nil)
	s.waitContent("out/svc.pids")
	s.signal(syscall.SIGTERM)
	require.Equal(t, 0, s.wait())
	require.FileExists(t, s.path("run/service/runtime-slot/run"), "left behind, like docker stop leaves it")

	// What a boot under load failed to delete (a file where s6 has a directory and the reverse),
	// and a deep tree: the next boot sets them aside and removes them once its services are up.
	require.NoError(t, os.RemoveAll(s.path("run/s6-rc/servicedirs")))
	s.write("run/s6-rc/servicedirs", "a file where a directory goes", 0o644)
	require.NoError(t, os.Remove(s.path("run/service/runtime-slot/supervise/lock")))
	s.write("run/service/runtime-slot/supervise/lock/x", "", 0o644)
	require.NoError(t, os.MkdirAll(s.path("run/s6/"+strings.Repeat("d/", 1000)), 0o755))

	s2 := s.again()
	s2.write("out/svc.pids", "", 0o644)
	s2.start(modePID1, nil, "sh", "-c", "ls /run/service > /out/scandir; while ls -d /run/.s6.old-* /run/.s6-rc.old-* /run/.service.old-* >/dev/null 2>&1 || grep -qs 's6gate-remove-ol[d]' /proc/[0-9]*/cmdline; do sleep 0.05; done; exit 4")
	// The CMD ends once the remover, an idle-priority process, has removed the old trees and
	// exited (having logged what it removed).
	assert.Equal(t, 4, s2.waitFor(10*time.Minute))
	assert.Equal(t, "boot\nboot\n", s2.read("out/boots"))
	assert.Equal(t, "runtime-slot\nsvc\n", s2.read("out/scandir"), "rebuilt by this boot's cont-init.d and services.d only")
	assert.Contains(t, s2.out.String(), "s6gate-init: remove-old: removed what earlier boots left under /run")
	assert.NotContains(t, s2.out.String(), "tool links created", "the /command links of the first boot are kept")
}

// A second /init started in a running container (docker exec, or from a shell) refuses to
// start and touches nothing.
func TestRefusesSecondInit(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{modePID1, modeChild} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)
			s.write("etc/services.d/svc/run", "#!/bin/sh\necho up >> /out/svc\nexec sleep 1000\n", 0o755)
			s.start(mode, nil)
			s.waitContent("out/svc")

			out, err := s.inside("/init") // like docker exec: the parent is outside the namespace
			require.Error(t, err)
			assert.Equal(t, 100, err.(*exec.ExitError).ExitCode())
			assert.Contains(t, out, "s6gate-init: fatal: /init is already running in this container")

			out, err = s.inside("/bin/sh", "-c", "/init sh -c 'exit 0'; echo rc=$?")
			require.NoError(t, err)
			assert.Contains(t, out, "rc=100")

			assert.Equal(t, "up\n", s.read("out/svc"), "the service was not restarted")
			_, err = os.Lstat(s.path("run/service/svc"))
			assert.NoError(t, err, "/run/service was not wiped")
			assert.FileExists(t, s.path("run/s6/legacy-services/svc/run"))
			s.signal(syscall.SIGTERM)
			assert.Equal(t, 0, s.wait())
		})
	}
}

func sigName(sig syscall.Signal) string {
	return map[syscall.Signal]string{syscall.SIGINT: "SIGINT", syscall.SIGQUIT: "SIGQUIT", syscall.SIGTERM: "SIGTERM"}[sig]
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func itoa(n int) string { return strconv.Itoa(n) }

// A nested supervision tree (a service that is an s6-svscan, as s6gate's gateways' tree is) is
// brought down by the stop hook itself (pkg/boot, nested_linux.go): its scanner stopped and
// killed, its services told to stop — their finish scripts run, their last lines reach their
// loggers, which stop after them — well within the grace.
func TestStopBringsANestedTreeDown(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	s.write("etc/services.d/tree/run", "#!/bin/sh\nexec s6-svscan /nested\n", 0o755)
	for _, n := range []string{"a", "b"} {
		s.write("nested/"+n+"/run", "#!/bin/sh\ntrap 'echo bye-"+n+"; kill $!; exit 0' TERM\necho $$ > /out/"+n+".pid\nsleep 1000 & wait\n", 0o755)
		s.write("nested/"+n+"/finish", "#!/bin/sh\necho \"$@\" > /out/"+n+".finish\n", 0o755)
		s.write("nested/"+n+"/log/run", "#!/bin/sh\nmkdir -p /var/log/"+n+"\nexec s6-log /var/log/"+n+"\n", 0o755)
	}
	s.start(modePID1, []string{"S6_SERVICES_GRACETIME=5000", "S6_KILL_GRACETIME=5000"})
	s.waitContent("out/a.pid")
	s.waitContent("out/b.pid")

	sent := s.signal(syscall.SIGTERM)
	assert.Equal(t, 0, s.wait())
	elapsed := s.ended.Sub(sent)
	assert.Less(t, elapsed, 2500*time.Millisecond, "stop took %s with 5000 ms grace times", elapsed)
	logs := s.out.String()
	assert.Regexp(t, `s6gate-init: stop: tree: nested supervision tree brought down by /init: [12] services and [12] loggers told to stop`, logs)
	assert.NotContains(t, logs, "still running at the deadline")
	assert.NotContains(t, logs, "sending KILL")
	for _, n := range []string{"a", "b"} {
		assert.Equal(t, "0 0 "+n+"\n", s.read("out/"+n+".finish"), "%s's finish ran after it exited 0", n)
		assert.Contains(t, s.read("var/log/"+n+"/current"), "bye-"+n, "%s's last line reached its logger", n)
	}
}
