package slot

import (
	"cmp"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/s6gate/s6gate/pkg/config"
	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/marker"
	"github.com/s6gate/s6gate/pkg/profile"
	"github.com/s6gate/s6gate/pkg/safedir"
)

// Prefix starts the name of every slot.
const Prefix = "gateway-"

// notifyFD is the descriptor s6-supervise hands the gateway for its readiness notification.
const notifyFD = 3

// killTimeoutMS bounds how long s6-supervise waits after SIGTERM before SIGKILL (timeout-kill):
// a gateway drains within GATEWAY_DRAIN_TIMEOUT, so only a wedged one ever meets it.
const killTimeoutMS = 10000

// runMode is ./run's mode: executable, but not readable by other users, because it holds the
// profile's environment (which may carry secrets, like profile.json, which is 0600). The
// service user owns it, and the gateways' s6-supervise runs as the service user.
const runMode os.FileMode = 0o750

// Name is the slot name of a profile.
func Name(profileName string) string { return Prefix + profileName }

// profileOf returns the profile of a slot name, and whether the name is a valid slot name.
func profileOf(service string) (string, bool) {
	p, ok := strings.CutPrefix(service, Prefix)
	if !ok || profile.Validate(p) != nil {
		return service, false
	}
	return p, true
}

// Spec is everything a slot is rendered from.
type Spec struct {
	Profile    string
	Env        map[string]string // exported after HOME; names must be valid
	Command    []string          // the gateway's child command; empty = built-in idle gateway
	Down       bool              // write ./down: registered, not started
	Home       string            // data root (HOME and GATEWAY_HOME of the gateway)
	CommandDir string            // where with-contenv and the s6 tools are
	User       string            // service user for s6-setuidgid
	Bin        string            // the gateway binary
	// Supervision is how the command is supervised (profile.SupervisionWrapper or
	// profile.SupervisionExec), "" for the built-in idle gateway (no command).
	Supervision  string
	DrainTimeout time.Duration // exec supervision: s6's timeout-kill
	// UID is the profile's own uid (package profileuid), written to UIDFile for gw-svscan,
	// which starts the slot's supervisor with it as its real uid; 0 = none.
	UID int
	// Config is the profile.json the slot is rendered from (profile.Config.Canonical), which
	// the run script records (RecordPrefix) so that an edit not applied yet can be seen.
	Config string
}

// RecordPrefix starts the run script's line that records the profile.json the slot was
// rendered from, as one line of canonical JSON (profile.Config.Canonical). `gateway status`
// compares it with profile.json ("profile.json changed since the slot was rendered"), and
// `gateway update` prints the difference when it applies the file. It lives in ./run, the one
// file that holds what the profile decides, so that a slot and its record change in one
// rename.
const RecordPrefix = "# s6gate-profile: "

// UIDFile is the slot's file naming the profile's uid (one decimal number and a newline): as
// root, gw-svscan starts the slot's s6-supervise with it as the real uid (and gid) and the
// service user as the effective one, so that the supervisor, and the run and finish scripts,
// can signal the command that runs as that uid (docs/architecture.md, "Isolation").
const UIDFile = "s6gate-uid"

// shebang starts run and finish: -p keeps the shell from resetting its effective uid to the
// real one (dash and bash do that when they differ, as they do under gw-svscan's isolated
// supervisor: real uid the profile's, effective uid the service user's).
const shebang = "#!/bin/sh -p\n"

// NewSpec is the spec of a profile's slot under settings s, from its profile.json.
// The supervision mode is profile.json's "supervision", else GATEWAY_SUPERVISION, for a
// profile with a command; the idle gateway is always its own process.
func NewSpec(s config.Settings, name string, cfg profile.Config, down bool) Spec {
	spec := Spec{
		Profile: name, Env: cfg.Env, Command: cfg.Command, Down: down,
		Home: s.Home, CommandDir: s.CommandDir, User: s.User, Bin: s.Bin, DrainTimeout: s.DrainTimeout,
		Config: cfg.Canonical(),
	}
	if len(cfg.Command) > 0 {
		spec.Supervision = cmp.Or(cfg.Policy.Supervision, s.Supervision, profile.SupervisionWrapper)
	}
	return spec
}

// Exec reports whether the slot runs its command under exec supervision.
func (s Spec) Exec() bool { return s.Supervision == profile.SupervisionExec }

