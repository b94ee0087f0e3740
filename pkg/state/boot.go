package state

import (
	"encoding/hex"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/s6gate/s6gate/pkg/proc"
	"github.com/s6gate/s6gate/pkg/safedir"
)

// BootFile is the boot token `gw-reconcile --boot` writes into the scan directory it has just
// made: a dot name, so s6-svscan ignores it.
const BootFile = ".s6gate-boot"

// NewBootToken returns a fresh random boot token for BootFile.
func NewBootToken() (string, error) {
	b := make([]byte, 16)
	f, err := os.Open("/dev/urandom")
	if err != nil {
		return "", err
	}
	defer f.Close()
	if _, err := f.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// CurrentBoot identifies this boot of the container, for the per-boot crash-loop record
// (BootID): the token in scanDir's BootFile, which the boot reconciler writes into the scan
// directory it makes anew at every container start; without one (a plain s6-svscan, tests),
// the kernel's boot_id and PID 1's start time, which also change at every start of a
// container with its own PID namespace. "" means unknown: callers then keep their record
// rather than start it afresh (an unknown boot must not reset a crash-loop count).
func CurrentBoot(scanDir string) string {
	if d, err := safedir.Open(filepath.Dir(scanDir), filepath.Base(scanDir)); err == nil {
		b, err := d.ReadFile(BootFile, 128)
		d.Close()
		if tok := strings.TrimSpace(string(b)); err == nil && len(tok) == 32 {
			if _, err := hex.DecodeString(tok); err == nil {
				return "boot-" + tok
			}
		}
	}
	return ContainerStart()
}

// ContainerStart identifies this start of the container: the kernel's boot_id and PID 1's start
// time, which change at every start of a container with its own PID namespace (and survive
// nothing a docker restart keeps, unlike /run in the writable layer).
func ContainerStart() string {
	kernel, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	id := strings.TrimSpace(string(kernel))
	if st, err := proc.StartTime(1); err == nil {
		id += "/pid1-" + strconv.FormatUint(st, 10)
	}
	return id
}
