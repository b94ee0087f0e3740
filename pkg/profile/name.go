package profile

import (
	"fmt"
	"path"
	"regexp"
	"sync"

	"github.com/s6gate/s6gate/pkg/exitcode"
)

// Default is the profile whose home is the data root itself. It always exists.
const Default = "default"

// MaxNameLen keeps the slot name, "gateway-" + name, within the shortest NAME_MAX a container's
// /run meets: 255 bytes on ext4, xfs, btrfs, tmpfs and overlayfs, but 251 on fuse-overlayfs
// (the storage driver of rootless Docker, and of the machines s6gate is built on), which keeps
// 4 bytes for its ".wh." whiteout prefix. So every name the validator accepts works in every
// verb. The seed's rule says 251; this is the one place that lowers it (a documented
// deviation: docs/gateway.md).
const MaxNameLen = 251 - len("gateway-")

// ProfilesDir is the directory under the data root that holds named profiles' homes.
const ProfilesDir = "profiles"

// Compiled on first use: package initialisation runs in every process of the multi-call
// binary (cmd/s6gate), with-contenv included.
var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9_-]*$`) })

// NameError reports an invalid profile name. It is a usage error (exit code 2).
type NameError struct {
	Name   string
	Reason string
}

func (e *NameError) Error() string {
	return fmt.Sprintf("invalid profile name %q: %s", e.Name, e.Reason)
}

// ExitCode marks a bad name as bad usage.
func (e *NameError) ExitCode() int { return exitcode.Usage }

// Validate returns a *NameError unless name is a valid profile name.
func Validate(name string) error {
	switch {
	case name == "":
		return &NameError{Name: name, Reason: "empty"}
	case len(name) > MaxNameLen:
		return &NameError{Name: name, Reason: fmt.Sprintf("longer than %d bytes", MaxNameLen)}
	case !nameRE().MatchString(name):
		return &NameError{Name: name, Reason: "must match ^[a-z0-9][a-z0-9_-]*$ (lower-case letters, digits, '_' and '-', not first)"}
	}
	return nil
}

// HomeRel is the home of a (valid) profile relative to the data root: "" for the default
// profile, "profiles/<name>" otherwise.
func HomeRel(name string) string {
	if name == Default {
		return ""
	}
	return path.Join(ProfilesDir, name)
}

// Home is the home directory of a (valid) profile in the data root.
func Home(root, name string) string { return path.Join(root, HomeRel(name)) }

// LogRel is the s6-log directory of a profile's slot relative to the data root.
func LogRel(name string) string { return path.Join("logs", "gateways", name) }

// CommandDir is the directory inside a profile's home that belongs to its command (its HOME
// when the profile runs as a uid of its own, the only place of the data volume it may write).
const CommandDir = "home"

// CommandHome is the command's own directory of a (valid) profile in the data root.
func CommandHome(root, name string) string { return path.Join(root, HomeRel(name), CommandDir) }

// UnregisteredFile in a profile's home says that an operator unregistered the profile
// (`gateway unregister`): the boot reconciler leaves it out, so an unregistered profile stays
// gone across restarts, and `register` of the name starts afresh from what the operator gives.
// It holds {"unregistered_at": "<RFC 3339>"}; only its presence counts.
const UnregisteredFile = "gateway.unregistered"

// PurgedPrefix starts the name that a purged profile's home (in profiles/) and log directory
// (in logs/gateways/) are renamed to before they are removed: a dot name, which no listing of
// profiles or logs takes for one, of a fixed length whatever the profile's name. What the
// service user cannot remove (what the profile's command, running as its own uid, created in
// directories of its own) is removed by root after the next boot (gw-reconcile --remove-old).
const PurgedPrefix = ".s6gate-purged-"
