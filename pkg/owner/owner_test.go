package owner_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/s6gate/s6gate/pkg/owner"
)

func TestLookup(t *testing.T) {
	root, err := owner.Lookup("root")
	require.NoError(t, err)
	assert.Equal(t, &owner.Owner{UID: 0, GID: 0}, root)

	byID, err := owner.Lookup("0")
	require.NoError(t, err)
	assert.Equal(t, root, byID)

	_, err = owner.Lookup("no-such-user-s6gate")
	require.Error(t, err)
	assert.Contains(t, err.Error(), `"no-such-user-s6gate"`)
}

func TestNilOwnerIsNoop(t *testing.T) {
	var o *owner.Owner
	p := filepath.Join(t.TempDir(), "f")
	require.NoError(t, os.WriteFile(p, nil, 0o600))
	assert.NoError(t, o.Lchown(p))
	assert.NoError(t, o.Fchown(-1), "nil owner must not touch the fd")
	assert.Equal(t, "(caller)", o.String())
}

func TestForCallerIsNilWhenNotRoot(t *testing.T) {
	o, err := owner.ForCaller("root")
	require.NoError(t, err)
	if os.Geteuid() == 0 {
		assert.Equal(t, &owner.Owner{}, o)
	} else {
		assert.Nil(t, o)
	}
}
