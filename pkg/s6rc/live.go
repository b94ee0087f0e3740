package s6rc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// DefaultLiveDir is where the live state is kept (s6-rc's own default).
const DefaultLiveDir = "/run/s6-rc"

// Live is the live state: the compiled database, the set of active (up) atomic services, the
// longruns' service directories (linked into the scan directory) and the pipeline FIFOs.
//
//	LiveDir/db.json          the compiled database
//	LiveDir/state            active atomic services, one per line
//	LiveDir/lock             taken (flock) by whoever changes the state
//	LiveDir/servicedirs/NAME the longruns' service directories (ScanDir/NAME links here)
//	LiveDir/scripts/NAME.up  the oneshots' scripts
//	LiveDir/pipes/NAME       the FIFO feeding the consumer NAME
type Live struct {
	Dir     string
	ScanDir string
	DB      *DB
	Sys     *System
	// Hooks carry out the builtin services; a builtin without one cannot be brought up here
	// (and is a no-op down).
	Hooks map[string]Hook
	// DownGrace bounds a longrun's down transition when it has no timeout-down (0: none).
	DownGrace time.Duration

	mu     sync.Mutex
	active map[string]bool
}

// Hook carries out a builtin service's transitions.
type Hook struct {
	Up   func(ctx context.Context) error
	Down func(ctx context.Context) error
}

func (lv *Live) dbFile() string             { return filepath.Join(lv.Dir, "db.json") }
func (lv *Live) stateFile() string          { return filepath.Join(lv.Dir, "state") }
func (lv *Live) lockFile() string           { return filepath.Join(lv.Dir, "lock") }
func (lv *Live) ServiceDir(n string) string { return filepath.Join(lv.Dir, "servicedirs", n) }
func (lv *Live) scriptFile(n, dir string) string {
	return filepath.Join(lv.Dir, "scripts", n+"."+dir)
}
func (lv *Live) pipe(consumer string) string { return filepath.Join(lv.Dir, "pipes", consumer) }

