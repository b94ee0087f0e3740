package slot

import (
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"os"
	"sync"

	"github.com/s6gate/s6gate/pkg/safedir"
)

// templatePrefix starts the name of a template directory in the scan directory: a dot entry,
// which s6-svscan ignores, and not one of the slot package's staging or trash names.
const templatePrefix = ".s6gate-template-"

// Template holds one copy of each file that many slots have alike (type, notification-fd,
// timeout-kill, down), for the slots rendered in one run to link to instead of writing their
// own. The boot reconciler renders a thousand slots into a tmpfs scan directory, where a file
// is an inode and a page and a link is only a name. s6-supervise only reads these files, and
// nothing writes them once published: a slot is always replaced by a new one, never edited.
//
// A Template lives in a private directory of the scan directory; Close removes it (the slots
// keep their links). It may be used from several goroutines at once.
type Template struct {
	scan *safedir.Dir
	name string
	dir  *safedir.Dir

	mu   sync.Mutex
	have map[string]bool
}

// NewTemplate makes an empty template in scan.
func NewTemplate(scan *safedir.Dir) (*Template, error) {
	name := privateName(templatePrefix)
	dir, err := scan.Mkdir(name, 0o700)
	if err != nil {
		return nil, fmt.Errorf("slot template: %w", err)
	}
	return &Template{scan: scan, name: name, dir: dir, have: map[string]bool{}}, nil
}

// link makes name in d a link to the template's file with this content and mode, creating
// that on first use.
func (t *Template) link(d *safedir.Dir, name, content string, mode os.FileMode) error {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%o\x00%s", name, mode, content)
	src := fmt.Sprintf("%s.%016x", name, h.Sum64())
	t.mu.Lock()
	if !t.have[src] {
		if err := t.dir.Create(src, []byte(content), mode); err != nil && !errors.Is(err, fs.ErrExist) {
			t.mu.Unlock()
			return err
		}
		t.have[src] = true
	}
	t.mu.Unlock()
	return d.Link(t.dir, src, name)
}

// Close removes the template directory; slots linked to its files keep them.
func (t *Template) Close() error {
	t.dir.Close()
	return os.RemoveAll(t.scan.Join(t.name))
}
