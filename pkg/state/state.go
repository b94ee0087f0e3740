// Package state reads and writes gateway_state.json, the per-profile record of what a gateway
// is doing (gateway_state, written by the gateway) and what the operator wants
// (desired_state, written by the verbs) — SPEC §3.
//
// Guarantees:
//   - Writes are atomic and durable (safedir.WriteFile: renameio temp file, fsync, rename,
//     fsync of the directory) and never go through a symlink.
//   - Update is a read-modify-write under an flock on the profile home, so the gateway and an
//     operator verb writing at the same moment never lose each other's fields.
//   - Keys this package does not own are preserved (same JSON values) on every write.
//   - Read never fails a caller that only wants "the prior state": a missing, empty, BOM-led,
//     invalid or non-object file reads as the zero State, with an error the caller can log
//     (errors.Is(err, ErrCorrupt) for the damaged cases, nil when the file is just absent).
package state

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/s6gate/s6gate/pkg/safedir"
)

// FileName is the state file in every profile home.
const FileName = "gateway_state.json"

// MaxSize caps reads: a state file is a few hundred bytes.
const MaxSize = 1 << 20

// Mode of the state file: the owner (service user) writes, its group may read.
const Mode os.FileMode = 0o640

// Values of gateway_state (written by the gateway) and desired_state (written by the verbs).
const (
	Starting      = "starting"
	Running       = "running"
	Draining      = "draining"
	Degraded      = "degraded"
	Stopped       = "stopped"
	StartupFailed = "startup_failed"
	// Failed: the command failed MaxFailures times in a row; s6 no longer restarts it until an
	// operator starts it. The intent stays running, so the next boot tries again.
	Failed = "failed"
)

// ErrCorrupt marks a state file that exists but cannot be used.
var ErrCorrupt = errors.New("unusable state file")

// State is the toolkit-owned part of gateway_state.json. Empty fields are omitted on write.
type State struct {
	GatewayState string  `json:"gateway_state,omitempty"`
	DesiredState string  `json:"desired_state,omitempty"`
	PID          int     `json:"pid,omitempty"`
	StartTime    *uint64 `json:"start_time,omitempty"`
	ExitReason   string  `json:"exit_reason,omitempty"`
	UpdatedAt    string  `json:"updated_at,omitempty"`

	// The crash-loop record, written by the gateway. It is about one boot of the container
	// (BootID); a gateway that finds another boot's record starts it afresh.
	BootID              string `json:"boot_id,omitempty"`
	CommandStartedAt    string `json:"command_started_at,omitempty"`   // RFC 3339 (ns), while the command runs
	SettleUntil         string `json:"settle_until,omitempty"`         // RFC 3339 (ns), exec supervision: the command counts as started once it has run until then
	Restarts            int    `json:"restarts,omitempty"`             // starts of the command after the first, this boot
	ConsecutiveFailures int    `json:"consecutive_failures,omitempty"` // exits on its own in a row, not yet cleared by a stable run or an operator start
	LastExit            *Exit  `json:"last_exit,omitempty"`
	BackoffUntil        string `json:"backoff_until,omitempty"` // RFC 3339 (ns): the next start waits until then
	DownSince           string `json:"down_since,omitempty"`    // RFC 3339 (ns): first failure of the current run of failures; cleared once ready
	FailedReason        string `json:"failed_reason,omitempty"` // set with gateway_state=failed
}

// Exit is how the profile's command last ended.
type Exit struct {
	Code    *int    `json:"code,omitempty"`   // its exit status, when it exited
	Signal  string  `json:"signal,omitempty"` // the signal that killed it ("SIGKILL"), when killed
	At      string  `json:"at"`               // RFC 3339 (ns) UTC
	Uptime  float64 `json:"uptime_seconds"`   // how long it had run
	Failure bool    `json:"failure"`          // it ended on its own (not stopped by its gateway)
}

// String is "exited with status N" or "killed by SIGNAL".
func (e Exit) String() string {
	if e.Signal != "" {
		return "killed by " + e.Signal
	}
	if e.Code != nil {
		return fmt.Sprintf("exited with status %d", *e.Code)
	}
	return "ended"
}