// Init makes a new live state for db in dir (wiping what an earlier boot left): the longruns'
// service directories, each with a down file, are linked into scanDir and s6-svscan is asked
// to pick them up; Init returns once every one is supervised. Nothing is started.
func Init(ctx context.Context, dir, scanDir string, db *DB, sys *System) (*Live, error) {
	lv := &Live{Dir: dir, ScanDir: scanDir, DB: db, Sys: sys, active: map[string]bool{}}
	longruns := db.Longruns()
	for _, name := range longruns {
		if _, err := os.Lstat(filepath.Join(scanDir, name)); err == nil {
			return nil, treeErr(name, "%s already exists: a longrun cannot share its name with another service of the scan directory", filepath.Join(scanDir, name))
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return nil, err
	}
	for _, d := range []string{dir, filepath.Join(dir, "servicedirs"), filepath.Join(dir, "scripts"), filepath.Join(dir, "pipes")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	b, err := json.MarshalIndent(db, "", " ")
	if err != nil {
		return nil, err
	}
	if err := writeAtomic(lv.dbFile(), b); err != nil {
		return nil, err
	}
	if err := lv.saveState(); err != nil {
		return nil, err
	}
	for _, name := range db.Order {
		s := db.Services[name]
		if s.Type != Oneshot || s.Builtin {
			continue
		}
		if err := os.WriteFile(lv.scriptFile(name, "up"), []byte(s.Up), 0o644); err != nil {
			return nil, err
		}
		if err := os.WriteFile(lv.scriptFile(name, "down"), []byte(s.Down), 0o644); err != nil {
			return nil, err
		}
	}
	for _, name := range longruns {
		if err := lv.makeServiceDir(db.Services[name]); err != nil {
			return nil, fmt.Errorf("service %s: %w", name, err)
		}
	}
	if len(longruns) == 0 {
		return lv, nil
	}
	for _, name := range longruns {
		if err := os.Symlink(lv.ServiceDir(name), filepath.Join(scanDir, name)); err != nil {
			return nil, err
		}
	}
	if err := sys.tool(ctx, "s6-svscanctl", "-a", scanDir); err != nil {
		return nil, err
	}
	// s6-svscan starts s6-supervise asynchronously after the rescan.
	for _, name := range longruns {
		for !sys.supervised(ctx, lv.ServiceDir(name)) {
			select {
			case <-ctx.Done():
				return nil, fmt.Errorf("service %s: not supervised: %w", name, ctx.Err())
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	return lv, nil
}

// Open reads the live state that Init made in dir.
func Open(dir, scanDir string, sys *System) (*Live, error) {
	b, err := os.ReadFile(filepath.Join(dir, "db.json"))
	if err != nil {
		return nil, err
	}
	db := &DB{}
	if err := json.Unmarshal(b, db); err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, "db.json"), err)
	}
	if db.Services == nil {
		return nil, fmt.Errorf("%s: no services", filepath.Join(dir, "db.json"))
	}
	lv := &Live{Dir: dir, ScanDir: scanDir, DB: db, Sys: sys}
	if err := lv.loadState(); err != nil {
		return nil, err
	}
	return lv, nil
}

// Active returns the active atomic services, sorted.
func (lv *Live) Active() []string {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	return sortedKeys(lv.active)
}

func (lv *Live) isActive(name string) bool {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	return lv.active[name]
}

func (lv *Live) setActive(name string, up bool) error {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	if up {
		lv.active[name] = true
	} else {
		delete(lv.active, name)
	}
	return lv.saveStateLocked()
}

func (lv *Live) loadState() error {
	b, err := os.ReadFile(lv.stateFile())
	if err != nil {
		return err
	}
	lv.mu.Lock()
	defer lv.mu.Unlock()
	lv.active = map[string]bool{}
	for line := range strings.SplitSeq(string(b), "\n") {
		if _, ok := lv.DB.Services[line]; ok {
			lv.active[line] = true
		}
	}
	return nil
}

func (lv *Live) saveState() error {
	lv.mu.Lock()
	defer lv.mu.Unlock()
	return lv.saveStateLocked()
}

func (lv *Live) saveStateLocked() error {
	var b strings.Builder
	for _, n := range sortedKeys(lv.active) {
		b.WriteString(n + "\n")
	}
	return writeAtomic(lv.stateFile(), []byte(b.String()))
}

// Lock takes the live state's lock; with wait it blocks until ctx ends, else it fails at
// once when another s6-rc holds it. The returned func releases it.
func (lv *Live) Lock(ctx context.Context, wait bool) (func(), error) {
	f, err := os.OpenFile(lv.lockFile(), os.O_RDWR|os.O_CREATE|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return nil, err
	}
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) || !wait {
			f.Close()
			if errors.Is(err, syscall.EWOULDBLOCK) {
				return nil, errLocked
			}
			return nil, err
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, errLocked
		case <-time.After(10 * time.Millisecond):
		}
	}
	// Someone else may have changed the state since Open.
	if err := lv.loadState(); err != nil {
		f.Close()
		return nil, err
	}
	return func() { f.Close() }, nil
}

var errLocked = errors.New("the live state is locked by another s6-rc (use -b to wait)")

