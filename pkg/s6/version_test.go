package s6_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/pkg/s6"
)

// dpkgStatus is captured from Debian bookworm's /var/lib/dpkg/status (trimmed): s6 itself, a
// package whose name starts the same, and a removed one that left its configuration.
const dpkgStatus = `Package: s6-doc
Status: install ok installed
Version: 9.9.9-1

Package: s6
Status: install ok installed
Priority: optional
Section: admin
Installed-Size: 1158
Maintainer: Shengjing Zhu <zhsj@debian.org>
Architecture: amd64
Version: 2.11.3.2-1
Replaces: libs6-2.7
Depends: libc6 (>= 2.34), libexecline2.9 (>= 2.9.0.0), libs6-2.11 (>= 2.11.2.0), libskarnet2.13 (>= 2.13.1.0)
Description: small and secure supervision software suite
 s6 is a small suite of programs for UNIX, designed to allow process
 Version: 0.0 in a description is not a field
`

func TestDpkgVersion(t *testing.T) {
	assert.Equal(t, "2.11.3.2-1", s6.DpkgVersion(strings.NewReader(dpkgStatus), "s6"))
	assert.Equal(t, "", s6.DpkgVersion(strings.NewReader(dpkgStatus), "execline"))
	removed := "Package: s6\nStatus: deinstall ok config-files\nVersion: 2.11.3.2-1\n"
	assert.Equal(t, "", s6.DpkgVersion(strings.NewReader(removed), "s6"), "a removed package is no installation")
	assert.Equal(t, "2.11.3.2", s6.UpstreamVersion("2.11.3.2-1"))
	assert.Equal(t, "2.13.1.0", s6.UpstreamVersion("1:2.13.1.0-0ubuntu1"))
	assert.Equal(t, "2.11", s6.UpstreamVersion("2.11"))
}

// Version tries a slashpackage path first, then dpkg, then libs6's file name, and says ""
// when nothing tells.
func TestVersionSources(t *testing.T) {
	dir := t.TempDir()
	pkg := filepath.Join(dir, "package", "admin", "s6-2.13.1.0", "command")
	require.NoError(t, os.MkdirAll(pkg, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(pkg, "s6-svscan"), nil, 0o755))
	cmdDir := filepath.Join(dir, "command")
	require.NoError(t, os.Mkdir(cmdDir, 0o755))
	require.NoError(t, os.Symlink(filepath.Join(pkg, "s6-svscan"), filepath.Join(cmdDir, "s6-svscan")))
	status := filepath.Join(dir, "status")
	require.NoError(t, os.WriteFile(status, []byte(dpkgStatus), 0o644))
	lib := filepath.Join(dir, "lib")
	require.NoError(t, os.Mkdir(lib, 0o755))
	for _, n := range []string{"libs6.so.2.11", "libs6.so.2.11.3.2", "libs6.so.2.9.0.1", "libs6.so.x"} {
		require.NoError(t, os.WriteFile(filepath.Join(lib, n), nil, 0o644))
	}
	globs := []string{filepath.Join(lib, "libs6.so.*")}

	v, from := s6.VersionSources{CommandDir: cmdDir, DpkgStatus: status, LibGlobs: globs}.Version()
	assert.Equal(t, "2.13.1.0", v, from)
	v, from = s6.VersionSources{CommandDir: t.TempDir(), DpkgStatus: status, LibGlobs: globs}.Version()
	assert.Equal(t, "2.11.3.2", v)
	assert.Equal(t, "Debian package s6 2.11.3.2-1", from)
	v, _ = s6.VersionSources{DpkgStatus: filepath.Join(dir, "missing"), LibGlobs: globs}.Version()
	assert.Equal(t, "2.11.3.2", v, "the longest libs6 name")
	v, from = s6.VersionSources{}.Version()
	assert.Empty(t, v)
	assert.Empty(t, from)
}