// Validate checks the names in spec; errors are usage errors.
func (s Spec) Validate() error {
	if err := profile.Validate(s.Profile); err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		if err := profile.ValidateEnvName(k); err != nil {
			return err
		}
	}
	return nil
}

// quote quotes s for a POSIX shell: single quotes, with each embedded ' written as '"'"'.
// Nothing inside can expand or end the word.
func quote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'"
}

// euidSnippet sets $euid to the effective uid of the shell running the script, read from
// /proc/self/status with builtins only: a gateway's start forks no id(1) (with 1,000 gateways
// started at once, every exec of a dynamically linked, localised program counts), and id(1)
// only when /proc cannot tell.
// (A failed redirection of a compound command ends a POSIX shell, hence the -r test.)
const euidSnippet = "euid=\n" +
	"if [ -r /proc/self/status ]; then\n" +
	"  while IFS=' \t' read -r k _ e _; do\n" +
	"    if [ \"$k\" = Uid: ]; then euid=$e; break; fi\n" +
	"  done < /proc/self/status\n" +
	"fi\n" +
	"[ -n \"$euid\" ] || euid=$(id -u)\n"

// ContenvMarker is the variable by which a supervision tree tells the slots under it that its
// environment is already the container's: the service that starts the gateways' s6-svscan
// exports it as "1" after with-contenv, and a slot's scripts that see it skip their own
// with-contenv (a Go process start per script). Without it, a script loads the container
// environment itself, once: it re-executes itself through with-contenv with the argument
// contenvDone, which keeps the second pass from doing it again (with-contenv with no
// container environment directory keeps the environment it was given, so the marker could not
// come from it). The run script removes the marker before it starts the gateway.
const ContenvMarker = "S6GATE_CONTENV"

// contenvDone is the argument a slot script passes to itself once the container environment
// is loaded (s6-supervise starts run and log/run without arguments).
const contenvDone = "contenv"

// contenvLine makes a script load the container environment unless its tree already did.
func contenvLine(s Spec) string {
	return fmt.Sprintf("[ \"$%s\" = 1 ] || [ \"$1\" = %s ] || exec %s \"$0\" %s\n",
		ContenvMarker, contenvDone, quote(filepath.Join(s.CommandDir, "with-contenv")), contenvDone)
}

// runScript is the slot's ./run. In the image it runs as the service user already (the
// gateways' s6-svscan is the service user's) and in the container environment (that
// s6-svscan's service loaded it: ContenvMarker). Started by root (a slot placed in a root-run
// scan directory), it first re-executes itself as the service user, so nothing that comes from
// the profile (its environment: PATH, LD_PRELOAD, …) ever reaches a process running as root.
// Then it execs `gateway run`, which sets HOME, the profile's environment and the gateway's own
// variables (--setenv, in env(1)'s order) in its own environment before anything else: the
// script exports only the carriers SetenvPrefix+NAME, so no name the validator accepts
// (OPTIND, IFS, PATH, …) can change how the script runs, and no value is on a command line.
func runScript(s Spec) string {
	var b strings.Builder
	b.WriteString(shebang)
	fmt.Fprintf(&b, "# %s: rendered by s6gate for profile %s and rebuilt at every boot.\n", Name(s.Profile), quote(s.Profile))
	b.WriteString("# Change profile.json and apply it with `gateway update`, not this file.\n")
	if s.Config != "" && !strings.ContainsAny(s.Config, "\n\r") {
		b.WriteString(RecordPrefix + s.Config + "\n")
	}
	b.WriteString("exec 2>&1\n")
	b.WriteString(contenvLine(s))
	b.WriteString(euidSnippet)
	b.WriteString("# Drop to the service user before anything from the profile is used.\n")
	fmt.Fprintf(&b, "if [ \"$euid\" = 0 ] && [ \"$(id -u %s)\" != 0 ]; then\n  exec %s %s \"$0\" %s\nfi\n",
		quote(s.User), quote(filepath.Join(s.CommandDir, "s6-setuidgid")), quote(s.User), contenvDone)
	fmt.Fprintf(&b, "unset %s\n", ContenvMarker)
	b.WriteString("# gateway run itself runs on one P; it gives the command back the GOMAXPROCS this had.\n")
	fmt.Fprintf(&b, "%s=${GOMAXPROCS--}\nGOMAXPROCS=1\nexport %[1]s GOMAXPROCS\n", GOMAXPROCSCarrier)
	for _, k := range slices.Sorted(maps.Keys(s.Env)) {
		fmt.Fprintf(&b, "export %s%s=%s\n", SetenvPrefix, k, quote(s.Env[k]))
	}
	fmt.Fprintf(&b, "exec %s run \\\n", quote(s.Bin))
	for _, a := range setenvArgs(s) {
		fmt.Fprintf(&b, "  --setenv %s \\\n", quote(a))
	}
	fmt.Fprintf(&b, "  -p %s --replace", quote(s.Profile))
	if len(s.Command) > 0 {
		b.WriteString(" --")
		for _, a := range s.Command {
			b.WriteString(" " + quote(a))
		}
	}
	b.WriteString("\n")
	return b.String()
}

