//go:build !linux

package svscan

import (
	"errors"
	"runtime"
)

var errNotLinux = errors.New("not supported on " + runtime.GOOS + " (Linux containers only)")

// Run supervises a scan directory; Linux only.
func Run(cfg Config) error { return errNotLinux }
