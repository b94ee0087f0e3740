package boot

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// copyTree copies the service directory src (which may be a symlink to a directory) to dst,
// like s6-hiercopy: directories, regular files, symlinks (as symlinks) and FIFOs, with their
// permission bits (setgid and sticky included, whatever the umask) and, when run as root,
// their owners. Sockets and device nodes are skipped. dst must not exist.
func copyTree(src, dst string) error {
	root, err := filepath.EvalSymlinks(src)
	if err != nil {
		return err
	}
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		st, err := os.Lstat(path)
		if err != nil {
			return err
		}
		mode := st.Mode()
		perm := mode & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		switch {
		case mode.IsDir():
			if err := os.Mkdir(target, 0o700); err != nil {
				return err
			}
		case mode.IsRegular():
			if err := copyFile(path, target); err != nil {
				return err
			}
		case mode&fs.ModeSymlink != 0:
			link, err := os.Readlink(path)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, target); err != nil {
				return err
			}
			chownLike(target, st)
			return nil
		case mode&fs.ModeNamedPipe != 0:
			if err := syscall.Mkfifo(target, 0o600); err != nil {
				return &os.PathError{Op: "mkfifo", Path: target, Err: err}
			}
		default:
			return nil // sockets, devices: nothing a service directory should carry
		}
		chownLike(target, st)
		if err := os.Chmod(target, perm); err != nil {
			return fmt.Errorf("copy %s: %w", path, err)
		}
		return nil
	})
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, cerr := io.Copy(out, in)
	if err := out.Close(); cerr == nil {
		cerr = err
	}
	return cerr
}

// chownLike gives path the owner of st; failures (not root) are ignored on purpose.
func chownLike(path string, st fs.FileInfo) {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && os.Geteuid() == 0 {
		_ = os.Lchown(path, int(sys.Uid), int(sys.Gid))
	}
}
