// Command gw-http is s6gate's read-only HTTP endpoint: Prometheus metrics, liveness,
// readiness and status, for watching a container without `docker exec` (docs/metrics.md).
// It is off unless GATEWAY_HTTP_ADDR is set: then the image's cont-init hook
// /etc/cont-init.d/30-s6gate-http makes it a service of the root tree, run as the service
// user. Its code is package pkg/gwhttp.
//
// It is a binary of its own, not a name of the multi-call s6gate: the Prometheus client and
// protobuf would grow the binary every gateway runs and add their package initialisation to
// every gateway start (docs/metrics.md, "Size").
//
// Usage: gw-http [--addr [HOST]:PORT]   (default $GATEWAY_HTTP_ADDR); gw-http --version
//
// It listens first (as root it may take a port below 1024), then becomes the service user,
// tells s6 it is ready on GATEWAY_NOTIFY_FD when that is set, and serves until SIGTERM or
// SIGINT. Exit codes: 0 stopped by a signal, 1 the server failed, 2 bad usage or address.
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/s6gate/s6gate/internal/cli"
	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/gwhttp"
	"github.com/s6gate/s6gate/pkg/operator"
	"github.com/s6gate/s6gate/pkg/probe"
	"github.com/s6gate/s6gate/pkg/svchealth"
	"github.com/s6gate/s6gate/pkg/svcuser"
)

const usage = "usage: gw-http [--addr [HOST]:PORT]   (default $GATEWAY_HTTP_ADDR)\n       gw-http --version\n"

func main() {
	os.Exit(run(os.Args[1:], os.Getenv, os.Stdout, os.Stderr))
}

func run(args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 1 && cli.IsVersion(args[0]) {
		cli.PrintVersion(stdout, "gw-http", cmp.Or(getenv("S6_COMMAND_DIR"), config.DefaultCommandDir))
		return exitcode.OK
	}
	fs := flag.NewFlagSet("gw-http", flag.ContinueOnError)
	addr := fs.String("addr", getenv("GATEWAY_HTTP_ADDR"), "listen address")
	a, err := cli.Parse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return exitcode.OK
	}
	if err == nil && (len(a.Positional) > 0 || a.DashDash) {
		err = exitcode.Usagef("unexpected argument")
	}
	if err == nil && *addr == "" {
		err = exitcode.Usagef("no address: set GATEWAY_HTTP_ADDR (e.g. :9090) or --addr")
	}
	if err == nil {
		err = gwhttp.CheckAddr(*addr)
	}
	if err != nil {
		return cli.Fail(stderr, "gw-http", "serve", err)
	}
	settings, err := config.FromEnv(getenv)
	if err != nil {
		return cli.Fail(stderr, "gw-http", "serve", err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return cli.Fail(stderr, "gw-http", "serve", fmt.Errorf("listen on %s: %w", *addr, err))
	}
	if err := svcuser.Drop(settings.User); err != nil {
		return cli.Fail(stderr, "gw-http", "serve", err)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	op := operator.New(settings, log)
	op.Timeout = time.Second // a scrape during the boot answers soon, without the gateways
	src := &gwhttp.Container{Operator: op, Probe: probe.Paths{ScanDir: settings.ScanDir, Services: svchealth.DefaultPaths()}}
	log.Info("serving", "addr", ln.Addr().String(), "uid", os.Geteuid())
	if fd, _ := strconv.Atoi(getenv("GATEWAY_NOTIFY_FD")); fd >= 3 {
		if f := os.NewFile(uintptr(fd), "notify"); f != nil {
			_, _ = f.Write([]byte("\n"))
			_ = f.Close()
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := gwhttp.Serve(ctx, ln, gwhttp.Handler(src, log), log); err != nil {
		return cli.Fail(stderr, "gw-http", "serve", err)
	}
	return exitcode.OK
}
