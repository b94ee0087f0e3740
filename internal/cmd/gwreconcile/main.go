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
	"github.com/s6gate/s6gate/pkg/aside"
	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/reconcile"
	"github.com/s6gate/s6gate/pkg/svcuser"
)

const usage = `usage: gw-reconcile [--boot | --dry-run | --check-boot | --remove-old]
`

// Main runs gw-reconcile with argv (argv[0] is the name it was started under; the
// arguments follow) and returns the exit code.
func Main(argv []string) int {
	return run(argv[min(1, len(argv)):], os.Stdout, os.Stderr)
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gw-reconcile", flag.ContinueOnError)
	dryRun := fs.Bool("dry-run", false, "report what would be done; change nothing")
	boot := fs.Bool("boot", false, "at boot: make the gateways' scan directory anew first, and record the outcome")
	prepared := fs.Bool("prepared", false, "with --boot: the root step is done; only reconcile (how a root --boot runs the rest as the service user)")
	checkBoot := fs.Bool("check-boot", false, "exit 0 iff this start's boot succeeded, else say why (the gateways' tree service asks before it starts)")
	removeOld := fs.Bool("remove-old", false, "remove the scan directories earlier boots set aside, once the gateways are up")
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
	modes := 0
	for _, m := range []bool{*boot, *dryRun, *checkBoot, *removeOld} {
		if m {
			modes++
		}
	}
	if modes > 1 {
		return fail(exitcode.Usagef("--boot, --dry-run, --check-boot and --remove-old exclude each other"))
	}
	if *prepared && !*boot {
		return fail(exitcode.Usagef("--prepared goes with --boot"))
	}
	s, err := config.FromEnv(os.Getenv)
	if err != nil {
		return fail(err)
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("prog", "gw-reconcile")
	switch {
	case *checkBoot:
		return checkBootRecord(s, stderr)
	case *removeOld:
		if err := aside.Idle(); err != nil {
			log.Warn("cannot lower my priority; removing at normal priority", "err", err)
		}
		if _, err := reconcile.RemoveOld(context.Background(), s, reconcile.RemoveOldWait, log); err != nil {
			return exitcode.Failed
		}
		return exitcode.OK
	case *boot && !*prepared:
		return bootAndRecord(s, stdout, stderr, log)
	}
	if err := s.CheckHome(); err != nil {
		return fail(err)
	}
	if err := reconcileHere(s, *dryRun, *boot, *prepared, stdout, stderr); err != nil {
		return fail(err)
	}
	return exitcode.OK
}

// reconcileHere is the part of a run that acts as the service user (SPEC §11): started as
// root it becomes that user first; in a container run as another non-root uid it acts as that
// uid. asChild: the root step of a boot runs this in a child process (--boot --prepared).
func reconcileHere(s config.Settings, dryRun, boot, asChild bool, stdout, stderr io.Writer) error {
	me, err := svcuser.Become(s.User)
	if err != nil {
		return err
	}
	if !dryRun {
		if err := checkHomeWritable(s, me, asChild); err != nil {
			return err
		}
	}
	// The log goes out through a buffer, flushed when full and at the end: a boot after a crash
	// logs a line per profile (what was swept), which unbuffered was a write(2) each. The
	// handler serialises its writes, so the buffer needs no lock of its own.
	logs := bufio.NewWriterSize(stderr, 32<<10)
	_, err = reconcile.Run(context.Background(), reconcile.Options{
		Settings: s, DryRun: dryRun, Boot: boot, Out: logsFirst{logs, stdout},
		Log: slog.New(slog.NewTextHandler(logs, nil)).With("prog", "gw-reconcile"),
	})
	_ = logs.Flush()
	return err
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
// one line that names the fix, instead of a failure per profile. asChild: this is the service
// user's part of a root boot, which has checked the common cases already (dataRootProblem).
func checkHomeWritable(s config.Settings, me svcuser.User, asChild bool) error {
	err := unix.Access(s.Home, unix.W_OK|unix.X_OK)
	if err == nil {
		return nil
	}
	if errors.Is(err, unix.EROFS) {
		return &stepError{step: stepDataRoot, err: fmt.Errorf("data root %s is on a read-only file system", s.Home), fix: fixReadOnly}
	}
	want := s.User
	if u, lerr := svcuser.Lookup(s.User); lerr == nil {
		want = fmt.Sprintf("%s (uid %d)", u.Name, u.UID)
	}
	who := fmt.Sprintf("uid %d", me.UID)
	if me.Name != strconv.Itoa(me.UID) {
		who = fmt.Sprintf("%s (uid %d)", me.Name, me.UID)
	}
	fix := fmt.Sprintf("run the container as the service user %s, or give uid %d a data root it can write", want, me.UID)
	if asChild {
		fix = fmt.Sprintf("give it to the service user (chown %d:%d on the volume), then restart the container", me.UID, me.GID)
	}
	return &stepError{step: stepDataRoot, err: fmt.Errorf("data root %s is not writable by %s: %w", s.Home, who, err), fix: fix}
}
