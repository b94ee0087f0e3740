package reconcile_test

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/internal/s6test"
	"github.com/s6gate/s6gate/pkg/reconcile"
)

// A boot links the files slots have alike to one copy (slot.Template), and only files that are
// byte-identical: wrapper and exec slots differ in timeout-kill (s6's kill delay: 10 s for the
// wrapper, GATEWAY_DRAIN_TIMEOUT + 1 s under exec supervision), so each mode gets its own. A
// template keyed on the name alone would hand every slot the first slot's timeout-kill.
func TestBootSharesOnlyIdenticalTemplateFiles(t *testing.T) {
	e := s6test.NewEnvAsCaller(t, nil)
	s := settingsOf(e)
	s.DrainTimeout = 3 * time.Second
	profiles := map[string]string{ // name → profile.json
		"exec1": `{"command": ["sleep", "1000"], "supervision": "exec"}`,
		"exec2": `{"command": ["sleep", "1000"], "supervision": "exec"}`,
		"wrap1": `{"command": ["sleep", "1000"], "supervision": "wrapper"}`,
		"wrap2": `{"command": ["sleep", "1000"]}`,
		"idle1": `{}`,
	}
	for name, cfg := range profiles {
		s6test.WriteFile(t, filepath.Join(e.ProfileHome(name), "profile.json"), cfg)
		s6test.WriteFile(t, filepath.Join(e.ProfileHome(name), "gateway_state.json"), `{"desired_state":"running"}`)
	}
	var logs bytes.Buffer
	_, err := reconcile.Run(context.Background(), reconcile.Options{
		Settings: s, Boot: true, Workers: 1, Log: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	require.NoError(t, err, logs.String())

	wantKill := map[string]string{"exec1": "4000", "exec2": "4000", "wrap1": "10000", "wrap2": "10000", "idle1": "10000", "default": "10000"}
	for name, want := range wantKill {
		b, err := os.ReadFile(filepath.Join(e.Slot(name), "timeout-kill"))
		require.NoError(t, err, name)
		assert.Equal(t, want+"\n", string(b), "%s: its own mode's timeout-kill", name)
	}
	// Every pair of slots that shares an inode shares the bytes; each mode shares within itself.
	names := []string{"default", "exec1", "exec2", "wrap1", "wrap2", "idle1"}
	inode := func(name, file string) uint64 {
		var st unix.Stat_t
		require.NoError(t, unix.Lstat(filepath.Join(e.Slot(name), file), &st))
		return st.Ino
	}
	for _, file := range []string{"type", "notification-fd", "timeout-kill"} {
		for _, a := range names {
			for _, b := range names {
				if a >= b || inode(a, file) != inode(b, file) {
					continue
				}
				ca, _ := os.ReadFile(filepath.Join(e.Slot(a), file))
				cb, _ := os.ReadFile(filepath.Join(e.Slot(b), file))
				assert.Equal(t, string(ca), string(cb), "%s of %s and %s is one file", file, a, b)
			}
		}
	}
	assert.Equal(t, inode("exec1", "timeout-kill"), inode("exec2", "timeout-kill"), "exec slots share theirs")
	assert.Equal(t, inode("wrap1", "timeout-kill"), inode("idle1", "timeout-kill"), "wrapper slots share theirs")
	assert.NotEqual(t, inode("exec1", "timeout-kill"), inode("wrap1", "timeout-kill"))
	assert.Equal(t, inode("exec1", "type"), inode("wrap1", "type"), "what is alike is shared across modes")
}
