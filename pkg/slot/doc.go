// Package slot renders, publishes and removes a profile's s6 service directory ("slot",
// <scandir>/gateway-<profile>) — SPEC §5.
//
// A slot holds type, run (0750: it carries the profile's environment), finish and log/run
// (0755), notification-fd, timeout-kill and an optional down file. It has no pre-seeded
// supervise/: the gateways' s6-supervise runs as the service user (the gateways' own
// s6-svscan is the service user's) and makes its own. Modes are set through descriptors after
// creation, so the umask never matters.
//
// Every value that enters a script is shell-quoted and environment names are validated; the
// profile's variables reach `gateway run` in SetenvPrefix carriers, named by --setenv and
// applied by ApplySetenv, never as shell assignments of their own names nor as arguments. A
// run script that finds itself running as root re-executes itself as the service user before
// it uses anything from the profile. The scripts are #!/bin/sh: they go through with-contenv
// only when their supervision tree has not exported ContenvMarker.
//
// Publishing is atomic: a slot is rendered into a private staging directory of the scan
// directory (a dot entry, which s6-svscan ignores, of a fixed length whatever the profile's
// name) and renamed into place with RENAME_NOREPLACE, so s6-svscan never sees half a slot and
// two registrations of one profile cannot both win. Replace and removal rename the old slot to
// another private dot name first for the same reason. Every name the profile validator accepts
// fits (profile.MaxNameLen).
package slot