// makeServiceDir writes a longrun's service directory as s6-rc-compile would: only the files
// s6-supervise reads and the data, env and instance directories are copied; run (and finish)
// are made executable; a pipeline member's run is a wrapper that sets up its stdin/stdout on
// the pipeline's FIFOs and executes the service's own run, kept as run.user.
func (lv *Live) makeServiceDir(s *Service) error {
	dst := lv.ServiceDir(s.Name)
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	pipelined := s.ProducerFor != "" || len(s.ConsumerFor) > 0
	run := "run"
	if pipelined {
		run = "run.user"
		if err := lv.writeWrapper(s, dst); err != nil {
			return err
		}
	}
	if err := copyFile(filepath.Join(s.Source, "run"), filepath.Join(dst, run), 0o755); err != nil {
		return err
	}
	for _, f := range []string{"finish", "notification-fd", "timeout-kill", "timeout-finish", "max-death-tally", "down-signal", "lock-fd"} {
		src := filepath.Join(s.Source, f)
		if !exists(src) {
			continue
		}
		mode := os.FileMode(0o644)
		if f == "finish" {
			mode = 0o755
		}
		if err := copyFile(src, filepath.Join(dst, f), mode); err != nil {
			return err
		}
	}
	for _, d := range []string{"data", "env", "instance", "instances"} {
		src := filepath.Join(s.Source, d)
		if st, err := os.Stat(src); err == nil && st.IsDir() {
			if err := copyDir(src, filepath.Join(dst, d)); err != nil {
				return err
			}
		}
	}
	// s6-rc marks a longrun it considers down with a down file.
	return os.WriteFile(filepath.Join(dst, "down"), nil, 0o644)
}

// writeWrapper writes the run of a pipeline member. The FIFO is opened read-write on both
// sides, so a consumer never sees end-of-file and a producer never gets EPIPE when the other
// side restarts: the FIFO, and the lines buffered in it, live as long as either side does.
func (lv *Live) writeWrapper(s *Service, dst string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "#!%s -P\n", lv.Sys.execlineb())
	if len(s.ConsumerFor) > 0 {
		p := lv.pipe(s.Name)
		if err := mkfifo(p); err != nil {
			return err
		}
		fmt.Fprintf(&b, "redirfd -u 0 %s\n", quote(p))
	}
	if s.ProducerFor != "" {
		p := lv.pipe(s.ProducerFor)
		if err := mkfifo(p); err != nil {
			return err
		}
		fmt.Fprintf(&b, "redirfd -u 1 %s\n", quote(p))
	}
	b.WriteString("./run.user\n")
	return os.WriteFile(filepath.Join(dst, "run"), []byte(b.String()), 0o755)
}

func mkfifo(p string) error {
	err := syscall.Mkfifo(p, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	return err
}

// quote makes s one execline word.
func quote(s string) string {
	return "\"" + strings.NewReplacer("\\", "\\\\", "\"", "\\\"").Replace(s) + "\""
}

func copyFile(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	if err := out.Close(); err != nil {
		return err
	}
	return os.Chmod(dst, mode)
}

// copyDir copies a directory tree: directories, regular files (with their permission bits)
// and symlinks.
func copyDir(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, rel)
		info, err := os.Lstat(path)
		if err != nil {
			return err
		}
		switch {
		case info.IsDir():
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			return os.Chmod(target, info.Mode().Perm())
		case info.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		case info.Mode().IsRegular():
			return copyFile(path, target, info.Mode().Perm())
		}
		return nil
	})
}

func writeAtomic(path string, b []byte) error {
	tmp := path + ".new"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// scriptEmpty reports whether an up/down script has no command (only blanks and comments):
// s6-rc treats such a transition as an instant success.
func scriptEmpty(text string) bool {
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !strings.HasPrefix(line, "#") {
			return false
		}
	}
	return true
}

// Expected is what a health check needs: every longrun the live state says is up, with its
// service directory and whether it is flagged essential.
type Expected struct {
	Name       string
	ServiceDir string
	Essential  bool
}

// ExpectedUp reads the live state in dir and lists the longruns that should be up now.
// A health check compares it with s6's view (s6-svstat on ServiceDir). A missing live state
// (no /init, or a boot that has not got that far) is an empty list.
func ExpectedUp(dir string) ([]Expected, error) {
	lv, err := Open(dir, "", nil)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Expected
	for _, n := range lv.Active() {
		s := lv.DB.Services[n]
		if s.Type == Longrun {
			out = append(out, Expected{Name: n, ServiceDir: lv.ServiceDir(n), Essential: s.Essential})
		}
	}
	slices.SortFunc(out, func(a, b Expected) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}
