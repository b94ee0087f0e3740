package pidlock

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestHolderFromLocks(t *testing.T) {
	// /proc/locks captured on Debian 12; device fe:00, a waiter line with "->".
	locks := []byte(`1: FLOCK  ADVISORY  WRITE 1441 fe:00:762101 0 EOF
1: -> FLOCK  ADVISORY  WRITE 2000 fe:00:762101 0 EOF
2: OFDLCK ADVISORY  READ -1 00:06:3 0 EOF
3: POSIX  ADVISORY  WRITE 1425 fe:00:762141 0 EOF
4: FLOCK  ADVISORY  WRITE 1426 00:2e:42 0 EOF
`)
	dev := uint64(0xfe << 8) // major 0xfe, minor 0
	assert.Equal(t, 1441, holderFromLocks(locks, dev, 762101))
	assert.Equal(t, 0, holderFromLocks(locks, dev, 762141), "POSIX locks are not the profile lock")
	assert.Equal(t, 1426, holderFromLocks(locks, uint64(0x2e), 42))
	assert.Equal(t, 0, holderFromLocks(locks, dev, 1))
}