// TimeFormat is the format of the state's nanosecond timestamps.
const TimeFormat = time.RFC3339Nano

// ParseTime parses a TimeFormat (or RFC 3339) timestamp; "" or garbage is the zero time.
func ParseTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

// owned lists the keys State writes; Update replaces exactly these.
var owned = []string{"gateway_state", "desired_state", "pid", "start_time", "exit_reason", "updated_at",
	"boot_id", "command_started_at", "settle_until", "restarts", "consecutive_failures", "last_exit", "backoff_until", "failed_reason", "down_since"}

// Intent is the run intent the boot reconciler acts on (SPEC §9.3): desired_state when set,
// else gateway_state, where draining and degraded count as running. So does starting: a
// gateway killed (SIGKILL, OOM) between "starting" and "running" was meant to run; and so does
// failed: a crash loop is not an operator's stop, so the next boot tries again. It returns the value it
// based the decision on ("" when there is none) and whether the gateway should autostart.
func (s State) Intent() (source string, autostart bool) {
	switch s.DesiredState {
	case Running:
		return s.DesiredState, true
	case Stopped:
		return s.DesiredState, false
	}
	switch s.GatewayState {
	case Running, Draining, Degraded, Starting, Failed:
		return s.GatewayState, true
	}
	return s.GatewayState, false
}

// Parse decodes a state document. It returns ErrCorrupt (wrapped, with the reason) for an
// empty document, invalid JSON or a non-object, after skipping a UTF-8 BOM.
func Parse(b []byte) (State, map[string]json.RawMessage, error) {
	return parse(b, true)
}

// Keys of the fields State owns, as indexes into the values a parse collects.
const (
	kGatewayState = iota
	kDesiredState
	kPID
	kStartTime
	kExitReason
	kUpdatedAt
	kBootID
	kCommandStartedAt
	kSettleUntil
	kRestarts
	kConsecutiveFailures
	kLastExit
	kBackoffUntil
	kFailedReason
	kDownSince
	nKeys
)

// keyIndex is the index of an owned key, or -1.
func keyIndex(k string) int {
	switch k {
	case "gateway_state":
		return kGatewayState
	case "desired_state":
		return kDesiredState
	case "pid":
		return kPID
	case "start_time":
		return kStartTime
	case "exit_reason":
		return kExitReason
	case "updated_at":
		return kUpdatedAt
	case "boot_id":
		return kBootID
	case "command_started_at":
		return kCommandStartedAt
	case "settle_until":
		return kSettleUntil
	case "restarts":
		return kRestarts
	case "consecutive_failures":
		return kConsecutiveFailures
	case "last_exit":
		return kLastExit
	case "backoff_until":
		return kBackoffUntil
	case "failed_reason":
		return kFailedReason
	case "down_since":
		return kDownSince
	}
	return -1
}

