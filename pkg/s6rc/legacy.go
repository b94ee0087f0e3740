package s6rc

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// DefaultLegacyDir is where /init copies /etc/services.d.
const DefaultLegacyDir = "/run/s6/legacy-services"

// LegacyServicesDirs returns the scan-directory entries of the /etc/services.d services
// (those copied to legacyDir), each followed by its log service when it has one.
func LegacyServicesDirs(scanDir, legacyDir string) []string {
	entries, err := os.ReadDir(legacyDir)
	if err != nil {
		return nil
	}
	var dirs []string
	for _, e := range entries {
		d := filepath.Join(scanDir, e.Name())
		if _, err := os.Stat(d); err != nil {
			continue
		}
		dirs = append(dirs, d)
		if st, err := os.Stat(filepath.Join(d, "log")); err == nil && st.IsDir() {
			dirs = append(dirs, filepath.Join(d, "log"))
		}
	}
	return dirs
}

// LegacyDown brings the /etc/services.d services down and waits until they are, for grace
// at most (s6-overlay's services-down, with S6_SERVICES_GRACETIME).
func LegacyDown(ctx context.Context, sys *System, scanDir, legacyDir string, grace time.Duration) error {
	dirs := LegacyServicesDirs(scanDir, legacyDir)
	if len(dirs) == 0 {
		return nil
	}
	for _, d := range dirs {
		if err := sys.tool(ctx, "s6-svc", "-d", d); err != nil {
			var te *ToolError
			if !errors.As(err, &te) || te.Code != 100 { // 100: not supervised
				return err
			}
		}
	}
	ms := max(1, grace.Milliseconds())
	err := sys.tool(ctx, "s6-svwait", append([]string{"-D", "-t", strconv.FormatInt(ms, 10)}, dirs...)...)
	var te *ToolError
	if errors.As(err, &te) && te.Code == 99 {
		sys.logf(1, "warning: some legacy services are still up after %d ms", ms)
		return nil
	}
	return err
}

// LegacyUp brings the /etc/services.d services up again (after LegacyDown), without waiting.
func LegacyUp(ctx context.Context, sys *System, scanDir, legacyDir string) error {
	for _, d := range LegacyServicesDirs(scanDir, legacyDir) {
		if err := sys.tool(ctx, "s6-svc", "-u", d); err != nil {
			return err
		}
	}
	return nil
}
