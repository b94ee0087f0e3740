package main

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeTree writes an s6-rc source tree under /etc/s6-overlay/s6-rc.d of the sandbox:
// path (relative to the tree) → content.
func (s *sandbox) writeTree(files map[string]string) {
	for p, content := range files {
		mode := 0o644
		if strings.HasSuffix(p, "/run") {
			mode = 0o755
		}
		s.write("etc/s6-overlay/s6-rc.d/"+p, content, fileMode(mode))
	}
}

func mark(what string) string { return "/bin/sh -c \"echo " + what + " >> /out/order\"\n" }

// An s6-rc tree under the real /init: s6-overlay's order at boot (cont-init.d, user with its
// dependencies and a longrun that must be ready, services.d, user2, then the CMD), the live
// state, and the down scripts in reverse order when the CMD's exit stops the container.
func TestS6RCTreeBootAndStop(t *testing.T) {
	t.Parallel()
	s := newSandbox(t)
	s.write("etc/cont-init.d/10-init", "#!/bin/sh\necho cont-init >> /out/order\n", 0o755)
	s.write("etc/services.d/legacy/run", "#!/bin/sh\nexec sleep 1000\n", 0o755)
	s.writeTree(map[string]string{
		"setup/type": "oneshot\n", "setup/up": mark("setup-up"), "setup/down": mark("setup-down"),
		"setup/dependencies.d/base": "",
		"daemon/type":               "longrun\n", "daemon/notification-fd": "3\n",
		"daemon/run":                  "#!/bin/sh\nsleep 0.2\necho daemon-ready >> /out/order\necho >&3\nexec sleep 1000\n",
		"daemon/dependencies.d/setup": "",
		"after-daemon/type":           "oneshot\n", "after-daemon/up": mark("after-daemon-up"), "after-daemon/down": mark("after-daemon-down"),
		"after-daemon/dependencies.d/daemon": "",
		"late/type":                          "oneshot\n", "late/up": "/bin/sh -c \"test -L /run/service/legacy && echo late-up >> /out/order\"\n",
		"late/down": mark("late-down"), "late/dependencies.d/legacy-services": "",
		"user/type": "bundle\n", "user/contents.d/after-daemon": "",
		"user2/type": "bundle\n", "user2/contents.d/late": "",
	})
	s.start(modePID1, nil, "/bin/sh", "-c", "echo cmd >> /out/order; cp /run/s6-rc/state /out/state")
	assert.Equal(t, 0, s.wait())
	order := strings.Fields(s.read("out/order"))
	assert.Equal(t, []string{"cont-init", "setup-up", "daemon-ready", "after-daemon-up", "late-up", "cmd", "late-down", "after-daemon-down", "setup-down"}, order)
	assert.Equal(t, []string{"after-daemon", "daemon", "fix-attrs", "late", "legacy-cont-init", "legacy-services", "setup"}, strings.Fields(s.read("out/state")))
	assert.Contains(t, s.out.String(), "stop: s6-rc: 7 services down in")
}

// A broken tree stops the boot with S6_BEHAVIOUR_IF_STAGE2_FAILS=2, naming the service; a
// failing user oneshot too, with s6-rc's exit code, and what depends on it never runs.
func TestS6RCFailures(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		tree  map[string]string
		env   string
		code  int
		cmd   bool
		lines []string
	}{
		{"unknown dependency", map[string]string{"a/type": "oneshot\n", "a/up": "true\n", "a/dependencies.d/ghost": ""}, "2", 1, false,
			[]string{"service a: dependency on an undefined service ghost", "stopping the container with exit code 1"}},
		{"unknown dependency, go on", map[string]string{"a/type": "oneshot\n", "a/up": "true\n", "a/dependencies.d/ghost": ""}, "0", 0, true,
			[]string{"service a: dependency on an undefined service ghost", "continuing without the s6-rc services"}},
		{"failing oneshot", map[string]string{
			"bad/type": "oneshot\n", "bad/up": "/bin/sh -c \"exit 4\"\n", "user/type": "bundle\n", "user/contents.d/bad": "",
			"late/type": "oneshot\n", "late/up": mark("late-up"), "late/dependencies.d/legacy-services": "", "user2/type": "bundle\n", "user2/contents.d/late": "",
		}, "2", 1, false, []string{"unable to start service bad: up exited 4", "not started: legacy-services late"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSandbox(t)
			s.writeTree(tc.tree)
			s.start(modePID1, []string{"S6_BEHAVIOUR_IF_STAGE2_FAILS=" + tc.env}, "/bin/sh", "-c", "echo cmd >> /out/order")
			require.Equal(t, tc.code, s.wait())
			assert.Equal(t, tc.cmd, strings.Contains(s.read("out/order"), "cmd"), "the CMD ran")
			assert.NotContains(t, s.read("out/order"), "late-up")
			for _, l := range tc.lines {
				assert.Contains(t, s.out.String(), l)
			}
		})
	}
}

func fileMode(m int) os.FileMode { return os.FileMode(m) }
