// Package gwsvscan is the gw-svscan command (cmd/gw-svscan, and a name of the multi-call binary
// cmd/s6gate): the gateways' scanner. Run by root it supervises the service user's scan
// directory without ever running anything from it as root (package svscan); run by anyone
// else it is s6-svscan. See docs/gw-svscan.md.
package gwsvscan

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/s6gate/s6gate/internal/cli"
	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/svscan"
)

const usage = `usage: gw-svscan [-d NOTIFYFD] [-c MAX] [-t RESCAN_MS] SCANDIR
`

// setprivPath is util-linux's setpriv, in the full image and in the minimal one.
const setprivPath = "/usr/bin/setpriv"

// readyTimeout bounds the wait for the supervisors of the first scan before readiness is
// notified anyway.
const readyTimeout = 10 * time.Second

// Main runs gw-svscan with argv (argv[0] is the name it was started under; the arguments
// follow) and returns the exit code.
func Main(argv []string) int {
	return run(argv[min(1, len(argv)):], os.Getenv, os.Stdout, os.Stderr, os.Geteuid())
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer, euid int) int {
	if len(args) == 1 && cli.IsHelp(args[0]) {
		fmt.Fprint(stdout, usage)
		return exitcode.OK
	}
	if euid != 0 {
		// Nobody to protect from anybody: the scanner is s6-svscan itself, arguments and all.
		path := s6Tool(getenv, "s6-svscan")
		err := syscall.Exec(path, append([]string{"s6-svscan"}, args...), os.Environ())
		fmt.Fprintln(stderr, exitcode.Line("gw-svscan", "exec "+path, err))
		return svscan.CodeSystem
	}
	cfg, err := parse(args, getenv)
	if err != nil {
		return cli.Fail(stderr, "gw-svscan", "", err)
	}
	cfg.Log = slog.New(slog.NewTextHandler(stderr, nil)).With("prog", "gw-svscan")
	if err := svscan.Run(cfg); err != nil {
		return cli.Fail(stderr, "gw-svscan", "", err)
	}
	return exitcode.OK
}

// parse reads the options, as s6-svscan's getopt does ("-d3" or "-d 3", options before
// SCANDIR, "--" ends them), and the settings that come from gw-svscan's own environment
// (root's, never the scan directory's).
func parse(args []string, getenv func(string) string) (svscan.Config, error) {
	opts := map[byte]int{'d': -1, 'c': svscan.DefaultMax, 't': 0}
	for len(args) > 0 && len(args[0]) > 1 && args[0][0] == '-' {
		arg := args[0]
		args = args[1:]
		if arg == "--" {
			break
		}
		// Every option takes a value: the rest of the argument, else the next one.
		c, v := arg[1], arg[2:]
		if _, ok := opts[c]; !ok {
			return svscan.Config{}, exitcode.Usagef("unknown option -%c; %s", c, usage[:len(usage)-1])
		}
		if v == "" {
			if len(args) == 0 {
				return svscan.Config{}, exitcode.Usagef("-%c needs a value; %s", c, usage[:len(usage)-1])
			}
			v, args = args[0], args[1:]
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return svscan.Config{}, exitcode.Usagef("-%c %q: want a number; %s", c, v, usage[:len(usage)-1])
		}
		opts[c] = n
	}
	if len(args) != 1 {
		return svscan.Config{}, exitcode.Usagef("want exactly one SCANDIR; %s", usage[:len(usage)-1])
	}
	uids := config.UIDRange{First: config.DefaultUIDFirst, Last: config.DefaultUIDLast}
	if v := getenv("GATEWAY_UID_RANGE"); v != "" {
		var err error
		if uids, err = config.ParseUIDRange(v); err != nil {
			return svscan.Config{}, &svscan.SetupError{Path: "GATEWAY_UID_RANGE", Reason: err.Error()}
		}
	}
	return svscan.Config{
		ScanDir:      args[0],
		Max:          min(max(opts['c'], svscan.MinLimit), svscan.MaxLimit), // clamped, as s6-svscan does
		Rescan:       time.Duration(opts['t']) * time.Millisecond,
		NotifyFD:     opts['d'],
		ReadyTimeout: readyTimeout,
		Supervise:    s6Tool(getenv, "s6-supervise"),
		Setpriv:      setprivPath,
		UIDs:         uids,
		Environ:      os.Environ(),
	}, nil
}

// s6Tool is $S6_COMMAND_DIR/name when S6_COMMAND_DIR is an absolute path that has it, else
// /usr/bin/name (Debian's s6).
func s6Tool(getenv func(string) string, name string) string {
	if dir := getenv("S6_COMMAND_DIR"); filepath.IsAbs(dir) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	return "/usr/bin/" + name
}
