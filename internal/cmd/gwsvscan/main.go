// Package gwsvscan is the gw-svscan command (cmd/gw-svscan, and a name of the multi-call binary
// cmd/s6gate): the gateways' scanner. Run by root it supervises the service user's scan
// directory without ever running anything from it as root (package svscan); run by anyone
// else it is s6-svscan. See docs/gw-svscan.md.
package gwsvscan

import (
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
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

// parse reads the options and the settings that come from gw-svscan's own environment (root's,
// never the scan directory's).
func parse(args []string, getenv func(string) string) (svscan.Config, error) {
	fs := flag.NewFlagSet("gw-svscan", flag.ContinueOnError)
	notify := fs.Int("d", -1, "notification fd")
	maxServices := fs.Int("c", svscan.DefaultMax, "most services")
	rescan := fs.Int("t", 0, "rescan period in ms")
	a, err := cli.Parse(fs, args)
	if err != nil {
		return svscan.Config{}, fmt.Errorf("%w; %s", err, usage[:len(usage)-1])
	}
	switch {
	case len(a.Positional) != 1 || a.DashDash:
		return svscan.Config{}, exitcode.Usagef("want exactly one SCANDIR; %s", usage[:len(usage)-1])
	case *rescan < 0:
		return svscan.Config{}, exitcode.Usagef("-t %d: want a number of milliseconds, 0 for none", *rescan)
	case *notify < -1:
		return svscan.Config{}, exitcode.Usagef("-d %d: not a descriptor", *notify)
	}
	uids := config.UIDRange{First: config.DefaultUIDFirst, Last: config.DefaultUIDLast}
	if v := getenv("GATEWAY_UID_RANGE"); v != "" {
		if uids, err = config.ParseUIDRange(v); err != nil {
			return svscan.Config{}, &svscan.SetupError{Path: "GATEWAY_UID_RANGE", Reason: err.Error()}
		}
	}
	return svscan.Config{
		ScanDir:      a.Positional[0],
		Max:          min(max(*maxServices, svscan.MinLimit), svscan.MaxLimit), // clamped, as s6-svscan does
		Rescan:       time.Duration(*rescan) * time.Millisecond,
		NotifyFD:     *notify,
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
