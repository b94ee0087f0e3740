// Package withcontenv is the with-contenv command (cmd/with-contenv, and a name of the multi-call
// binary cmd/s6gate): runs a program with the container environment that /init saved in
// /run/s6/container_environment, the way s6-overlay's with-contenv does, so that a run script
// started by s6 from a minimal environment can begin with
//
//	#!/command/with-contenv /bin/sh
//
// See docs/init.md. It has no options and no dependency beyond the standard library on
// purpose: it sits in front of every service start.
package withcontenv

import (
	"io"
	"os"

	"github.com/s6gate/s6gate/pkg/contenv"
)

const usage = "usage: with-contenv PROG [ARGS...]"

// Main runs with-contenv with argv (argv[0] is the name it was started under; the
// arguments follow) and returns the exit code.
func Main(argv []string) int {
	return run(argv[min(1, len(argv)):], os.Environ(), os.Stdout, os.Stderr)
}

// run returns only when PROG could not be started.
func run(args, environ []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch a := args[0]; {
		case a == "--":
			args = args[1:]
		case a == "-h" || a == "-help" || a == "--help":
			io.WriteString(stdout, usage+"\n")
			return 0
		case len(a) > 1 && a[0] == '-':
			io.WriteString(stderr, "with-contenv: unknown option "+a+"; "+usage+"\n")
			return 2
		}
	}
	if len(args) == 0 {
		io.WriteString(stderr, "with-contenv: missing PROG; "+usage+"\n")
		return 2
	}
	env, _, err := contenv.Restore(environ, contenv.DefaultDir)
	if err != nil {
		io.WriteString(stderr, "with-contenv: read container environment: "+err.Error()+"\n")
		return 1
	}
	err = contenv.Exec(args, env)
	io.WriteString(stderr, "with-contenv: "+err.Error()+"\n")
	return contenv.ExecCode(err)
}
