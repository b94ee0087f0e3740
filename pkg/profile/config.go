package profile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/s6gate/s6gate/pkg/exitcode"
	"github.com/s6gate/s6gate/pkg/safedir"
)

// ConfigFile is the optional per-profile configuration in the profile's home.
const ConfigFile = "profile.json"

// MaxConfigSize caps profile.json reads.
const MaxConfigSize = 1 << 20

// Compiled on first use: package initialisation runs in every process of the multi-call
// binary (cmd/s6gate), with-contenv included.
var envNameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`) })

// EnvNameError reports an environment variable name that cannot be exported safely.
type EnvNameError struct{ Name string }

func (e *EnvNameError) Error() string {
	return fmt.Sprintf("invalid environment variable name %q: must match ^[A-Za-z_][A-Za-z0-9_]*$", e.Name)
}

// ExitCode marks a bad variable name as bad usage.
func (e *EnvNameError) ExitCode() int { return exitcode.Usage }

// ValidateEnvName returns an *EnvNameError unless name is a portable shell variable name.
func ValidateEnvName(name string) error {
	if !envNameRE().MatchString(name) {
		return &EnvNameError{Name: name}
	}
	return nil
}

// ReservedEnvError reports a variable name a profile may not set: the slot sets it itself
// (the profile's value would be silently overridden) or s6gate uses it to pass its own values.
type ReservedEnvError struct{ Name string }

func (e *ReservedEnvError) Error() string {
	return fmt.Sprintf("environment variable %q is reserved: %s", e.Name, reservedWhy(e.Name))
}

// ExitCode marks a reserved name as bad usage.
func (e *ReservedEnvError) ExitCode() int { return exitcode.Usage }

// reservedEnv are the names a slot's run script sets for `gateway run` after the profile's
// own variables (pkg/slot, setenvArgs), so a profile's value for them never takes effect.
var reservedEnv = []string{"GATEWAY_HOME", "GATEWAY_NOTIFY_FD", "GATEWAY_SUPERVISION"}

// ReservedEnvPrefix is s6gate's own namespace: S6GATE_CONTENV, S6GATE_SETENV_* (the carriers
// of the profile's values), S6GATE_KEEPENV_* (gw-svscan's carriers), S6GATE_GOMAXPROCS.
const ReservedEnvPrefix = "S6GATE_"

func reservedWhy(name string) string {
	if strings.HasPrefix(name, ReservedEnvPrefix) {
		return "the " + ReservedEnvPrefix + "* names carry s6gate's own values between its processes"
	}
	return "the slot sets it for the gateway itself"
}

// ValidateProfileEnvName is ValidateEnvName for a variable an operator gives a profile
// (register --env, gw-render --env): a reserved name is a *ReservedEnvError.
func ValidateProfileEnvName(name string) error {
	if err := ValidateEnvName(name); err != nil {
		return err
	}
	if strings.HasPrefix(name, ReservedEnvPrefix) || slices.Contains(reservedEnv, name) {
		return &ReservedEnvError{Name: name}
	}
	return nil
}

// Config is profile.json: {"command": [argv...], "env": {"K": "V"}} plus the start and restart
// policy (Policy). Keys it does not know are kept and written back unchanged.
type Config struct {
	Command []string
	Env     map[string]string
	Policy  Policy
	rest    map[string]json.RawMessage
}

// ParseConfig decodes profile.json. An empty document (or one holding only whitespace) is an
// empty configuration; anything else must be a JSON object with a string-array "command" and a
// string-to-string "env" whose names are valid.
func ParseConfig(b []byte) (Config, error) {
	var c Config
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	if len(bytes.TrimSpace(b)) == 0 {
		return c, nil
	}
	if err := json.Unmarshal(b, &c.rest); err != nil {
		return Config{}, fmt.Errorf("%s: %w", ConfigFile, err)
	}
	if c.rest == nil {
		return Config{}, fmt.Errorf("%s: not a JSON object", ConfigFile)
	}
	if raw, ok := c.rest["command"]; ok {
		if err := json.Unmarshal(raw, &c.Command); err != nil {
			return Config{}, fmt.Errorf("%s: \"command\" must be an array of strings: %w", ConfigFile, err)
		}
		delete(c.rest, "command")
	}
	if raw, ok := c.rest["env"]; ok {
		if err := json.Unmarshal(raw, &c.Env); err != nil {
			return Config{}, fmt.Errorf("%s: \"env\" must be an object of strings: %w", ConfigFile, err)
		}
		delete(c.rest, "env")
	}
	for _, k := range slices.Sorted(maps.Keys(c.Env)) {
		if err := ValidateEnvName(k); err != nil {
			return Config{}, fmt.Errorf("%s: %w", ConfigFile, err)
		}
	}
	if err := c.Policy.parse(c.rest); err != nil {
		return Config{}, fmt.Errorf("%s: %w", ConfigFile, err)
	}
	return c, nil
}

// Marshal encodes the configuration, keeping unknown keys.
func (c Config) Marshal() ([]byte, error) {
	b, err := json.MarshalIndent(c.fields(), "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// fields is the configuration as the JSON object Marshal writes.
func (c Config) fields() map[string]any {
	out := make(map[string]any, len(c.rest)+2)
	for k, v := range c.rest {
		out[k] = v
	}
	if len(c.Command) > 0 {
		out["command"] = c.Command
	}
	if len(c.Env) > 0 {
		out["env"] = c.Env
	}
	c.Policy.marshal(out)
	return out
}

// Canonical is the configuration as one line of JSON with sorted keys and no insignificant
// space: two configurations that mean the same have the same Canonical, whatever the layout
// of the files they were read from. A slot records the Canonical of the configuration it was
// rendered from (package slot), so that an edit of profile.json that is not applied yet can be
// told from one that is by comparing two short strings. It never holds a newline.
func (c Config) Canonical() string {
	b, err := json.Marshal(c.fields())
	if err != nil {
		return "" // only unknown keys' raw JSON could fail, and ParseConfig checked it
	}
	return string(b)
}

// Change is one difference between two configurations, for `gateway update` to print.
type Change struct {
	Field    string // "command", "env NAME", or a top-level key ("settle", …)
	Old, New string // JSON values; "" when absent. Env values are never shown: see Diff.
}

// String is "field: old → new", with "(none)" for an absent value.
func (c Change) String() string {
	none := func(s string) string {
		if s == "" {
			return "(none)"
		}
		return s
	}
	return fmt.Sprintf("%s: %s → %s", c.Field, none(c.Old), none(c.New))
}

// Diff lists what differs from old to new, field by field in key order; the environment
// variable by variable. An environment value is often a secret, so a changed variable is
// reported as "(set)" → "(changed)" and an added or removed one as "(set)" — never its
// value, which would end up in terminals and CI logs.
func Diff(old, new Config) []Change {
	o, n := encodeFields(old.fields()), encodeFields(new.fields())
	keys := make(map[string]bool, len(o)+len(n))
	for k := range o {
		keys[k] = true
	}
	for k := range n {
		keys[k] = true
	}
	var out []Change
	for _, k := range slices.Sorted(maps.Keys(keys)) {
		if k == "env" {
			out = append(out, diffEnv(old.Env, new.Env)...)
			continue
		}
		if o[k] != n[k] {
			out = append(out, Change{Field: k, Old: o[k], New: n[k]})
		}
	}
	return out
}

func diffEnv(old, new map[string]string) []Change {
	names := make(map[string]bool, len(old)+len(new))
	for k := range old {
		names[k] = true
	}
	for k := range new {
		names[k] = true
	}
	var out []Change
	for _, k := range slices.Sorted(maps.Keys(names)) {
		ov, inOld := old[k]
		nv, inNew := new[k]
		switch {
		case inOld && !inNew:
			out = append(out, Change{Field: "env " + k, Old: "(set)"})
		case !inOld && inNew:
			out = append(out, Change{Field: "env " + k, New: "(set)"})
		case ov != nv:
			out = append(out, Change{Field: "env " + k, Old: "(set)", New: "(changed)"})
		}
	}
	return out
}

// encodeFields encodes each value of m as compact JSON.
func encodeFields(m map[string]any) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		b, err := json.Marshal(v)
		if err == nil {
			out[k] = string(b)
		}
	}
	return out
}

// ParseEnv parses NAME=VALUE arguments (--env) into a map, validating the names and refusing
// reserved ones (ValidateProfileEnvName). Errors are usage errors naming the argument.
func ParseEnv(pairs []string) (map[string]string, error) {
	env := map[string]string{}
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return nil, exitcode.Usagef("--env %q: want NAME=VALUE", p)
		}
		if err := ValidateProfileEnvName(k); err != nil {
			return nil, err
		}
		env[k] = v
	}
	return env, nil
}

// Merge returns c with env added to its environment (env wins) and, when command is not
// empty, command as its command: what `register --env … -- cmd` and gw-render make of a
// profile.json. c itself is not changed.
func (c Config) Merge(env map[string]string, command []string) Config {
	out := c
	if len(env) > 0 {
		out.Env = make(map[string]string, len(c.Env)+len(env))
		maps.Copy(out.Env, c.Env)
		maps.Copy(out.Env, env)
	}
	if len(command) > 0 {
		out.Command = slices.Clone(command)
	}
	return out
}

// LoadConfig reads the profile.json of profile name in the data root. A profile without a home
// (or without the file) has an empty configuration.
func LoadConfig(root, name string) (Config, error) {
	home, err := safedir.Open(root, HomeRel(name))
	if errors.Is(err, fs.ErrNotExist) {
		return Config{}, nil
	}
	if err != nil {
		return Config{}, err
	}
	defer home.Close()
	return ReadConfig(home)
}

// ReadConfig reads profile.json from an opened home. A missing file is an empty Config.
func ReadConfig(home *safedir.Dir) (Config, error) {
	b, err := home.ReadFile(ConfigFile, MaxConfigSize)
	if errors.Is(err, fs.ErrNotExist) {
		return Config{}, nil
	}
	if err != nil {
		return Config{}, err
	}
	c, err := ParseConfig(b)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", home.Path(), err)
	}
	return c, nil
}
