// Package gwrender is the gw-render command (cmd/gw-render, and a name of the multi-call
// binary cmd/s6gate): renders a profile's s6 slot into a directory, or publishes/removes it in
// the scan directory. It is the low-level tool under `gateway register/unregister`: it records
// no intent and writes no marker. See docs/gw-render.md.
package gwrender

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/s6gate/s6gate/internal/cli"
	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/profileuid"
	"github.com/s6gate/s6gate/pkg/s6"
	"github.com/s6gate/s6gate/pkg/slot"
	"github.com/s6gate/s6gate/pkg/svcuser"
	"github.com/s6gate/s6gate/pkg/verblock"
)

const usage = `usage:
  gw-render render -p NAME [--down] [--env K=V]... DIR [-- CMD...]
  gw-render publish -p NAME [--down] [--env K=V]... [-- CMD...]
  gw-render remove -p NAME
`

// lockWait bounds how long publish and remove wait for a verb acting on the same profile.
const lockWait = 10 * time.Second

// Main runs gw-render with argv (argv[0] is the name it was started under; the
// arguments follow) and returns the exit code.
func Main(argv []string) int {
	return run(argv[min(1, len(argv)):], os.Stdout, os.Stderr)
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitcode.Usage
	}
	if cli.IsHelp(args[0]) {
		fmt.Fprint(stdout, usage)
		return exitcode.OK
	}
	if err := do(args[0], args[1:], stdout); err != nil {
		return cli.Fail(stderr, "gw-render", args[0], err)
	}
	return exitcode.OK
}

func do(verb string, args []string, stdout io.Writer) error {
	if verb != "render" && verb != "publish" && verb != "remove" {
		return exitcode.Usagef("unknown action %q (want render, publish or remove)", verb)
	}
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	name := fs.String("p", "", "profile name")
	down := fs.Bool("down", false, "write ./down (registered, not started)")
	var envArgs cli.Repeated
	fs.Var(&envArgs, "env", "K=V (repeatable)")
	a, err := cli.Parse(fs, args)
	if errors.Is(err, flag.ErrHelp) { // gw-render ACTION --help
		fmt.Fprint(stdout, cli.VerbHelp(usage, "gw-render", verb, fs))
		return nil
	}
	if err != nil {
		return err
	}
	want := 0
	if verb == "render" {
		want = 1
	}
	switch {
	case *name == "":
		return exitcode.Usagef("-p NAME is required")
	case len(a.Positional) != want:
		return exitcode.Usagef("want %d positional argument(s), got %d", want, len(a.Positional))
	case verb == "remove" && (len(envArgs) > 0 || *down || a.DashDash):
		return exitcode.Usagef("remove takes only -p NAME")
	}
	if err := profile.Validate(*name); err != nil {
		return err
	}
	env, err := profile.ParseEnv(envArgs)
	if err != nil {
		return err
	}
	s, err := config.FromEnv(os.Getenv)
	if err != nil {
		return err
	}
	if err := s.CheckHome(); err != nil {
		return err
	}
	// Everything from here on acts as the service user (SPEC §11).
	if err := svcuser.Drop(s.User); err != nil {
		return err
	}
	ctx, tools := context.Background(), s6.Tools{Dir: s.CommandDir}
	if verb != "render" { // publish and remove change the scan directory: one command per profile
		lctx, cancel := context.WithTimeout(ctx, lockWait)
		lock, err := verblock.Acquire(lctx, s.ScanDir, *name)
		cancel()
		if err != nil {
			return err
		}
		defer lock.Release()
	}
	if verb == "remove" {
		if err := slot.Remove(ctx, tools, s.ScanDir, *name); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "removed %s\n", slot.Path(s.ScanDir, *name))
		return nil
	}
	cfg, err := profile.LoadConfig(s.Home, *name)
	if err != nil {
		return err
	}
	spec := slot.NewSpec(s, *name, cfg.Merge(env, a.Command), *down)
	// A slot names its profile's own uid (claimed once, kept for good), so gw-svscan runs it
	// isolated; `render` (to a directory of the caller's) claims it too, as publish would.
	if spec.UID, err = profileuid.Allocate(s, *name); err != nil {
		return fmt.Errorf("the profile's own uid: %w", err)
	}
	if verb == "render" {
		return render(a.Positional[0], spec, stdout)
	}
	dir, err := slot.Register(ctx, tools, s.ScanDir, spec)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "published %s\n", dir)
	return nil
}

// render writes the slot into dir, which it creates (it must not exist).
func render(dir string, spec slot.Spec, stdout io.Writer) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return err
	}
	if err := slot.Render(dir, spec); err != nil {
		_ = os.RemoveAll(dir)
		return err
	}
	fmt.Fprintf(stdout, "rendered %s\n", dir)
	return nil
}
