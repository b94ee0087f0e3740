package operator

import (
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/s6gate/s6gate/pkg/state"
)

// AppendStatusJSON appends sts as `gateway status --json` prints them: byte for byte what
// encoding/json's Encoder writes for them with SetIndent("", "  ") (HTML characters escaped,
// a newline at the end) — the same field names in the same order, the same values and the same
// string escapes — without reflection and without the indenting second pass. The output is a
// documented, stable API (docs/operations.md, "Status fields"); TestStatusJSONMatchesEncoder
// and FuzzStatusJSON compare it with encoding/json's.
//
// It returns b unchanged and false for what encoding/json refuses (a NaN or infinite uptime, a
// time it cannot write as RFC 3339): the caller then encodes with encoding/json, which reports
// the error.
func AppendStatusJSON(b []byte, sts []GatewayStatus) ([]byte, bool) {
	if sts == nil {
		return append(b, "null\n"...), true
	}
	if len(sts) == 0 {
		return append(b, "[]\n"...), true
	}
	start := len(b)
	b = append(b, '[')
	for i := range sts {
		if i > 0 {
			b = append(b, ',')
		}
		var ok bool
		if b, ok = appendStatus(append(b, "\n  "...), &sts[i]); !ok {
			return b[:start], false
		}
	}
	return append(b, "\n]\n"...), true
}

// Indentation of the fields of one status (level 2) and of its last_exit (level 3).
const (
	field     = "\n    \""
	exitField = "\n      \""
)

func appendStatus(b []byte, g *GatewayStatus) ([]byte, bool) {
	var ok bool
	b = append(b, '{')
	b = appendString(append(b, field[:len(field)-1]+`"profile": `...), g.Profile)
	b = appendString(append(b, ","+field+`slot": `...), g.Slot)
	b = strconv.AppendBool(append(b, ","+field+`supervised": `...), g.Supervised)
	b = strconv.AppendBool(append(b, ","+field+`up": `...), g.Up)
	b = appendIntPtr(append(b, ","+field+`pid": `...), g.PID)
	b = strconv.AppendBool(append(b, ","+field+`ready": `...), g.Ready)
	b = strconv.AppendBool(append(b, ","+field+`want_up": `...), g.WantUp)
	b = strconv.AppendBool(append(b, ","+field+`normally_up": `...), g.NormallyUp)
	if g.Since != nil {
		if b, ok = appendTime(append(b, ","+field+`since": `...), *g.Since); !ok {
			return b, false
		}
	}
	if g.ExitCode != nil {
		b = strconv.AppendInt(append(b, ","+field+`last_exit_code": `...), int64(*g.ExitCode), 10)
	}
	if g.Signal != nil {
		b = strconv.AppendInt(append(b, ","+field+`last_signal": `...), int64(*g.Signal), 10)
	}
	b = appendStringPtr(append(b, ","+field+`gateway_state": `...), g.GatewayState)
	b = appendStringPtr(append(b, ","+field+`desired_state": `...), g.DesiredState)
	if g.ExitReason != "" {
		b = appendString(append(b, ","+field+`exit_reason": `...), g.ExitReason)
	}
	if g.StateUpdated != "" {
		b = appendString(append(b, ","+field+`state_updated_at": `...), g.StateUpdated)
	}
	if g.Problem != "" {
		b = appendString(append(b, ","+field+`problem": `...), g.Problem)
	}
	b = append(b, ","+field+`uptime_seconds": `...)
	if g.Uptime == nil {
		b = append(b, "null"...)
	} else if b, ok = appendFloat(b, *g.Uptime); !ok {
		return b, false
	}
	b = strconv.AppendInt(append(b, ","+field+`restarts": `...), int64(g.Restarts), 10)
	b = strconv.AppendInt(append(b, ","+field+`consecutive_failures": `...), int64(g.ConsecutiveFailures), 10)
	b = append(b, ","+field+`last_exit": `...)
	if g.LastExit == nil {
		b = append(b, "null"...)
	} else if b, ok = appendExit(b, g.LastExit); !ok {
		return b, false
	}
	if b, ok = appendTimePtr(append(b, ","+field+`backoff_until": `...), g.BackoffUntil); !ok {
		return b, false
	}
	if b, ok = appendTimePtr(append(b, ","+field+`settle_until": `...), g.SettleUntil); !ok {
		return b, false
	}
	b = strconv.AppendBool(append(b, ","+field+`failed": `...), g.Failed)
	if g.FailedReason != "" {
		b = appendString(append(b, ","+field+`failed_reason": `...), g.FailedReason)
	}
	b = strconv.AppendBool(append(b, ","+field+`healthy": `...), g.Healthy)
	if b, ok = appendTimePtr(append(b, ","+field+`down_since": `...), g.DownSince); !ok {
		return b, false
	}
	if g.ProfileChanged {
		b = append(b, ","+field+`profile_changed": true`...)
	}
	return append(b, "\n  }"...), true
}