// parse is Parse; without wantRaw it returns no map (Read's callers need only the State).
//
// A valid object whose keys are plain ASCII (every state file the toolkit writes) is split
// into its members by splitObject instead of json.Unmarshal into a map: the same members, the
// last of a repeated key winning as in the map, then the same field decoding.
// TestParseMatchesReference and FuzzParseMatchesReference hold it to the previous decoder.
func parse(b []byte, wantRaw bool) (State, map[string]json.RawMessage, error) {
	b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
	if len(bytes.TrimSpace(b)) == 0 {
		return State{}, nil, fmt.Errorf("%w: empty", ErrCorrupt)
	}
	var vals [nKeys]json.RawMessage
	var raw map[string]json.RawMessage
	if wantRaw {
		b = bytes.Clone(b) // the map's values share it, as json.Unmarshal's copies would not
	}
	ok := json.Valid(b) && splitObject(b, func(k string, v []byte) {
		if i := keyIndex(k); i >= 0 {
			vals[i] = v
		}
		if wantRaw {
			if raw == nil {
				raw = map[string]json.RawMessage{}
			}
			raw[k] = v
		}
	})
	if !ok {
		vals, raw = [nKeys]json.RawMessage{}, nil
		if err := json.Unmarshal(b, &raw); err != nil {
			return State{}, nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
		}
		if raw == nil {
			return State{}, nil, fmt.Errorf("%w: not a JSON object", ErrCorrupt)
		}
		for k, v := range raw {
			if i := keyIndex(k); i >= 0 {
				vals[i] = v
			}
		}
	} else if wantRaw && raw == nil {
		raw = map[string]json.RawMessage{}
	}
	var s State
	// Field by field, so one mistyped field does not hide the others. Keys match exactly.
	for i, v := range vals {
		if v == nil {
			continue
		}
		switch i {
		case kGatewayState:
			decodeString(v, &s.GatewayState)
		case kDesiredState:
			decodeString(v, &s.DesiredState)
		case kPID:
			decodeInt(v, &s.PID)
		case kStartTime:
			if u, ok := plainUint(v); ok {
				s.StartTime = &u
			} else {
				_ = json.Unmarshal(v, &s.StartTime)
			}
		case kExitReason:
			decodeString(v, &s.ExitReason)
		case kUpdatedAt:
			decodeString(v, &s.UpdatedAt)
		case kBootID:
			decodeString(v, &s.BootID)
		case kCommandStartedAt:
			decodeString(v, &s.CommandStartedAt)
		case kSettleUntil:
			decodeString(v, &s.SettleUntil)
		case kRestarts:
			decodeInt(v, &s.Restarts)
		case kConsecutiveFailures:
			decodeInt(v, &s.ConsecutiveFailures)
		case kLastExit:
			_ = json.Unmarshal(v, &s.LastExit)
		case kBackoffUntil:
			decodeString(v, &s.BackoffUntil)
		case kFailedReason:
			decodeString(v, &s.FailedReason)
		case kDownSince:
			decodeString(v, &s.DownSince)
		}
	}
	return s, raw, nil
}

