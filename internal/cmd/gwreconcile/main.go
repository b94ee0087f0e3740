// Package gwreconcile is the gw-reconcile command (cmd/gw-reconcile, and a name of the multi-call
// binary cmd/s6gate): is the boot hook that rebuilds every profile's s6 slot from the data
// volume (run from /etc/cont-init.d, before services start). See docs/gw-reconcile.md.
package gwreconcile

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/internal/cli"
	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/reconcile"
	"github.com/s6gate/s6gate/pkg/svcuser"
)

const usage = `usage: gw-reconcile [--boot | --dry-run]
`

// Main runs gw-reconcile with argv (argv[0] is the name it was started under; the
// arguments follow) and returns the exit code.
func Main(argv []string) int {
	return run(argv[min(1, len(argv)):], os.Stdout, os.Stderr)
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gw-reconcile", flag.ContinueOnError)
	dryRun := fs.Bool("dry-run", false, "report what would be done; change nothing")
	boot := fs.Bool("boot", false, "at boot: make the gateways' scan directory anew first")
	fail := func(err error) int { return cli.Fail(stderr, "gw-reconcile", "", err) }
	a, err := cli.Parse(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return exitcode.OK
	}
	if err != nil {
		return fail(err)
	}
	if len(a.Positional) > 0 || a.DashDash {
		return fail(exitcode.Usagef("unexpected argument %q", append(a.Positional, "--")[0]))
	}
	if *boot && *dryRun {
		return fail(exitcode.Usagef("--boot and --dry-run exclude each other"))
	}
	s, err := config.FromEnv(os.Getenv)
	if err != nil {
		return fail(err)
	}
	if err := s.CheckHome(); err != nil {
		return fail(err)
	}
	if *boot {
		uid, gid := -1, -1
		if os.Geteuid() == 0 {
			u, err := svcuser.Lookup(s.User)
			if err != nil {
				return fail(err)
			}
			uid, gid = u.UID, u.GID
		}
		if err := reconcile.PrepareBoot(s, uid, gid); err != nil {
			return fail(err)
		}
	}
	// The rest runs as the service user (SPEC §11), or, in a container run as another
	// non-root uid, as that uid.
	me, err := svcuser.Become(s.User)
	if err != nil {
		return fail(err)
	}
	if !*dryRun {
		if err := checkHomeWritable(s, me); err != nil {
			return fail(err)
		}
	}
	// The log goes out through a buffer, flushed when full and at the end: a boot after a crash
	// logs a line per profile (what was swept), which unbuffered was a write(2) each. The
	// handler serialises its writes, so the buffer needs no lock of its own.
	logs := bufio.NewWriterSize(stderr, 32<<10)
	_, err = reconcile.Run(context.Background(), reconcile.Options{
		Settings: s, DryRun: *dryRun, Boot: *boot, Out: logsFirst{logs, stdout},
		Log: slog.New(slog.NewTextHandler(logs, nil)).With("prog", "gw-reconcile"),
	})
	_ = logs.Flush()
	if err != nil {
		return fail(err)
	}
	return exitcode.OK
}

// logsFirst writes to out after flushing the buffered log, so that what was logged before
// the profiles' lines still comes before them. Run writes its lines once all its workers are
// done, so nothing logs meanwhile.
type logsFirst struct {
	logs *bufio.Writer
	out  io.Writer
}

func (w logsFirst) Write(p []byte) (int, error) {
	_ = w.logs.Flush()
	return w.out.Write(p)
}

// checkHomeWritable turns "a container run as a uid that cannot write the data root" into
// one line that names the fix, instead of a failure per profile.
func checkHomeWritable(s config.Settings, me svcuser.User) error {
	err := unix.Access(s.Home, unix.W_OK|unix.X_OK)
	if err == nil {
		return nil
	}
	want := s.User
	if u, lerr := svcuser.Lookup(s.User); lerr == nil {
		want = fmt.Sprintf("%s (uid %d)", u.Name, u.UID)
	}
	who := fmt.Sprintf("uid %d", me.UID)
	if me.Name != strconv.Itoa(me.UID) {
		who = fmt.Sprintf("%s (uid %d)", me.Name, me.UID)
	}
	return fmt.Errorf("data root %s is not writable by %s: %w; run the container as the service user %s, or give uid %d a data root it can write",
		s.Home, who, err, want, me.UID)
}
