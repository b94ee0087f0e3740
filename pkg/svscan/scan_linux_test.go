package svscan

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// /proc/self/uid_map as captured: the initial namespace (and Docker without userns-remap), and
// rootless Docker (the user's own uid, then 65,536 subordinate ones).
func TestIDMap(t *testing.T) {
	full := parseIDMap([]byte("         0          0 4294967295\n"))
	rootless := parseIDMap([]byte("         0       1000          1\n         1     100000      65536\n"))
	for _, tc := range []struct {
		m      []idRange
		id     int
		mapped bool
	}{
		{full, 20000, true}, {full, 1<<31 - 2, true},
		{rootless, 0, true}, {rootless, 20000, true}, {rootless, 65536, true}, {rootless, 65537, false},
		{nil, 12345, true}, // unreadable map: unknown, setpriv will say
	} {
		assert.Equal(t, tc.mapped, mapped(tc.m, tc.id), "%v %d", tc.m, tc.id)
	}
}
