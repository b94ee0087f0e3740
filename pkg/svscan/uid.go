package svscan

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/s6gate/s6gate/pkg/slot"
)

// UIDFile is the file in a slot that asks for an isolated supervisor: the uid (and gid) the
// slot's command runs as, written by the service user when it publishes the slot.
const UIDFile = slot.UIDFile

// SlotPrefix starts the name of every gateway slot.
const SlotPrefix = slot.Prefix

// maxUIDFileSize bounds what is read of UIDFile: a uid of 10 digits and its newline fit.
const maxUIDFileSize = 32

// ParseUID parses the content of UIDFile: one decimal number without sign or leading zero,
// then one newline, nothing else. The number is checked against the uid range by the scanner,
// not here.
func ParseUID(b []byte) (int, error) {
	if len(b) > maxUIDFileSize {
		return 0, fmt.Errorf("more than %d bytes", maxUIDFileSize)
	}
	if len(b) < 2 || b[len(b)-1] != '\n' {
		return 0, errors.New("not one number and a newline")
	}
	digits := b[:len(b)-1]
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%q is not a decimal number", digits)
		}
	}
	if len(digits) > 1 && digits[0] == '0' {
		return 0, fmt.Errorf("%q has a leading zero", digits)
	}
	n, err := strconv.ParseInt(string(digits), 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is out of range", digits)
	}
	return int(n), nil
}
