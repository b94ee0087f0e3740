// Package s6rc reads s6-rc source trees (s6-overlay v3's /etc/s6-overlay/s6-rc.d) and brings
// the services they declare up and down on top of Debian's s6 (which has no s6-rc): a
// compiler (Compile) that checks a tree and resolves it into a database of atomic services
// and their dependencies, a live state under /run/s6-rc (Init, Open) that puts the longruns
// into the root scan directory, an engine (Live.Change) that runs the transitions in
// dependency order with independent branches in parallel, and the `s6-rc` command (Main).
//
// It is written from s6-rc's documentation, not from its code. docs/s6-rc.md lists what is
// supported and what differs from the real s6-rc.
package s6rc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Type is a service's kind, as written in its type file.
type Type string

// The three kinds of s6-rc service.
const (
	Oneshot Type = "oneshot"
	Longrun Type = "longrun"
	Bundle  Type = "bundle"
)

// Names of the services s6-overlay defines itself (and this package provides as builtins).
const (
	Top            = "top"
	Base           = "base"
	FixAttrs       = "fix-attrs"
	LegacyContInit = "legacy-cont-init"
	LegacyServices = "legacy-services"
	User           = "user"
	User2          = "user2"
)

// reserved are the builtin names a source tree may not define (user and user2 it may: that
// is where images put their services).
var reserved = []string{Top, Base, FixAttrs, LegacyContInit, LegacyServices}

// Service is one service of a compiled database.
type Service struct {
	Name      string `json:"name"`
	Type      Type   `json:"type"`
	Builtin   bool   `json:"builtin,omitempty"` // carried out by /init itself, not by a script
	Source    string `json:"source,omitempty"`  // definition directory
	Essential bool   `json:"essential,omitempty"`
	// Deps are the direct dependencies of an atomic service, bundles expanded; Contents the
	// atomic services a bundle stands for. Both sorted.
	Deps        []string `json:"deps,omitempty"`
	Contents    []string `json:"contents,omitempty"`
	TimeoutUp   int      `json:"timeout_up,omitempty"` // ms, 0 = none
	TimeoutDown int      `json:"timeout_down,omitempty"`
	// Oneshots: the up and down scripts (execline syntax), read at compile time.
	Up   string `json:"up,omitempty"`
	Down string `json:"down,omitempty"`
	// Longruns.
	Notification bool     `json:"notification,omitempty"` // has a notification-fd
	ProducerFor  string   `json:"producer_for,omitempty"`
	ConsumerFor  []string `json:"consumer_for,omitempty"`
}

// Atomic reports whether the service is a oneshot or a longrun.
func (s *Service) Atomic() bool { return s.Type != Bundle }

// DB is a compiled service database.
type DB struct {
	Services map[string]*Service `json:"services"`
	// Order lists every atomic service so that each comes after its dependencies.
	Order []string `json:"order"`
	// Env is the environment of oneshot scripts (the supervision tree's).
	Env []string `json:"env,omitempty"`
}

// TreeError is a defect of a source tree: the service it concerns and what is wrong.
type TreeError struct {
	Service string
	Msg     string
}

func (e *TreeError) Error() string {
	if e.Service == "" {
		return e.Msg
	}
	return "service " + e.Service + ": " + e.Msg
}

func treeErr(name, format string, args ...any) error {
	return &TreeError{Service: name, Msg: fmt.Sprintf(format, args...)}
}

// source is a service as read from its definition directory, before names are resolved.
type source struct {
	Service
	deps     []string // as written: may name bundles
	contents []string
	pipeName string
}

// Compile reads the source tree in dir (which may be missing: then only the builtins exist),
// checks it and resolves it. Warnings are about things accepted but ignored. An error is a
// *TreeError naming the service at fault, or an I/O error.
func Compile(dir string) (*DB, []string, error) {
	srcs := map[string]*source{}
	var warns []string
	entries, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".") {
			continue
		}
		path := filepath.Join(dir, name)
		st, err := os.Stat(path)
		if err != nil || !st.IsDir() {
			continue
		}
		if err := checkName(name); err != nil {
			return nil, nil, err
		}
		s, w, err := readSource(path, name)
		if err != nil {
			return nil, nil, err
		}
		warns = append(warns, w...)
		srcs[name] = s
	}
	addBuiltins(srcs)
	db, err := resolve(srcs)
	if err != nil {
		return nil, nil, err
	}
	return db, warns, nil
}

