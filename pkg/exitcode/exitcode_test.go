package exitcode_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/s6gate/s6gate/pkg/exitcode"
)

type coded struct{ code int }

func (c coded) Error() string { return "coded" }
func (c coded) ExitCode() int { return c.code }

func TestOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil is OK", nil, exitcode.OK},
		{"plain error fails", errors.New("boom"), exitcode.Failed},
		{"usage error", exitcode.Usagef("bad %q", "x"), exitcode.Usage},
		{"wrapped usage error", fmt.Errorf("register: %w", exitcode.Usagef("bad")), exitcode.Usage},
		{"custom coder", fmt.Errorf("run: %w", coded{78}), 78},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, exitcode.Of(tt.err))
		})
	}
}