// appendExit is a state.Exit at indentation level 3.
func appendExit(b []byte, e *state.Exit) ([]byte, bool) {
	b = append(b, '{')
	sep := exitField[:len(exitField)-1] + `"`
	if e.Code != nil {
		b = strconv.AppendInt(append(b, sep+`code": `...), int64(*e.Code), 10)
		sep = "," + exitField
	}
	if e.Signal != "" {
		b = appendString(append(b, sep+`signal": `...), e.Signal)
		sep = "," + exitField
	}
	b = appendString(append(b, sep+`at": `...), e.At)
	var ok bool
	if b, ok = appendFloat(append(b, ","+exitField+`uptime_seconds": `...), e.Uptime); !ok {
		return b, false
	}
	b = strconv.AppendBool(append(b, ","+exitField+`failure": `...), e.Failure)
	return append(b, "\n    }"...), true
}

func appendIntPtr(b []byte, p *int) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	return strconv.AppendInt(b, int64(*p), 10)
}

func appendStringPtr(b []byte, p *string) []byte {
	if p == nil {
		return append(b, "null"...)
	}
	return appendString(b, *p)
}

func appendTimePtr(b []byte, p *time.Time) ([]byte, bool) {
	if p == nil {
		return append(b, "null"...), true
	}
	return appendTime(b, *p)
}

// appendTime is time.Time's MarshalJSON: RFC 3339 with nanoseconds, quoted. A UTC time of
// years 0–9999 (every time status reports) is formatted in place, which is what MarshalJSON
// does; anything else goes through MarshalJSON itself, whose error means "encoding/json
// refuses it".
func appendTime(b []byte, t time.Time) ([]byte, bool) {
	if t.Location() == time.UTC {
		if y := t.Year(); y >= 0 && y <= 9999 {
			b = t.AppendFormat(append(b, '"'), time.RFC3339Nano)
			return append(b, '"'), true
		}
	}
	m, err := t.MarshalJSON()
	if err != nil {
		return b, false
	}
	return append(b, m...), true
}

// appendFloat is encoding/json's encoding of a float64: the shortest decimal that reads back
// the same, in exponent form below 1e-6 and from 1e21 on (with "e-07" written "e-7"); NaN and
// infinities are refused.
func appendFloat(b []byte, f float64) ([]byte, bool) {
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return b, false
	}
	format := byte('f')
	if abs := math.Abs(f); abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		if n := len(b); n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b, true
}

const hexDigits = "0123456789abcdef"

// appendString is encoding/json's encoding of a string with HTML escaping (the Encoder's
// default): quotes and backslashes escaped, \b \f \n \r \t by name, other control characters,
// <, > and & as \u00XX, invalid UTF-8 as \ufffd, U+2028 and U+2029 as \u2028 and \u2029;
// everything else as it is.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		if c := s[i]; c < utf8.RuneSelf {
			if c >= ' ' && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
