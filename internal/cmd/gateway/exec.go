package gateway

import (
	"fmt"
	"io"
	"os"
	"runtime"

	"github.com/s6gate/s6gate/internal/cli"
	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/gatewayrun"
	"github.com/s6gate/s6gate/pkg/svcuser"
)

// finishUsage is the usage of the hidden verb below.
const finishUsage = "usage: gateway finish -p NAME -- CODE SIGNAL [SERVICE]"

// The hidden verb of exec supervision (docs/gateway.md, "Exec supervision"), for the slot's
// own use, not operators':
//
//	gateway finish -p NAME -- CODE SIGNAL…  the slot's finish, with s6-supervise's arguments
//
// hidden runs it and reports whether verb was it.
func hidden(verb string, args []string, stdout, stderr io.Writer) (int, bool) {
	if verb != "finish" {
		return 0, false
	}
	if len(args) == 1 && cli.IsHelp(args[0]) {
		fmt.Fprintln(stdout, finishUsage)
		return exitcode.OK, true
	}
	log := gatewayrun.NewLogger(stderr)
	settings, err := config.FromEnv(os.Getenv)
	if err != nil {
		return cli.Fail(stderr, "gateway", verb, err), true
	}
	runtime.GOMAXPROCS(1)
	if len(args) < 3 || args[0] != "-p" || (len(args) > 2 && args[2] != "--") {
		fmt.Fprintln(stderr, finishUsage)
		return exitcode.Usage, true
	}
	if err := svcuser.Drop(settings.User); err != nil {
		return cli.Fail(stderr, "gateway", verb, err), true
	}
	dir, _ := os.Getwd()
	return gatewayrun.Finish(gatewayrun.FinishOptions{
		Settings: settings, Profile: args[1], Args: args[3:], Dir: dir, Logger: log,
	}), true
}
