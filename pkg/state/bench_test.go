package state_test

import (
	"testing"
	"time"

	"github.com/s6gate/s6gate/pkg/safedir"
	"github.com/s6gate/s6gate/pkg/state"
)

// BenchmarkUpdate is one durable state write: lock, read, merge, temp file, fsync, rename,
// fsync of the directory.
func BenchmarkUpdate(b *testing.B) {
	d, err := safedir.Open(b.TempDir(), "")
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	i := 0
	for b.Loop() {
		i++
		if _, err := state.Update(d, time.Now(), func(s *state.State) { s.PID = i }); err != nil {
			b.Fatal(err)
		}
	}
}
