//go:build !linux

package gateway

import (
	"context"
	"os"
)

// whileReaderStays watches nothing where poll(2)'s pipe semantics are not Linux's: the follow
// ends on SIGINT, SIGTERM or a failed write.
func whileReaderStays(ctx context.Context, _, _ *os.File) (context.Context, func()) {
	return context.WithCancel(ctx)
}
