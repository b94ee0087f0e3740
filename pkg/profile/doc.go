// Package profile owns profile names, where each profile lives in the data root, and the
// optional per-profile configuration file profile.json (SPEC §1–2).
//
// A name is valid iff it is 1–243 bytes (MaxNameLen) and fully matches ^[a-z0-9][a-z0-9_-]*$.
// That keeps it safe as a path component, as an s6 service name ("gateway-<name>" fits in any
// file system's NAME_MAX, fuse-overlayfs's 251 included) and as a command-line argument (it
// can never start with "-"). Every entry point
// validates with Validate before it touches the file system.
//
// Layout of a data root:
//
//	<root>/                      home of the "default" profile
//	<root>/profiles/<name>/      home of every other profile
//	<root>/logs/gateways/<name>/ s6-log output of a slot
//	<root>/logs/container-boot.log
package profile