// checkName refuses the names s6-rc-compile refuses, and the builtins'.
func checkName(name string) error {
	switch {
	case strings.ContainsAny(name, "\n/"):
		return treeErr(name, "invalid name (no newline or slash allowed)")
	case strings.HasPrefix(name, "s6rc-"), strings.HasPrefix(name, "s6-rc-"):
		return treeErr(name, "invalid name: the s6rc- and s6-rc- prefixes are reserved")
	case slices.Contains(reserved, name):
		return treeErr(name, "the name is reserved: s6-overlay defines %s itself", name)
	}
	return nil
}

func addBuiltins(srcs map[string]*source) {
	for _, b := range []string{User, User2} {
		if _, ok := srcs[b]; !ok {
			srcs[b] = &source{Service: Service{Name: b, Type: Bundle, Builtin: true}}
		}
	}
	srcs[FixAttrs] = &source{Service: Service{Name: FixAttrs, Type: Oneshot, Builtin: true}}
	srcs[LegacyContInit] = &source{Service: Service{Name: LegacyContInit, Type: Oneshot, Builtin: true}, deps: []string{FixAttrs}}
	srcs[Base] = &source{Service: Service{Name: Base, Type: Bundle, Builtin: true}, contents: []string{FixAttrs, LegacyContInit}}
	srcs[LegacyServices] = &source{Service: Service{Name: LegacyServices, Type: Oneshot, Builtin: true}, deps: []string{User, Base}}
	srcs[Top] = &source{Service: Service{Name: Top, Type: Bundle, Builtin: true}, contents: []string{Base, User, LegacyServices, User2}}
}

func readSource(path, name string) (*source, []string, error) {
	s := &source{Service: Service{Name: name, Source: path}}
	var warns []string
	t, ok, err := readFile(path, "type")
	if err != nil {
		return nil, nil, err
	}
	if !ok {
		if name != User && name != User2 {
			return nil, nil, treeErr(name, "missing type file (%s/type)", path)
		}
		// s6-overlay defines the user and user2 bundles in its own source directory; an image
		// only adds to their contents.d (the documented way), so no type file is needed here.
		t = string(Bundle)
	}
	if typ := Type(strings.TrimSpace(t)); (name == User || name == User2) && typ != Bundle {
		return nil, nil, treeErr(name, "%s is s6-overlay's bundle: its type must be bundle, not %q", name, typ)
	}
	switch typ := Type(strings.TrimSpace(t)); typ {
	case Oneshot, Longrun, Bundle:
		s.Type = typ
	default:
		return nil, nil, treeErr(name, "invalid type %q (want oneshot, longrun or bundle)", strings.TrimSpace(t))
	}
	s.Essential = exists(filepath.Join(path, "flag-essential"))
	if s.Type == Bundle {
		s.contents, ok, err = readNames(path, "contents.d", "contents")
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			return nil, nil, treeErr(name, "bundle without contents.d or contents")
		}
		return s, nil, nil
	}
	if s.deps, _, err = readNames(path, "dependencies.d", "dependencies"); err != nil {
		return nil, nil, err
	}
	if s.TimeoutUp, err = readUint(path, name, "timeout-up"); err != nil {
		return nil, nil, err
	}
	if s.TimeoutDown, err = readUint(path, name, "timeout-down"); err != nil {
		return nil, nil, err
	}
	if s.Type == Oneshot {
		up, ok, err := readFile(path, "up")
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			return nil, nil, treeErr(name, "oneshot without an up file")
		}
		s.Up = up
		if s.Down, _, err = readFile(path, "down"); err != nil {
			return nil, nil, err
		}
		return s, nil, nil
	}
	// longrun
	if st, err := os.Stat(filepath.Join(path, "run")); err != nil || !st.Mode().IsRegular() {
		return nil, nil, treeErr(name, "longrun without a run file")
	}
	for _, f := range []string{"notification-fd", "timeout-kill", "timeout-finish", "max-death-tally", "lock-fd"} {
		if _, err := readUint(path, name, f); err != nil {
			return nil, nil, err
		}
	}
	s.Notification = exists(filepath.Join(path, "notification-fd"))
	if exists(filepath.Join(path, "lock-fd")) {
		warns = append(warns, fmt.Sprintf("service %s: lock-fd is copied but Debian's s6 2.11 ignores it", name))
	}
	for _, f := range []string{"log", "down"} {
		if exists(filepath.Join(path, f)) {
			warns = append(warns, fmt.Sprintf("service %s: %s is ignored (as by s6-rc-compile)", name, f))
		}
	}
	prod, ok, err := readList(path, "producer-for")
	if err != nil {
		return nil, nil, err
	}
	if ok {
		if len(prod) != 1 {
			return nil, nil, treeErr(name, "producer-for must name exactly one service")
		}
		s.ProducerFor = prod[0]
	}
	if s.ConsumerFor, _, err = readList(path, "consumer-for"); err != nil {
		return nil, nil, err
	}
	pn, ok, err := readList(path, "pipeline-name")
	if err != nil {
		return nil, nil, err
	}
	if ok && len(s.ConsumerFor) > 0 && s.ProducerFor == "" {
		if len(pn) != 1 {
			return nil, nil, treeErr(name, "pipeline-name must hold exactly one name")
		}
		if err := checkName(pn[0]); err != nil {
			return nil, nil, treeErr(name, "pipeline-name: %v", err)
		}
		s.pipeName = pn[0]
	}
	return s, warns, nil
}

