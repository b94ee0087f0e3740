package operator_test

import (
	"context"
	"fmt"
	"os/exec"
	"testing"

	"github.com/s6gate/s6gate/internal/s6test"
	"github.com/s6gate/s6gate/pkg/operator"
)

// BenchmarkStatus100 reports the status of 100 registered, supervised slots (what
// `gateway status` does), next to the naive way — one s6-svstat process per slot — measured
// in the same run so the ratio is meaningful on a noisy machine. Target: < 50 ms.
func BenchmarkStatus100(b *testing.B) {
	e := s6test.NewEnvAsCaller(b, nil) // in-process verbs act with this process's rights
	e.Start()
	ctx := context.Background()
	op := newOperatorB(b, e)
	for i := range 100 {
		if _, err := op.Register(ctx, fmt.Sprintf("p%03d", i), operator.RegisterOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("direct", func(b *testing.B) {
		for b.Loop() {
			st, err := op.Status(ctx, nil)
			if err != nil || len(st) != 100 || !st[99].Supervised {
				b.Fatalf("status: %d entries, %v", len(st), err)
			}
		}
	})
	b.Run("svstat-per-slot", func(b *testing.B) {
		for b.Loop() {
			for i := range 100 {
				if err := exec.Command("/usr/bin/s6-svstat", e.Slot(fmt.Sprintf("p%03d", i))).Run(); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}
