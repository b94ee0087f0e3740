// Package printcontenv is the printcontenv command (cmd/printcontenv, and a name of the multi-call
// binary cmd/s6gate): prints one variable of the container environment that /init saved in
// /run/s6/container_environment (or of its own environment when S6_KEEP_ENV is set or there
// is no such directory), followed by a newline, like printenv(1). See docs/init.md.
package printcontenv

import (
	"io"
	"os"

	"github.com/s6gate/s6gate/pkg/contenv"
)

const usage = "usage: printcontenv VAR"

// Main runs printcontenv with argv (argv[0] is the name it was started under; the
// arguments follow) and returns the exit code.
func Main(argv []string) int {
	return run(argv[min(1, len(argv)):], os.Environ(), os.Stdout, os.Stderr)
}

func run(args, environ []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help") {
		io.WriteString(stdout, usage+"\n")
		return 0
	}
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) != 1 {
		io.WriteString(stderr, "printcontenv: expected exactly one VAR; "+usage+"\n")
		return 2
	}
	name := args[0]
	if !contenv.ValidName(name) {
		io.WriteString(stderr, "printcontenv: invalid variable name \""+name+"\"; "+usage+"\n")
		return 2
	}
	value, ok, err := contenv.Lookup(environ, contenv.DefaultDir, name)
	if err != nil {
		io.WriteString(stderr, "printcontenv: read "+name+": "+err.Error()+"\n")
		return 1
	}
	if !ok {
		return 1
	}
	if _, err := io.WriteString(stdout, value+"\n"); err != nil {
		return 1
	}
	return 0
}
