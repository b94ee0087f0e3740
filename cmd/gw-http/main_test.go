package main

import (
	"bytes"
	"net"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// Bad usage is one line and exit 2, before anything listens; a port that is taken is exit 1.
func TestRunRefuses(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer taken.Close()
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		code int
		line string
	}{
		{"off", nil, nil, 2, "gw-http: serve: no address: set GATEWAY_HTTP_ADDR (e.g. :9090) or --addr"},
		{"no port", nil, map[string]string{"GATEWAY_HTTP_ADDR": "9090"}, 2, `gw-http: serve: GATEWAY_HTTP_ADDR="9090": want [HOST]:PORT, e.g. :9090`},
		{"port 0", []string{"--addr", ":0"}, nil, 2, `port "0" is not a number from 1 to 65535`},
		{"host name", []string{"--addr", "example.com:80"}, nil, 2, `host "example.com" is not an IP address`},
		{"argument", []string{"--addr", ":9090", "extra"}, nil, 2, "gw-http: serve: unexpected argument"},
		{"flag", []string{"--port", "1"}, nil, 2, "flag provided but not defined: -port"},
		{"bad setting", []string{"--addr", ":9090"}, map[string]string{"GATEWAY_HOME": "relative"}, 2, `GATEWAY_HOME="relative": must be an absolute path`},
		{"port taken", []string{"--addr", taken.Addr().String()}, nil, 1, "gw-http: serve: listen on " + taken.Addr().String()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(tc.args, func(k string) string { return tc.env[k] }, &out, &errb)
			require.Equal(t, tc.code, code, errb.String())
			require.Empty(t, out.String())
			require.Equal(t, 1, strings.Count(errb.String(), "\n"), "one line: %q", errb.String())
			require.Contains(t, errb.String(), tc.line)
		})
	}
}