// resolve checks names, expands bundles, wires pipelines and orders the atomic services.
func resolve(srcs map[string]*source) (*DB, error) {
	// Pipelines: consistency, the producer's dependency on its consumer, pipeline bundles.
	for _, name := range sortedKeys(srcs) {
		s := srcs[name]
		if s.ProducerFor != "" {
			c, ok := srcs[s.ProducerFor]
			switch {
			case !ok:
				return nil, treeErr(name, "producer-for names an undefined service %s", s.ProducerFor)
			case c.Type != Longrun:
				return nil, treeErr(name, "producer-for names %s, a %s (must be a longrun)", s.ProducerFor, c.Type)
			case !slices.Contains(c.ConsumerFor, name):
				return nil, treeErr(name, "producer-for names %s, whose consumer-for does not name %s back", s.ProducerFor, name)
			}
			s.deps = append(s.deps, s.ProducerFor)
		}
		for _, p := range s.ConsumerFor {
			ps, ok := srcs[p]
			switch {
			case !ok:
				return nil, treeErr(name, "consumer-for names an undefined service %s", p)
			case ps.Type != Longrun:
				return nil, treeErr(name, "consumer-for names %s, a %s (must be a longrun)", p, ps.Type)
			case ps.ProducerFor != name:
				return nil, treeErr(name, "consumer-for names %s, whose producer-for does not name %s back", p, name)
			}
		}
	}
	for _, name := range sortedKeys(srcs) {
		s := srcs[name]
		if s.pipeName == "" {
			continue
		}
		if _, dup := srcs[s.pipeName]; dup {
			return nil, treeErr(name, "pipeline-name %s is already the name of a service", s.pipeName)
		}
		members := pipelineMembers(srcs, name, map[string]bool{})
		srcs[s.pipeName] = &source{Service: Service{Name: s.pipeName, Type: Bundle, Source: s.Source}, contents: members}
	}

	db := &DB{Services: map[string]*Service{}}
	// Bundles to atomic sets, with cycle detection.
	expanded := map[string][]string{}
	var expand func(name string, stack []string) ([]string, error)
	expand = func(name string, stack []string) ([]string, error) {
		if got, ok := expanded[name]; ok {
			return got, nil
		}
		s := srcs[name]
		if s.Type != Bundle {
			return []string{name}, nil
		}
		if i := slices.Index(stack, name); i >= 0 {
			return nil, treeErr(name, "bundle cycle: %s", strings.Join(append(stack[i:], name), " -> "))
		}
		set := map[string]bool{}
		for _, c := range s.contents {
			if _, ok := srcs[c]; !ok {
				return nil, treeErr(name, "bundle contents name an undefined service %s", c)
			}
			sub, err := expand(c, append(stack, name))
			if err != nil {
				return nil, err
			}
			for _, a := range sub {
				set[a] = true
			}
		}
		expanded[name] = sortedKeys(set)
		return expanded[name], nil
	}
	for _, name := range sortedKeys(srcs) {
		s := srcs[name]
		svc := s.Service
		if s.Type == Bundle {
			c, err := expand(name, nil)
			if err != nil {
				return nil, err
			}
			svc.Contents = c
		} else {
			set := map[string]bool{}
			for _, d := range s.deps {
				if _, ok := srcs[d]; !ok {
					return nil, treeErr(name, "dependency on an undefined service %s", d)
				}
				sub, err := expand(d, nil)
				if err != nil {
					return nil, err
				}
				for _, a := range sub {
					set[a] = true
				}
			}
			if set[name] {
				return nil, treeErr(name, "dependency cycle: %s depends on itself", name)
			}
			svc.Deps = sortedKeys(set)
		}
		db.Services[name] = &svc
	}
	// flag-essential on a bundle marks its contents.
	for _, s := range db.Services {
		if s.Type == Bundle && s.Essential {
			for _, c := range s.Contents {
				db.Services[c].Essential = true
			}
		}
	}
	order, err := topoOrder(db)
	if err != nil {
		return nil, err
	}
	db.Order = order
	return db, nil
}

