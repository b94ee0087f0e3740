package cli

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/s6gate/s6gate/pkg/s6"
)

// version and commit are set at link time by the Makefile (make build):
//
//	-ldflags '-X github.com/s6gate/s6gate/internal/cli.version=v1.2.3 -X …cli.commit=abc123'
//
// They are the only package variables of s6gate, and only the linker writes them: -X can
// set nothing else. Empty (a plain `go build`), BuildInfo fills them from the module and the
// VCS stamp Go records.
var version, commit string

// Build is what a binary knows about its own build.
type Build struct {
	Version, Commit, Go, Platform string
}

// ThisBuild returns the build stamp: the linker's, else the Go toolchain's BuildInfo, else
// "devel" and "unknown".
func ThisBuild() Build {
	b := Build{Version: version, Commit: commit, Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if info, ok := debug.ReadBuildInfo(); ok {
		if b.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			b.Version = info.Main.Version
		}
		if b.Commit == "" {
			var rev, dirty string
			for _, s := range info.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					if s.Value == "true" {
						dirty = "-dirty"
					}
				}
			}
			if rev != "" {
				b.Commit = rev[:min(12, len(rev))] + dirty
			}
		}
	}
	if b.Version == "" {
		b.Version = "devel"
	}
	if b.Commit == "" {
		b.Commit = "unknown"
	}
	return b
}

// PrintVersion writes prog's version lines: its own build, and the s6 it runs on, read from
// the installation under commandDir ("unknown" when nothing tells it; never an error).
func PrintVersion(w io.Writer, prog, commandDir string) {
	b := ThisBuild()
	s6v, from := s6.DefaultVersionSources(commandDir).Version()
	if s6v == "" {
		s6v = "unknown"
	} else {
		s6v += " (" + from + ")"
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %s\n", prog, b.Version)
	fmt.Fprintf(&sb, "commit: %s\n", b.Commit)
	fmt.Fprintf(&sb, "go: %s %s\n", b.Go, b.Platform)
	fmt.Fprintf(&sb, "s6: %s\n", s6v)
	_, _ = io.WriteString(w, sb.String())
}

// IsVersion reports whether arg asks for the version.
func IsVersion(arg string) bool {
	return arg == "--version" || arg == "-version" || arg == "version"
}
