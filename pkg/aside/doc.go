// Package aside takes what an earlier boot left under /run out of a boot's way in O(1), and
// removes it later, off the boot's critical path (SPEC §14).
//
// A container restart keeps its writable layer, and with it /run: the gateways' scan directory
// (written by the service user: it may hold 100,000 files, a directory 800 levels deep, or
// files where s6 expects directories) and /init's own trees. Deleting them file by file before
// anything starts made the boot's time and success depend on them: 20 minutes for 77,000
// files on fuse-overlayfs, and, under load, a failed unlink that left the boot on a half-deleted
// tree. Instead:
//
//   - SetAside renames the directory, by a descriptor of its parent, to a dot name in that
//     parent ("." + base + ".old-" + a random token), which no scanner looks at, and seals it:
//     it becomes root's (when run as root) with mode 0700, so the service user can neither
//     reach into it nor add to it. The caller then makes a fresh directory. A directory that
//     cannot be renamed (a mount point: EBUSY; an overlayfs directory of a lower layer: EXDEV)
//     keeps its place and its entries are moved into a sealed dot directory inside it instead.
//   - Leftovers lists the trees set aside for a directory that are still there: this boot's,
//     and earlier boots' whose removal was cut short by a stop (they are removed again, so what
//     is set aside never grows without bound).
//   - Claim takes a set-aside tree for removal (an exclusive flock, without waiting), and
//     Remove removes one set-aside tree with descriptors (openat, unlinkat), never following a
//     symlink, holding at most MaxDepth open directories whatever the tree's depth (a deeper
//     subtree is moved up to the top of the set-aside tree first), and under an exclusive
//     flock, so two removers never work on one tree.
//   - Idle makes the calling process an idle-priority one (SCHED_IDLE, nice 19, the idle I/O
//     class), for a remover that runs beside the gateways and must never slow them.
//
// Nothing here waits for anything: whoever removes decides when (package reconcile's remover
// waits for the gateways to be up; /init's runs once its services are up), and a remover is
// an ordinary process that a container stop ends like any other.
//
// Linux only: it relies on renameat2(2), openat(2), flock(2) and sched_setattr(2).
package aside
