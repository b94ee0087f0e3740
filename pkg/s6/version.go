package s6

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// s6 has no --version, and `gateway version` must never fail for want of one, so Version
// reads what an installation leaves behind, in this order:
//
//  1. a slashpackage install (s6-overlay's /package/admin/s6-2.13.1.0/command/…): the version
//     is in the resolved path of the command directory's s6-svscan;
//  2. Debian's package database (/var/lib/dpkg/status), the package "s6";
//  3. the shared library libs6.so.X.Y.Z.W in the usual library directories; the minimal image
//     keeps it only under its soname (libs6.so.2.11), which gives the major and minor.
//
// The paths are fields so that tests can point them at captured data.
type VersionSources struct {
	CommandDir string   // where s6-svscan is (S6_COMMAND_DIR)
	DpkgStatus string   // Debian's package database
	LibGlobs   []string // where libs6.so.* may be
}

// DefaultVersionSources are the places of a Debian system or an s6-overlay image.
func DefaultVersionSources(commandDir string) VersionSources {
	return VersionSources{
		CommandDir: commandDir,
		DpkgStatus: "/var/lib/dpkg/status",
		LibGlobs:   []string{"/usr/lib/*/libs6.so.*", "/usr/lib/libs6.so.*", "/lib/*/libs6.so.*", "/lib/libs6.so.*"},
	}
}

// Version returns the installed s6's version and where it was read ("" and "" when nothing
// tells it). It runs nothing and reads only small files.
func (v VersionSources) Version() (version, source string) {
	if v.CommandDir != "" {
		if p, err := filepath.EvalSymlinks(filepath.Join(v.CommandDir, "s6-svscan")); err == nil {
			if m := slashpackageRE().FindStringSubmatch(p); m != nil {
				return m[1], p
			}
		}
	}
	if v.DpkgStatus != "" {
		if f, err := os.Open(v.DpkgStatus); err == nil {
			ver := DpkgVersion(f, "s6")
			f.Close()
			if ver != "" {
				return UpstreamVersion(ver), "Debian package s6 " + ver
			}
		}
	}
	var best []int
	var bestPath string
	for _, g := range v.LibGlobs {
		paths, _ := filepath.Glob(g)
		for _, p := range paths {
			n := libVersion(filepath.Base(p))
			if n != nil && slices.Compare(n, best) > 0 {
				best, bestPath = n, p
			}
		}
	}
	if best != nil {
		parts := make([]string, len(best))
		for i, n := range best {
			parts[i] = strconv.Itoa(n)
		}
		return strings.Join(parts, "."), bestPath
	}
	return "", ""
}

// Compiled on first use: package initialisation runs in every process of the multi-call binary.
var slashpackageRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`/s6-([0-9]+(?:\.[0-9]+)+)/`) })

// libVersion is the version in a name libs6.so.2.11.3.2 (2.11.3.2), or nil.
func libVersion(name string) []int {
	rest, ok := strings.CutPrefix(name, "libs6.so.")
	if !ok {
		return nil
	}
	var out []int
	for _, f := range strings.Split(rest, ".") {
		n, err := strconv.Atoi(f)
		if err != nil {
			return nil
		}
		out = append(out, n)
	}
	return out
}

// DpkgVersion returns the Version of the installed package pkg in a dpkg status database
// (RFC 822 stanzas), or "".
func DpkgVersion(r io.Reader, pkg string) string {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	var name, version, status string
	flush := func() string {
		if name == pkg && version != "" && (status == "" || strings.HasSuffix(status, " installed")) {
			return version
		}
		name, version, status = "", "", ""
		return ""
	}
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			if v := flush(); v != "" {
				return v
			}
			continue
		}
		k, val, ok := strings.Cut(line, ":")
		if !ok || strings.HasPrefix(line, " ") {
			continue
		}
		switch k {
		case "Package":
			name = strings.TrimSpace(val)
		case "Version":
			version = strings.TrimSpace(val)
		case "Status":
			status = strings.TrimSpace(val)
		}
	}
	return flush()
}

// UpstreamVersion is a Debian version without its epoch and Debian revision: 1:2.11.3.2-1 is
// 2.11.3.2.
func UpstreamVersion(v string) string {
	if _, after, ok := strings.Cut(v, ":"); ok {
		v = after
	}
	if i := strings.LastIndex(v, "-"); i > 0 {
		v = v[:i]
	}
	return v
}
