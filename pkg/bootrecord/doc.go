// Package bootrecord is the outcome of this start's boot of the gateways (SPEC §14), as the
// root step of `gw-reconcile --boot` records it: booting, ok, or failed — with the step that
// failed, why, and the fix. Everything that needs to know reads it:
//
//   - the gateways' tree service (/etc/services.d/s6gate-gateways) starts its scanner only on a
//     boot that succeeded (`gw-reconcile --check-boot`), so nothing ever starts on a half-built
//     scan directory;
//   - every verb, while no scanner answers, reports a failed boot at once ("the boot failed
//     …; see docker logs") instead of waiting and then saying "still booting", and so does
//     `gateway status --check`, the image's HEALTHCHECK.
//
// The record is the file <scan directory>.boot (/run/gateways.boot), written atomically by
// root, mode 0644, in the scan directory's parent, which is root's: the service user — whose
// scan directory is right beside it — can read it, but can neither forge nor erase it. (In a
// container run as a non-root user everything is that user's, and so is the record.) A
// container restart keeps /run, so each record names the container start it belongs to
// (state.ContainerStart); Read reports a record of an earlier start as no record at all.
package bootrecord
