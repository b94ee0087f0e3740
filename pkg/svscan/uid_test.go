package svscan

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/pkg/slot"
)

func TestParseUID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		uid  int
		fail string
	}{
		{in: "20001\n", uid: 20001},
		{in: "0\n", uid: 0},
		{in: "2147483647\n", uid: 2147483647},
		{in: "2147483648\n", fail: "out of range"},
		{in: "20001", fail: "not one number and a newline"},
		{in: "\n", fail: "not one number and a newline"},
		{in: "", fail: "not one number and a newline"},
		{in: "20001\n\n", fail: "not a decimal number"},
		{in: " 20001\n", fail: "not a decimal number"},
		{in: "+20001\n", fail: "not a decimal number"},
		{in: "-1\n", fail: "not a decimal number"},
		{in: "0x4e21\n", fail: "not a decimal number"},
		{in: "020001\n", fail: "leading zero"},
		{in: "20001\r\n", fail: "not a decimal number"},
		{in: strings.Repeat("1", 32) + "\n", fail: "more than 32 bytes"},
	} {
		uid, err := ParseUID([]byte(tc.in))
		if tc.fail != "" {
			require.Error(t, err, "%q", tc.in)
			assert.Contains(t, err.Error(), tc.fail, "%q", tc.in)
			continue
		}
		require.NoError(t, err, "%q", tc.in)
		assert.Equal(t, tc.uid, uid, "%q", tc.in)
	}
}

// SlotPrefix is pkg/slot's: the scanner recognises exactly the slots the renderer makes.
func TestSlotPrefixIsTheRenderers(t *testing.T) {
	assert.Equal(t, SlotPrefix+"coder", slot.Name("coder"))
}
