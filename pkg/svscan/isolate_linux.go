package svscan

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/safedir"
)

// isolation returns the real uid the service's supervisor runs as: 0 (the service user's own
// credentials) when its directory has no UIDFile, else the uid P written there, once every
// check passed. An error means: do not start it.
func (s *scanner) isolation(sv *service) (int, error) {
	fd, err := s.openEntry(sv.name, sv.dev, sv.ino)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	b, err := readUIDFile(fd)
	if errors.Is(err, unix.ENOENT) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("%s: %w", UIDFile, err)
	}
	name, ok := strings.CutPrefix(sv.name, SlotPrefix)
	if !ok || profile.Validate(name) != nil {
		return 0, fmt.Errorf("%s in a directory that is not a gateway slot (%s<profile name>)", UIDFile, SlotPrefix)
	}
	p, err := ParseUID(b)
	switch {
	case err != nil:
		return 0, fmt.Errorf("%s: %w", UIDFile, err)
	case p == 0:
		return 0, fmt.Errorf("%s: uid 0", UIDFile)
	case !s.cfg.UIDs.Contains(p):
		return 0, fmt.Errorf("%s: uid %d is outside GATEWAY_UID_RANGE %s", UIDFile, p, s.cfg.UIDs)
	case p == s.svcUID || p == s.svcGID:
		return 0, fmt.Errorf("%s: uid %d is the service user's", UIDFile, p)
	case !mapped(s.uidMap, p) || !mapped(s.gidMap, p):
		return 0, fmt.Errorf("%s: uid %d is not mapped in this user namespace", UIDFile, p)
	case s.noSetpriv != "":
		return 0, errors.New(s.noSetpriv)
	}
	for _, o := range s.services {
		if o != sv && o.pid[0] != 0 && o.uid == p {
			return 0, fmt.Errorf("%s: uid %d is already used by %s", UIDFile, p, o.name)
		}
	}
	return p, nil
}

// readUIDFile reads UIDFile in the directory dirfd: a regular file (never a symlink; a FIFO
// is opened without waiting and refused) of at most maxUIDFileSize bytes.
func readUIDFile(dirfd int) ([]byte, error) {
	fd, err := safedir.OpenAt(dirfd, UIDFile, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if errors.Is(err, unix.ELOOP) {
		return nil, errors.New("is a symbolic link")
	} else if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, errors.New("is not a regular file")
	}
	if st.Size > maxUIDFileSize {
		return nil, fmt.Errorf("is larger than %d bytes", maxUIDFileSize)
	}
	buf := make([]byte, maxUIDFileSize+1)
	n := 0
	for n < len(buf) {
		m, err := unix.Read(fd, buf[n:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if m == 0 {
			break
		}
		n += m
	}
	return buf[:n], nil
}

// idRange is one line of /proc/self/uid_map: ids first..first+count-1 of this namespace.
type idRange struct{ first, count uint64 }

// readIDMap reads a uid_map or gid_map; nil (unknown: every id counts as mapped) when it
// cannot be read.
func readIDMap(path string) []idRange {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return parseIDMap(b)
}

func parseIDMap(b []byte) []idRange {
	var m []idRange
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 {
			continue
		}
		first, err1 := strconv.ParseUint(f[0], 10, 32)
		count, err2 := strconv.ParseUint(f[2], 10, 33)
		if err1 == nil && err2 == nil {
			m = append(m, idRange{first, count})
		}
	}
	return m
}

func mapped(m []idRange, id int) bool {
	if m == nil {
		return true
	}
	for _, r := range m {
		if uint64(id) >= r.first && uint64(id)-r.first < r.count {
			return true
		}
	}
	return false
}

// raiseNproc lifts gw-svscan's RLIMIT_NPROC to infinity or, without CAP_SYS_RESOURCE (which
// Docker does not grant a container's root), its soft limit to its hard limit.
func raiseNproc() error {
	err := unix.Setrlimit(unix.RLIMIT_NPROC, &unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY})
	if !errors.Is(err, unix.EPERM) {
		return err
	}
	var l unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NPROC, &l); err != nil {
		return err
	}
	l.Cur = l.Max
	return unix.Setrlimit(unix.RLIMIT_NPROC, &l)
}
