package s6rc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const usage = `usage: s6-rc [ -l live ] [ -b ] [ -a ] [ -u | -d ] [ -e | -E ] list servicenames...
       s6-rc [ -l live ] [ -b ] [ -a ] [ -u | -d ] [ -e | -E ] listall servicenames...
       s6-rc [ -l live ] [ -b ] diff
       s6-rc [ -l live ] [ -b ] [ -a ] [ -u | -d | -D ] [ -p ] [ -v verbosity ] [ -t timeout ] change [ servicenames... ]
       s6-rc [ options ] start|stop servicenames...
       s6-rc help`

// Env is what the s6-rc command reads from its surroundings (tests replace it).
type Env struct {
	Stdout, Stderr io.Writer
	ScanDir        string // the root scan directory, /run/service
	LegacyDir      string // /run/s6/legacy-services
	Sys            *System
}

// Main is the s6-rc command: s6-rc's interface on the live state that /init made. It returns
// the exit code (s6-rc's codes).
func Main(args []string) int {
	sys := NewSystem()
	return Run(args, Env{Stdout: os.Stdout, Stderr: os.Stderr, ScanDir: "/run/service", LegacyDir: DefaultLegacyDir, Sys: sys})
}

type cliOpts struct {
	live      string
	block     bool
	all       bool
	down      bool
	force     bool
	prune     bool
	essential int // -e: 1 (hide essential), -E: 0
	verbosity int
	timeout   time.Duration
}

// Run is Main with its surroundings given.
func Run(args []string, env Env) int {
	fatal := func(code int, format string, a ...any) int {
		fmt.Fprintf(env.Stderr, "s6-rc: fatal: "+format+"\n", a...)
		return code
	}
	o := cliOpts{live: DefaultLiveDir, verbosity: 1}
	if len(args) > 0 {
		args = args[1:]
	}
	for len(args) > 0 && strings.HasPrefix(args[0], "-") && args[0] != "-" {
		a := args[0]
		args = args[1:]
		if a == "--" {
			break
		}
		for i := 1; i < len(a); i++ {
			c := a[i]
			if strings.IndexByte("lvtn", c) >= 0 {
				val := a[i+1:]
				if val == "" {
					if len(args) == 0 {
						return fatal(CodeUsage, "option -%c needs an argument\n%s", c, usage)
					}
					val, args = args[0], args[1:]
				}
				switch c {
				case 'l':
					o.live = val
				case 'v', 't':
					n, err := strconv.Atoi(val)
					if err != nil || n < 0 {
						return fatal(CodeUsage, "-%c needs a non-negative integer\n%s", c, usage)
					}
					if c == 'v' {
						o.verbosity = n
					} else {
						o.timeout = time.Duration(n) * time.Millisecond
					}
				case 'n':
					return fatal(CodeUsage, "dry runs (-n) are not supported by this s6-rc")
				}
				break
			}
			switch c {
			case 'b':
				o.block = true
			case 'a':
				o.all = true
			case 'u':
				o.down, o.force = false, false
			case 'd':
				o.down = true
			case 'D':
				o.down, o.force = true, true
			case 'p':
				o.prune = true
			case 'e':
				o.essential = 1
			case 'E':
				o.essential = 0
			default:
				return fatal(CodeUsage, "unknown option -%c\n%s", c, usage)
			}
		}
	}
	if len(args) == 0 {
		return fatal(CodeUsage, "no subcommand\n%s", usage)
	}
	sub, names := args[0], args[1:]
	switch sub {
	case "help":
		fmt.Fprintln(env.Stdout, usage)
		return CodeOK
	case "list", "listall", "diff", "change", "start", "stop":
	default:
		return fatal(CodeUsage, "unknown subcommand %q\n%s", sub, usage)
	}

	sys := env.Sys
	sys.Verbosity = o.verbosity
	lv, err := Open(o.live, env.ScanDir, sys)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fatal(CodeBadDB, "no live state in %s: this container's /init did not set one up", o.live)
		}
		return fatal(CodeBadDB, "invalid live state in %s: %v", o.live, err)
	}
	atoms, unknown := lv.DB.Resolve(names)
	if len(unknown) > 0 {
		return fatal(CodeUnknown, "unknown service name: %s", strings.Join(unknown, " "))
	}
	selection := func() []string {
		set := map[string]bool{}
		for _, a := range atoms {
			set[a] = true
		}
		if o.all {
			for _, a := range lv.Active() {
				set[a] = true
			}
		}
		return sortedKeys(set)
	}
	print := func(list []string) int {
		for _, n := range list {
			if o.essential == 1 && lv.DB.Services[n].Essential {
				continue
			}
			fmt.Fprintln(env.Stdout, n)
		}
		return CodeOK
	}

	switch sub {
	case "list":
		sel := selection()
		if o.down {
			var inv []string
			for _, n := range atomicNames(lv.DB) {
				if !slices.Contains(sel, n) {
					inv = append(inv, n)
				}
			}
			sel = inv
		}
		return print(sel)
	case "listall":
		return print(sortedKeys(lv.DB.Closure(selection(), !o.down)))
	case "diff":
		code := CodeOK
		ctx := context.Background()
		for _, n := range lv.DB.Longruns() {
			up, wanted, _, err := sys.svstat(ctx, lv.ServiceDir(n))
			if err != nil {
				continue
			}
			s6up := up || wanted
			switch active := lv.isActive(n); {
			case s6up && !active:
				fmt.Fprintln(env.Stdout, "+"+n)
				code = CodeFailed
			case !s6up && active:
				fmt.Fprintln(env.Stdout, "-"+n)
				code = CodeFailed
			}
		}
		return code
	}

	// change, start, stop
	co := ChangeOptions{Up: !o.down, Force: o.force, Prune: o.prune, Timeout: o.timeout}
	switch sub {
	case "start":
		co.Up, co.Force, co.Prune = true, false, false
	case "stop":
		co.Up, co.Prune = false, false
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	lockCtx := ctx
	if o.timeout > 0 {
		var cancel context.CancelFunc
		lockCtx, cancel = context.WithTimeout(ctx, o.timeout)
		defer cancel()
	}
	unlock, err := lv.Lock(lockCtx, o.block)
	if err != nil {
		return fatal(CodeSystem, "%v", err)
	}
	defer unlock()
	lv.Hooks = map[string]Hook{
		LegacyServices: {
			Up: func(ctx context.Context) error { return LegacyUp(ctx, sys, env.ScanDir, env.LegacyDir) },
			Down: func(ctx context.Context) error {
				return LegacyDown(ctx, sys, env.ScanDir, env.LegacyDir, 3*time.Second)
			},
		},
	}
	res := lv.Change(ctx, selection(), co)
	return res.Code
}

func atomicNames(db *DB) []string {
	out := slices.Clone(db.Order)
	slices.Sort(out)
	return out
}
