package boot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Exit codes of /init itself (the container's exit code when /init, not the CMD, decides).
const (
	codeOK        = 0
	codeSetup     = 100 // /init cannot prepare the container: not PID 1 in a bad place, /run unusable
	codeSystem    = 111 // a system call failed: s6-svscan cannot be exec'd, or crashed
	codeSignalled = 128 // + signal number, for a CMD killed by a signal
)

// parseExitcode reads the content of the exitcode file the way a shell's `exit $(cat f)`
// would: surrounding blanks ignored, an integer taken modulo 256. Anything else is not a code
// (ok=false) and comes with a warning.
func parseExitcode(content []byte) (code int, ok bool, warn string) {
	s := strings.TrimSpace(string(content))
	if s == "" {
		return 0, false, ""
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, false, fmt.Sprintf("exitcode file holds %q, not a number: ignored", s)
	}
	return int(n & 0xff), true, ""
}

// readExitcode returns the code stored in path; ok is false when there is none.
func readExitcode(path string) (code int, ok bool, warn string) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, ""
	}
	if err != nil {
		return 0, false, fmt.Sprintf("read %s: %v", path, err)
	}
	return parseExitcode(b)
}

// writeExitcode stores code in path atomically (temp file and rename in the same directory),
// as s6-overlay's `echo $? > exitcode` would, without a window where the file is empty.
func writeExitcode(path string, code int) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".exitcode-*")
	if err != nil {
		return err
	}
	_, werr := tmp.WriteString(strconv.Itoa(code) + "\n")
	cerr := tmp.Chmod(0o644)
	if err := tmp.Close(); werr == nil && cerr == nil {
		cerr = err
	}
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write exit code %d to %s: %w", code, path, werr)
	}
	return nil
}