// setenvArgs are run's --setenv arguments, in env(1)'s order: HOME, the profile's variables
// (sorted, by name only: their values travel in SetenvPrefix variables; they may override
// HOME), then GATEWAY_HOME and GATEWAY_NOTIFY_FD, which the gateway needs and the profile
// cannot change (the last --setenv of a name wins), and the slot's supervision mode.
// HOME is the data root, or, for a profile with a uid of its own, its command's own
// directory (profile.CommandHome), the one place of the data volume that command may write.
func setenvArgs(s Spec) []string {
	home := s.Home
	if s.UID > 0 {
		home = profile.CommandHome(s.Home, s.Profile)
	}
	args := []string{"HOME=" + home}
	args = append(args, slices.Sorted(maps.Keys(s.Env))...)
	args = append(args, "GATEWAY_HOME="+s.Home, fmt.Sprintf("GATEWAY_NOTIFY_FD=%d", notifyFD))
	// The slot's mode, which its finish and timeout-kill were rendered for; it overrides the
	// image default, also for the idle gateway's slot (wrapper), so a command added to
	// profile.json later runs under the finish this slot has until the slot is rendered again.
	args = append(args, "GATEWAY_SUPERVISION="+cmp.Or(s.Supervision, profile.SupervisionWrapper))
	return args
}

// logRunScript is the slot's ./log/run. The log directory is computed from $GATEWAY_HOME when
// it runs, never baked in, so a data root mounted elsewhere still gets its logs. s6-log's T is
// not sticky: given before `1` and again before the directory, both copies of a line carry its
// time once (the gateway's own lines carry none: gatewayrun.NewLogger).
func logRunScript(s Spec) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	fmt.Fprintf(&b, "# Logger of %s, rendered by s6gate. `T 1` copies every line, with its time, to stdout\n", Name(s.Profile))
	b.WriteString("# (docker logs, where gw-svscan prefixes it with the profile); `T DIR` keeps it in the log directory.\n")
	b.WriteString(contenvLine(s))
	b.WriteString(": \"${GATEWAY_HOME:=/opt/data}\"\n")
	// A validated profile name holds no character a double-quoted string would expand.
	fmt.Fprintf(&b, "dir=\"$GATEWAY_HOME/%s\"\n", profile.LogRel(s.Profile))
	b.WriteString("set --\n")
	b.WriteString(euidSnippet)
	fmt.Fprintf(&b, "if [ \"$euid\" = 0 ]; then\n  set -- %s %s\nfi\n", quote(filepath.Join(s.CommandDir, "s6-setuidgid")), quote(s.User))
	b.WriteString("[ -d \"$dir\" ] || \"$@\" mkdir -p -- \"$dir\" || exit 111\n")
	fmt.Fprintf(&b, "exec \"$@\" %s T 1 n10 s1000000 T \"$dir\"\n", quote(filepath.Join(s.CommandDir, "s6-log")))
	return b.String()
}

