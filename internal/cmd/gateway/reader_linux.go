package gateway

import (
	"context"
	"os"

	"golang.org/x/sys/unix"
)

// whileReaderStays returns a context that ends, with ctx, when the reader of `gateway logs -f`
// is gone, as far as this process can see it:
//
//   - stdout is a pipe whose read end is closed (poll(2) reports POLLERR), or a terminal or
//     socket that hung up (POLLHUP): `gateway logs -f | head`, an ssh session that ended;
//   - stdin is a pipe, FIFO or socket that hung up: `docker exec -i` (and `kubectl exec -i`)
//     hand the client's stdin over a pipe, which hangs up when the client goes.
//
// It waits in poll(2) without a timeout: an idle follower wakes for nothing. Without -i,
// `docker exec` leaves nothing to see: dockerd keeps draining the exec's stdout after its
// client is gone and never closes it, and stdin is /dev/null (docs/operations.md, "Logs").
// stop ends the watch; call it once the follow is over.
func whileReaderStays(ctx context.Context, stdin, stdout *os.File) (context.Context, func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wake [2]int
	if err := unix.Pipe2(wake[:], unix.O_CLOEXEC); err != nil {
		return ctx, cancel // no watch: the follow still ends on SIGINT, SIGTERM or EPIPE
	}
	fds := []unix.PollFd{
		{Fd: int32(wake[0]), Events: unix.POLLIN},
		{Fd: int32(stdout.Fd()), Events: 0}, // only POLLERR, POLLHUP, POLLNVAL: never "writable"
	}
	if hangsUp(stdin) {
		// POLLIN too: a pipe's writer closing is POLLHUP, but data the client typed is
		// POLLIN, which must not wake the loop for ever; it is read and dropped below.
		fds = append(fds, unix.PollFd{Fd: int32(stdin.Fd()), Events: unix.POLLIN})
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer cancel()
		buf := make([]byte, 512)
		for {
			for i := range fds {
				fds[i].Revents = 0
			}
			if _, err := unix.Poll(fds, -1); err == unix.EINTR {
				continue
			} else if err != nil {
				return
			}
			if fds[0].Revents != 0 {
				return // stopped
			}
			if fds[1].Revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 {
				return
			}
			if len(fds) > 2 && fds[2].Revents != 0 {
				if fds[2].Revents&(unix.POLLERR|unix.POLLHUP|unix.POLLNVAL) != 0 {
					return
				}
				if n, err := unix.Read(int(fds[2].Fd), buf); n <= 0 && err != unix.EAGAIN && err != unix.EINTR {
					return // end of input: the client is gone
				}
			}
		}
	}()
	return ctx, func() {
		unix.Write(wake[1], []byte{0})
		<-done
		unix.Close(wake[0])
		unix.Close(wake[1])
	}
}

// hangsUp reports whether f is a pipe, FIFO or socket: something whose other end can go away.
// A terminal's does not (docker exec -t keeps its pseudo-terminal open), /dev/null and
// regular files never do.
func hangsUp(f *os.File) bool {
	if f == nil {
		return false
	}
	var st unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) != nil {
		return false
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFIFO, unix.S_IFSOCK:
		return true
	}
	return false
}
