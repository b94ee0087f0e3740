package strace

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestParse pins the parser: -xx strings and -y decorations are decoded, a call split by
// another thread is joined and kept where it was entered, and Replacements reconstructs what
// was renamed onto a target.
func TestParse(t *testing.T) {
	// "/d" = \x2f\x64, ".f1" = \x2e\x66\x31, "f" = \x66, "hi" = \x68\x69
	log := `100   openat(AT_FDCWD<\x2f\x64>, "\x2f\x64\x2f\x2e\x66\x31", O_RDWR|O_CREAT|O_EXCL|O_CLOEXEC, 0600 <unfinished ...>
101   write(2<pipe:[42]>, "\x68\x69", 2) = 2
100   <... openat resumed>) = 7<\x2f\x64\x2f\x2e\x66\x31>
100   write(7<\x2f\x64\x2f\x2e\x66\x31>, "\x68\x69", 2) = 2
100   fsync(7<\x2f\x64\x2f\x2e\x66\x31>) = 0
100   renameat(3<\x2f\x64>, "\x2e\x66\x31", 3<\x2f\x64>, "\x66") = 0
100   openat(3<\x2f\x64>, "\x6e\x6f", O_RDONLY) = -1 ENOENT (No such file or directory)
101   fsync(3<\x2f\x64> <unfinished ...>
100   --- SIGURG {si_signo=SIGURG, si_code=SI_TKILL, si_pid=100, si_uid=0} ---
101   +++ killed by SIGKILL +++
100   +++ exited with 0 +++
`
	calls, err := Parse([]byte(log))
	require.NoError(t, err)
	require.Len(t, calls, 6, calls.String())

	assert.Equal(t, "openat", calls[0].Name, "the split call stays where it was entered")
	assert.Equal(t, "/d/.f1", calls[0].At(1))
	assert.Equal(t, "/d/.f1", calls[0].RetPath)
	assert.Equal(t, int64(7), calls[0].Ret)
	assert.Contains(t, calls[0].Raw(), "O_EXCL")

	assert.Equal(t, 101, calls[1].PID)
	assert.Equal(t, "pipe:[42]", calls[1].FDPath(), "a decoration that is not a path is kept as printed")

	assert.Equal(t, "hi", calls[2].Args[1].Str)
	assert.Equal(t, "/d/.f1", calls[3].FDPath())

	from, to, ok := calls[4].Renames()
	require.True(t, ok)
	assert.Equal(t, "/d/.f1", from)
	assert.Equal(t, "/d/f", to)

	assert.False(t, calls[5].OK())
	assert.Equal(t, "ENOENT", calls[5].Errno)

	assert.Equal(t, []string{"hi"}, calls.Replacements("/d/f"))
	assert.Empty(t, calls.Replacements("/d/other"))
}
