// Command gw-render renders a profile's s6 slot into a directory, or publishes/removes it in
// the scan directory. It is the low-level tool under `gateway register/unregister`: it records
// no intent and writes no marker. See docs/gw-render.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"time"

	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/operator"
	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/s6"
	"github.com/s6gate/s6gate/pkg/safedir"
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

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitcode.Usage
	}
	if args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		return exitcode.OK
	}
	verb := args[0]
	err := do(verb, args[1:], stdout)
	if err != nil {
		fmt.Fprintf(stderr, "gw-render: %s: %s\n", verb, strings.Join(strings.Fields(err.Error()), " "))
	}
	return exitcode.Of(err)
}

func do(verb string, args []string, stdout io.Writer) error {
	if verb != "render" && verb != "publish" && verb != "remove" {
		return exitcode.Usagef("unknown action %q (want render, publish or remove)", verb)
	}
	var command []string
	for i, a := range args {
		if a == "--" {
			args, command = args[:i], args[i+1:]
			break
		}
	}
	fs := flag.NewFlagSet(verb, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("p", "", "profile name")
	down := fs.Bool("down", false, "write ./down (registered, not started)")
	var env multi
	fs.Var(&env, "env", "K=V (repeatable)")
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return exitcode.Usagef("%v", err)
		}
		if fs.NArg() == 0 {
			break
		}
		pos, args = append(pos, fs.Arg(0)), fs.Args()[1:]
	}
	want := 0
	if verb == "render" {
		want = 1
	}
	switch {
	case *name == "":
		return exitcode.Usagef("-p NAME is required")
	case len(pos) != want:
		return exitcode.Usagef("want %d positional argument(s), got %d", want, len(pos))
	case verb == "remove" && (len(env) > 0 || *down || command != nil):
		return exitcode.Usagef("remove takes only -p NAME")
	}
	if err := profile.Validate(*name); err != nil {
		return err
	}
	extra, err := operator.ParseEnv(env)
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
	if _, err := svcuser.Become(s.User); err != nil {
		return err
	}
	ctx, tools := context.Background(), s6.Tools{Dir: s.CommandDir}
	if verb != "render" {
		// publish and remove change the scan directory: one command per profile at a time.
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
	cfg, err := configOf(s, *name)
	if err != nil {
		return err
	}
	for k, v := range extra {
		if cfg.Env == nil {
			cfg.Env = map[string]string{}
		}
		cfg.Env[k] = v
	}
	if len(command) > 0 {
		cfg.Command = command
	}
	spec := slot.NewSpec(s, *name, cfg, *down)
	if verb == "render" {
		if err := spec.Validate(); err != nil {
			return err
		}
		if err := os.Mkdir(pos[0], 0o755); err != nil {
			return fmt.Errorf("render into %s: %w", pos[0], err)
		}
		if err := slot.Render(pos[0], spec); err != nil {
			_ = os.RemoveAll(pos[0])
			return err
		}
		fmt.Fprintf(stdout, "rendered %s\n", pos[0])
		return nil
	}
	dir, err := slot.Register(ctx, tools, s.ScanDir, spec)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "published %s\n", dir)
	return nil
}

// configOf reads the profile's profile.json; a profile without a home has an empty one.
func configOf(s config.Settings, name string) (profile.Config, error) {
	home, err := safedir.Open(s.Home, profile.HomeRel(name))
	if errors.Is(err, fs.ErrNotExist) {
		return profile.Config{}, nil
	}
	if err != nil {
		return profile.Config{}, err
	}
	defer home.Close()
	return profile.ReadConfig(home)
}
