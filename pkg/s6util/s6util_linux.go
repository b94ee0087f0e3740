package s6util

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Env is what a program sees of its process: arguments, environment and standard streams.
type Env struct {
	Args    []string // without the program name
	Environ []string
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
}

type program struct {
	usage string
	run   func(p *proc) int
}

var programs = map[string]program{
	"s6-mkdir":        {"s6-mkdir [ -p ] [ -v ] [ -m mode ] dir...", mkdirMain},
	"s6-echo":         {"s6-echo [ -n ] [ -s sep ] args...", echoMain},
	"s6-rmrf":         {"s6-rmrf file ...", rmrfMain},
	"s6-chown":        {"s6-chown [ -U ] [ -u uid ] [ -g gid ] file", chownMain},
	"s6-chmod":        {"s6-chmod mode file", chmodMain},
	"s6-sleep":        {"s6-sleep [ -m ] duration prog...", sleepMain},
	"s6-cat":          {"s6-cat", catMain},
	"s6-ln":           {"s6-ln [ -n ] [ -s ] [ -f ] [ -L ] [ -P ] src... dest", lnMain},
	"s6-touch":        {"s6-touch file ...", touchMain},
	"s6-hiercopy":     {"s6-hiercopy src dst", hiercopyMain},
	"with-retries":    {"with-retries [ -n retries ] [ -t millisecs ] prog...", withRetriesMain},
	"logutil-service": {"logutil-service [ -f fifo ] logdir", logutilServiceMain},
	"logutil-newfifo": {"logutil-newfifo [ -m mode ] [ -o owner ] fifo", logutilNewfifoMain},
}

// Names returns every program name Main answers to, sorted.
func Names() []string {
	names := make([]string, 0, len(programs))
	for n := range programs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Main runs the program named by filepath.Base(argv[0]) and returns its exit code. Called
// under another name, the first argument names the program (`s6util s6-echo hi`).
func Main(argv []string) int {
	return Run(argv, Env{Environ: os.Environ(), Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr})
}

// Run is Main with explicit streams and environment (for tests and callers in-process).
func Run(argv []string, e Env) int {
	if len(argv) == 0 {
		fmt.Fprintf(e.Stderr, "s6util: usage: s6util PROGRAM [ARGS...] (one of: %s)\n", strings.Join(Names(), " "))
		return 100
	}
	name := filepath.Base(argv[0])
	prog, ok := programs[name]
	if !ok && len(argv) > 1 {
		name = filepath.Base(argv[1])
		prog, ok = programs[name]
		argv = argv[1:]
	}
	if !ok {
		fmt.Fprintf(e.Stderr, "s6util: unknown program %q (one of: %s)\n", filepath.Base(argv[0]), strings.Join(Names(), " "))
		return 100
	}
	e.Args = argv[1:]
	return prog.run(&proc{Env: e, name: name, usage: prog.usage})
}

// proc is one running program.
type proc struct {
	Env
	name  string
	usage string
}

// dieUsage prints skalibs' usage line and returns 100.
func (p *proc) dieUsage() int {
	fmt.Fprintf(p.Stderr, "%s: usage: %s\n", p.name, p.usage)
	return 100
}

// warn prints "NAME: warning: MSG".
func (p *proc) warn(format string, args ...any) {
	fmt.Fprintf(p.Stderr, "%s: warning: %s\n", p.name, fmt.Sprintf(format, args...))
}

// fatal prints "NAME: fatal: MSG" and returns code.
func (p *proc) fatal(code int, format string, args ...any) int {
	fmt.Fprintf(p.Stderr, "%s: fatal: %s\n", p.name, fmt.Sprintf(format, args...))
	return code
}

// getopt parses skalibs-style short options: flags is the set of letters, those followed by
// ':' take an argument ("m:pv"). Parsing stops at "--" or the first non-option. It returns the
// options in order and the remaining arguments, or ok=false on an unknown option or a missing
// argument.
func getopt(args []string, spec string) (opts []opt, rest []string, ok bool) {
	i := 0
	for i < len(args) {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		for j := 1; j < len(a); j++ {
			c := a[j]
			k := strings.IndexByte(spec, c)
			if k < 0 || c == ':' {
				return nil, nil, false
			}
			if k+1 < len(spec) && spec[k+1] == ':' {
				var val string
				if j+1 < len(a) {
					val = a[j+1:]
				} else if i+1 < len(args) {
					i++
					val = args[i]
				} else {
					return nil, nil, false
				}
				opts = append(opts, opt{c, val})
				break
			}
			opts = append(opts, opt{c, ""})
		}
		i++
	}
	return opts, args[i:], true
}

type opt struct {
	name byte
	val  string
}
