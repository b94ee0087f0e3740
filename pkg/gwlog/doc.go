// Package gwlog reads the log directories s6-log keeps for the gateways,
// <root>/logs/gateways/NAME (profile.LogRel), written by each slot's logger:
// `s6-log T 1 n10 s1000000 T DIR`.
//
// Such a directory holds, oldest first: archives named @<tai64n>.s (rotated) or @<tai64n>.u
// (left by an s6-log that died), whose names sort in the order they were written; for a
// moment during a rotation "previous" (the old current on its way to an archive); and
// "current", the file s6-log appends to. A rotation renames current (the open file keeps its
// inode) and creates a new current. Every line starts with the timestamp of s6-log's T
// directive, "2026-12-01 01:02:03.123456789", so the lines of several directories merge in
// time order by comparing those prefixes as strings (Timestamp).
//
// Tail reads the last n lines from the end of the files, newest file first, holding at most n
// lines and one read buffer whatever the size of the archives. Follow and FollowAll print the
// last n lines and then poll every PollInterval for new ones; they follow current across
// rotations (a new inode: the old file is read to its end first, and archives that came and
// went between two polls are read too) and truncation, so no line is lost or repeated.
//
// Files are opened through descriptors of the log directory (package safedir): a symbolic link
// is never followed, only regular files are read, and nothing is ever written.
package gwlog
