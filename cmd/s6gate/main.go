// Command s6gate is every s6gate command in one static binary (issue 9, smaller images): the
// image installs it once, as /usr/local/bin/s6gate, with one link per command —
// /usr/local/bin/{gateway,gw-reconcile,gw-render,gw-mark,gw-svscan,with-contenv,printcontenv,s6-rc}
// and /init —
// so the Go runtime and the shared packages are on disk once instead of seven times.
//
// It runs the command named by the base name of argv[0], which is the link's name also when
// the kernel starts it as a #! interpreter (`#!/command/with-contenv /bin/sh`: argv[0] is the
// interpreter path of the #! line). The names under which /init starts itself again (stage 2,
// the .s6-svscan stop hooks, finish, crash, halt) go to /init as well: /init links them to the
// running executable, which is this binary. Under any other name, `s6gate CMD [ARGS...]` runs
// CMD, and `s6gate --list` prints the command names, one a line.
//
// Every command's code is its package under internal/cmd (pkg/boot for /init, pkg/s6rc for
// s6-rc), shared
// with the single binaries cmd/<name>, which stay buildable. The packages keep package-level
// initialisation trivial (GODEBUG=inittrace=1 shows it), because every process — each gateway
// and each with-contenv in front of a service start — runs the initialisation of all of them.
//
// containermaxprocs=0: the Go runtime neither sizes GOMAXPROCS from the cgroup's CPU quota
// nor keeps the cgroup's two files open for the process's whole life at its lowest free
// descriptors (4 and 5 in a slot, where s6's notification descriptor is 3) — descriptors an
// exec-supervised command asks for as its ready.notify_fd (pkg/gatewayrun, exec.go). Every
// s6gate process is small; gateway run sets GOMAXPROCS to 1 itself.
//
//go:debug containermaxprocs=0
package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/s6gate/s6gate/internal/cmd/gateway"
	"github.com/s6gate/s6gate/internal/cmd/gwmark"
	"github.com/s6gate/s6gate/internal/cmd/gwreconcile"
	"github.com/s6gate/s6gate/internal/cmd/gwrender"
	"github.com/s6gate/s6gate/internal/cmd/gwsvscan"
	"github.com/s6gate/s6gate/internal/cmd/printcontenv"
	"github.com/s6gate/s6gate/internal/cmd/withcontenv"
	"github.com/s6gate/s6gate/pkg/boot"
	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/s6rc"
	"github.com/s6gate/s6gate/pkg/s6util"
)

// command is one name the binary answers to. Each main takes the whole argv, argv[0] included.
type command struct {
	name string
	main func(argv []string) int
}

// commands returns the command names in the order `--list` prints them: s6gate's own, then the
// s6-portable-utils commands and s6-overlay helpers of package s6util.
func commands() []command {
	own := []command{
		{"gateway", gateway.Main},
		{"gw-reconcile", gwreconcile.Main},
		{"gw-render", gwrender.Main},
		{"gw-mark", gwmark.Main},
		{"gw-svscan", gwsvscan.Main},
		{"with-contenv", withcontenv.Main},
		{"printcontenv", printcontenv.Main},
		{"s6-rc", s6rc.Main},
		{"init", boot.Main},
	}
	for _, n := range s6util.Names() {
		own = append(own, command{n, s6util.Main})
	}
	return own
}

const usage = `usage: s6gate CMD [ARGS...]   (or run it through a link named CMD)
       s6gate --list
commands: gateway, gw-reconcile, gw-render, gw-mark, gw-svscan, with-contenv, printcontenv, s6-rc,
  init, and s6-overlay's helpers and s6-portable-utils: logutil-newfifo, logutil-service, s6-cat,
  s6-chmod, s6-chown, s6-echo, s6-hiercopy, s6-ln, s6-mkdir, s6-rmrf, s6-sleep, s6-touch,
  with-retries
`

func main() {
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

func run(argv []string, stdout, stderr io.Writer) int {
	name := ""
	if len(argv) > 0 {
		name = filepath.Base(argv[0])
	}
	if m := lookup(name); m != nil {
		return m(argv)
	}
	if boot.IsJobName(name) {
		return boot.Main(argv)
	}
	// Not started through a command's link: the command is the first argument.
	if len(argv) < 2 {
		fmt.Fprint(stderr, usage)
		return exitcode.Usage
	}
	switch arg := argv[1]; arg {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage)
		return exitcode.OK
	case "--list":
		for _, c := range commands() {
			fmt.Fprintln(stdout, c.name)
		}
		return exitcode.OK
	default:
		if m := lookup(arg); m != nil {
			return m(argv[1:])
		}
		fmt.Fprintf(stderr, "s6gate: unknown command %q\n%s", arg, usage)
		return exitcode.Usage
	}
}

func lookup(name string) func([]string) int {
	for _, c := range commands() {
		if c.name == name {
			return c.main
		}
	}
	return nil
}