func pipelineMembers(srcs map[string]*source, name string, seen map[string]bool) []string {
	if seen[name] {
		return nil
	}
	seen[name] = true
	out := []string{name}
	for _, p := range srcs[name].ConsumerFor {
		out = append(out, pipelineMembers(srcs, p, seen)...)
	}
	return out
}

// topoOrder orders the atomic services, dependencies first (ties by name), or reports a cycle.
func topoOrder(db *DB) ([]string, error) {
	const (
		white = iota
		grey
		black
	)
	color := map[string]int{}
	var order []string
	var visit func(name string, path []string) error
	visit = func(name string, path []string) error {
		switch color[name] {
		case black:
			return nil
		case grey:
			i := slices.Index(path, name)
			return treeErr(name, "dependency cycle: %s", strings.Join(append(path[i:], name), " -> "))
		}
		color[name] = grey
		for _, d := range db.Services[name].Deps {
			if err := visit(d, append(path, name)); err != nil {
				return err
			}
		}
		color[name] = black
		order = append(order, name)
		return nil
	}
	for _, name := range sortedKeys(db.Services) {
		if db.Services[name].Atomic() {
			if err := visit(name, nil); err != nil {
				return nil, err
			}
		}
	}
	return order, nil
}

// Resolve turns service names (atomic or bundles) into the set of atomic services they stand
// for; unknown names are returned apart.
func (db *DB) Resolve(names []string) (atoms []string, unknown []string) {
	set := map[string]bool{}
	for _, n := range names {
		s, ok := db.Services[n]
		switch {
		case !ok:
			unknown = append(unknown, n)
		case s.Type == Bundle:
			for _, c := range s.Contents {
				set[c] = true
			}
		default:
			set[n] = true
		}
	}
	return sortedKeys(set), unknown
}

// Closure returns names plus, recursively, their dependencies (up) or the services that
// depend on them (down), as a set.
func (db *DB) Closure(names []string, up bool) map[string]bool {
	rev := map[string][]string{}
	if !up {
		for _, s := range db.Services {
			for _, d := range s.Deps {
				rev[d] = append(rev[d], s.Name)
			}
		}
	}
	set := map[string]bool{}
	var walk func(string)
	walk = func(n string) {
		if set[n] {
			return
		}
		set[n] = true
		next := db.Services[n].Deps
		if !up {
			next = rev[n]
		}
		for _, m := range next {
			walk(m)
		}
	}
	for _, n := range names {
		walk(n)
	}
	return set
}

// Longruns returns the names of the longruns, sorted.
func (db *DB) Longruns() []string {
	var out []string
	for _, name := range db.Order {
		if db.Services[name].Type == Longrun {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// readFile reads dir/name; ok is false when it does not exist.
func readFile(dir, name string) (string, bool, error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return string(b), true, nil
}

// readList reads a list file: one name per line, leading whitespace ignored, empty lines and
// lines starting with # skipped (s6-rc's format).
func readList(dir, name string) ([]string, bool, error) {
	text, ok, err := readFile(dir, name)
	if !ok || err != nil {
		return nil, ok, err
	}
	var out []string
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimLeft(line, " \t")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		out = append(out, line)
	}
	return out, true, nil
}

// readNames reads a NAME.d directory (its entries, dot files skipped) or, without one, the
// list file; ok says whether either exists.
func readNames(dir, dname, fname string) ([]string, bool, error) {
	entries, err := os.ReadDir(filepath.Join(dir, dname))
	if err == nil {
		var out []string
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), ".") {
				out = append(out, e.Name())
			}
		}
		return out, true, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, err
	}
	return readList(dir, fname)
}

func readUint(dir, svc, name string) (int, error) {
	text, ok, err := readFile(dir, name)
	if !ok || err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(text))
	if err != nil || n < 0 {
		return 0, treeErr(svc, "%s must hold a non-negative integer, not %q", name, strings.TrimSpace(text))
	}
	return n, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