// splitObject calls member with each key and raw value of b, a valid JSON document (the caller
// checked), in order. It reports false, having stopped, when b is not an object or a key is
// not plain ASCII without escapes (json.Unmarshal then decodes it: such a key is unescaped and
// its invalid UTF-8 replaced, which this does not do).
func splitObject(b []byte, member func(k string, v []byte)) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return true
	}
	for i < len(b) {
		if b[i] != '"' {
			return false
		}
		end := stringEnd(b, i)
		key := b[i+1 : end-1]
		for _, c := range key {
			if c == '\\' || c >= utf8.RuneSelf {
				return false
			}
		}
		i = skipSpace(b, end)
		if i >= len(b) || b[i] != ':' {
			return false
		}
		i = skipSpace(b, i+1)
		vend := valueEnd(b, i)
		member(string(key), b[i:vend:vend])
		i = skipSpace(b, vend)
		if i >= len(b) {
			return false
		}
		if b[i] == '}' {
			return true
		}
		if b[i] != ',' {
			return false
		}
		i = skipSpace(b, i+1)
	}
	return false
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// stringEnd is the index just past the string that starts at b[i] (a '"').
func stringEnd(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// valueEnd is the index just past the value that starts at b[i]: a string, an object or an
// array (nested to any depth), or a literal or number.
func valueEnd(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return stringEnd(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = stringEnd(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(b) {
		switch b[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// decodeString is json.Unmarshal(v, dst) (errors ignored), without reflection for the usual
// value, a JSON string with no escape and valid UTF-8, which is exactly its bytes. Every
// other value goes through json.Unmarshal. (`gateway status` parses one state file per
// gateway.)
func decodeString(v json.RawMessage, dst *string) {
	if n := len(v); n >= 2 && v[0] == '"' && v[n-1] == '"' {
		if in := v[1 : n-1]; bytes.IndexByte(in, '\\') < 0 && bytes.IndexByte(in, '"') < 0 && utf8.Valid(in) {
			*dst = string(in)
			return
		}
	}
	_ = json.Unmarshal(v, dst)
}

// decodeInt is json.Unmarshal(v, dst) (errors ignored), with a fast path for a plain decimal
// integer.
func decodeInt(v json.RawMessage, dst *int) {
	if isPlainInt(v) {
		if n, err := strconv.Atoi(string(v)); err == nil {
			*dst = n
			return
		}
	}
	_ = json.Unmarshal(v, dst)
}

// plainUint parses v when it is a plain decimal unsigned integer that fits.
func plainUint(v json.RawMessage) (uint64, bool) {
	if !isPlainInt(v) || v[0] == '-' {
		return 0, false
	}
	u, err := strconv.ParseUint(string(v), 10, 64)
	return u, err == nil
}

// isPlainInt reports whether v is -?[0-9]+ (JSON forbids leading zeros already).
func isPlainInt(v []byte) bool {
	if len(v) > 0 && v[0] == '-' {
		v = v[1:]
	}
	if len(v) == 0 {
		return false
	}
	for _, c := range v {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Read reads the state in home. A missing file is (State{}, nil); every other problem yields
// the zero State and an error naming the path.
func Read(home *safedir.Dir) (State, error) {
	s, _, err := read(home, false)
	return s, err
}

// ReadBeneath is Read of the home rel inside dir (profiles/ and a profile's name), read with
// one openat2 (safedir.Dir.ReadFileBeneath: no symlink anywhere, nothing outside dir) instead
// of opening the home first. ok is false when it could not read the file that way — it is
// missing, refused, or openat2 is not there — and says nothing more: the caller then opens the
// home and calls Read, which tells why. When ok, it returns what Read would.
func ReadBeneath(dir *safedir.Dir, rel string) (s State, ok bool, err error) {
	b, rerr := dir.ReadFileBeneath(rel+"/"+FileName, MaxSize)
	if rerr != nil {
		return State{}, false, nil
	}
	s, _, err = parse(b, false)
	if err != nil {
		return State{}, true, fmt.Errorf("%s: %w", dir.Join(rel+"/"+FileName), err)
	}
	return s, true, nil
}

// read reads the state in home, and the document's members when wantRaw is set.
func read(home *safedir.Dir, wantRaw bool) (State, map[string]json.RawMessage, error) {
	b, err := home.ReadFile(FileName, MaxSize)
	if errors.Is(err, fs.ErrNotExist) {
		return State{}, nil, nil
	}
	if err != nil {
		return State{}, nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	s, raw, err := parse(b, wantRaw)
	if err != nil {
		return State{}, nil, fmt.Errorf("%s: %w", home.Join(FileName), err)
	}
	return s, raw, nil
}

// Update applies change to the state in home and writes it back atomically, stamping
// updated_at. A damaged file is replaced (its unknown keys cannot be recovered); the returned
// warning says so, and the write still happens.
func Update(home *safedir.Dir, now time.Time, change func(*State)) (warning error, err error) {
	unlock, err := home.Lock()
	if err != nil {
		return nil, fmt.Errorf("update %s: %w", home.Join(FileName), err)
	}
	defer unlock()
	s, raw, warning := read(home, true)
	out, err := encode(s, raw, now, change)
	if err != nil {
		return warning, err
	}
	if err := home.WriteFile(FileName, out, Mode); err != nil {
		return warning, fmt.Errorf("update state: %w", err)
	}
	return warning, nil
}

// SweepTemps removes the temp files a writer of the state killed between their creation and
// their rename left in home (safedir.IsTempName of FileName). Every write of the state is
// Update's, under the home's lock, which SweepTemps takes too: no temp file it sees belongs
// to a write still under way.
func SweepTemps(home *safedir.Dir) error {
	unlock, err := home.Lock()
	if err != nil {
		return err
	}
	defer unlock()
	entries, err := home.ReadDir()
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.Type().IsRegular() && safedir.IsTempName(e.Name(), FileName) {
			if err := home.Remove(e.Name()); err != nil {
				return err
			}
		}
	}
	return nil
}

// encode applies change to s, stamps updated_at and returns the document: raw's members with
// the ones State owns replaced, as indented JSON with a final newline.
func encode(s State, raw map[string]json.RawMessage, now time.Time, change func(*State)) ([]byte, error) {
	if raw == nil {
		raw = map[string]json.RawMessage{}
	}
	change(&s)
	s.UpdatedAt = now.UTC().Format(time.RFC3339)
	for _, k := range owned {
		delete(raw, k)
	}
	mine, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	var mineMap map[string]json.RawMessage
	if err := json.Unmarshal(mine, &mineMap); err != nil {
		return nil, err
	}
	for k, v := range mineMap {
		raw[k] = v
	}
	out, err := json.MarshalIndent(raw, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}
