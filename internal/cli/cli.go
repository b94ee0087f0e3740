// Package cli is the scaffolding the s6gate commands share, so that each main only says what
// is its own: its usage, its flags, which package function it calls.
//
// Conventions it enforces: flags and positional arguments may be interleaved; everything after
// "--" is a command line of its own; a bad flag is a usage error (exit code 2); every failure is
// printed as exactly one line, "prog: verb: cause" (exitcode.Line).
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/s6gate/s6gate/pkg/exitcode"
)

// Repeated is a flag that may be given more than once (--env K=V --env K2=V2); it keeps every
// value, in order.
type Repeated []string

func (r *Repeated) String() string     { return strings.Join(*r, ",") }
func (r *Repeated) Set(v string) error { *r = append(*r, v); return nil }

// Args is what Parse found besides the flags.
type Args struct {
	Positional []string // arguments that are not flags, in order
	Command    []string // everything after "--"
	DashDash   bool     // whether "--" was given (Command may still be empty)
}

// Parse parses args with fs, which must be a flag.ContinueOnError set. Unlike fs.Parse it
// accepts flags after positional arguments ("register NAME --start"). A flag error is a usage
// error; -h/--help is flag.ErrHelp.
func Parse(fs *flag.FlagSet, args []string) (Args, error) {
	fs.SetOutput(io.Discard)
	var a Args
	for i, arg := range args {
		if arg == "--" {
			args, a.Command, a.DashDash = args[:i], args[i+1:], true
			break
		}
	}
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return a, err
			}
			return a, exitcode.Usagef("%v", err)
		}
		if fs.NArg() == 0 {
			return a, nil
		}
		a.Positional = append(a.Positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
}

// VerbHelp is the help of one verb (or action) of prog: its synopsis lines from usage (those
// that start with "prog verb"), then its flags as fs describes them. It is what `prog verb
// --help` prints on stdout, with exit code 0.
func VerbHelp(usage, prog, verb string, fs *flag.FlagSet) string {
	var b strings.Builder
	b.WriteString("usage:\n")
	for _, l := range strings.Split(usage, "\n") {
		l = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(l), "usage:"))
		if l == prog+" "+verb || strings.HasPrefix(l, prog+" "+verb+" ") {
			b.WriteString("  " + l + "\n")
		}
	}
	if fs != nil {
		n := 0
		fs.VisitAll(func(*flag.Flag) { n++ })
		if n > 0 {
			b.WriteString("\noptions:\n")
			fs.SetOutput(&b)
			fs.PrintDefaults()
			fs.SetOutput(io.Discard)
		}
	}
	return b.String()
}

// IsHelp reports whether arg asks for the usage text.
func IsHelp(arg string) bool {
	return arg == "-h" || arg == "-help" || arg == "--help" || arg == "help"
}

// Fail prints err as the command's one error line on w and returns its exit code.
func Fail(w io.Writer, prog, verb string, err error) int {
	fmt.Fprintln(w, exitcode.Line(prog, verb, err))
	return exitcode.Of(err)
}