// finishScript is the slot's ./finish: the gateway's exit code 78 (exitcode.FatalConfig) and
// 125 (exitcode.GaveUp, a crash loop marked failed) become 125, which tells s6-supervise not
// to restart it until an operator starts it again.
//
// Under exec supervision the process that ended was (usually) the command itself, so finish
// classifies its end as `gateway run` would have: a death by SIGTERM or SIGINT with no
// planned-stop marker in the home is a container or supervisor stop, and the state stays
// running — decided by the shell alone, so a `docker stop` of many gateways starts no Go
// process per gateway. Everything else (a marker to evaluate, an exit on its own, a crash)
// goes to `gateway finish`, which persists the decision and exits 125 when s6 must keep the
// slot down.
func finishScript(s Spec) string {
	if s.Exec() {
		var b strings.Builder
		fmt.Fprintf(&b, shebang+"# %s (exec supervision): how the command ended, as s6-supervise reports it (exit code or 256, signal).\n", Name(s.Profile))
		fmt.Fprintf(&b, "case \"$1:$2\" in\n256:15|256:2) [ -e %s ] || exit 0 ;;\nesac\n",
			quote(filepath.Join(s.Home, profile.HomeRel(s.Profile), marker.FileName)))
		fmt.Fprintf(&b, "GATEWAY_HOME=%s\nexport GATEWAY_HOME\nexec %s finish -p %s -- \"$@\"\n", quote(s.Home), quote(s.Bin), quote(s.Profile))
		return b.String()
	}
	return fmt.Sprintf(shebang+"# %s: a gateway that exits %d (fatal configuration) or %d (failed: crash loop) stays down.\n"+
		"case \"$1\" in %d|%d) exit 125 ;; esac\nexit 0\n", Name(s.Profile), exitcode.FatalConfig, exitcode.GaveUp, exitcode.FatalConfig, exitcode.GaveUp)
}

// execKillMarginMS is what an exec slot's timeout-kill adds to GATEWAY_DRAIN_TIMEOUT: a profile
// with a readiness check runs under the wrapper in an exec slot, drains for
// GATEWAY_DRAIN_TIMEOUT itself and then records its decision, which s6's SIGKILL must not cut
// short.
const execKillMarginMS = 1000

// killTimeout is the slot's timeout-kill in ms: under exec supervision s6 itself bounds the
// command's drain (GATEWAY_DRAIN_TIMEOUT plus execKillMarginMS), otherwise the gateway does
// and killTimeoutMS only meets a wedged one.
func killTimeout(s Spec) int64 {
	if s.Exec() {
		return s.DrainTimeout.Milliseconds() + execKillMarginMS
	}
	return killTimeoutMS
}

// Render writes the slot for spec into dir, which must exist and be empty (normally a fresh
// staging directory). Everything is created relative to a descriptor of dir — never by a path
// someone could swap for a symlink — with exact modes.
func Render(dir string, s Spec) error {
	if err := s.Validate(); err != nil {
		return err
	}
	// The last component is opened without following a symlink.
	d, err := safedir.Open(filepath.Dir(dir), filepath.Base(dir))
	if err != nil {
		return err
	}
	defer d.Close()
	return render(d, s, nil)
}

// render writes the slot into d; with a template, the files every slot of a run has alike
// (type, notification-fd, timeout-kill, down) are links to its copies.
func render(d *safedir.Dir, s Spec, t *Template) error {
	files := []struct {
		name, content string
		mode          os.FileMode
		shared        bool // the same in every slot with this setting: a link when t is set
	}{
		{"type", "longrun\n", 0o644, true},
		{"notification-fd", fmt.Sprintf("%d\n", notifyFD), 0o644, true},
		{"timeout-kill", fmt.Sprintf("%d\n", killTimeout(s)), 0o644, true},
		{"run", runScript(s), runMode, false},
		{"finish", finishScript(s), 0o755, false},
	}
	if s.Down {
		files = append(files, struct {
			name, content string
			mode          os.FileMode
			shared        bool
		}{"down", "", 0o644, true})
	}
	if s.UID > 0 {
		files = append(files, struct {
			name, content string
			mode          os.FileMode
			shared        bool
		}{UIDFile, strconv.Itoa(s.UID) + "\n", 0o644, false})
	}
	for _, f := range files {
		var err error
		if f.shared && t != nil {
			err = t.link(d, f.name, f.content, f.mode)
		} else {
			err = d.Create(f.name, []byte(f.content), f.mode)
		}
		if err != nil {
			return err
		}
	}
	logDir, err := d.Mkdir("log", 0o755)
	if err != nil {
		return err
	}
	defer logDir.Close()
	return logDir.Create("run", []byte(logRunScript(s)), 0o755)
}
