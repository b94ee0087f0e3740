package svscan

import (
	"bytes"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/s6gate/s6gate/pkg/profile"
)

// What the loggers forward to docker logs (s6-log's `1` action, docs/operations.md "Logs"):
// every logger's stdout is a pipe of its own, kept for its service's lifetime like the pipe
// between the service and its logger, and gw-svscan copies each line to its own stdout (the
// container's) prefixed with the gateway it comes from, "NAME | line", as `docker compose
// logs` prefixes each service's. One goroutine per logged service, no process: at a thousand
// gateways this costs about 4 KiB of buffer and a goroutine's stack per gateway, and one read
// and one write per batch of lines.

const (
	// forwardBuf is how much of a logger's output is read at once: a line longer than this
	// is forwarded in pieces, each with the prefix.
	forwardBuf = 4096
	// pipeBuf is PIPE_BUF: a write of at most this many bytes to a pipe is never interleaved
	// with another process's (the container's stdout is shared with /init and the root
	// tree's services).
	pipeBuf = 4096
	// drainTimeout bounds how long a stop waits for the loggers' last lines once every
	// supervisor has exited (only a process that inherited a logger's stdout can hold it).
	drainTimeout = 2 * time.Second
)

// forwarder writes the loggers' lines to fd, one goroutine per logger, one write at a time.
type forwarder struct {
	fd   int
	mu   sync.Mutex
	wg   sync.WaitGroup
	bufs sync.Pool // *[]byte: prefixed output under construction
}

func newForwarder(fd int) *forwarder {
	return &forwarder{fd: fd, bufs: sync.Pool{New: func() any { b := make([]byte, 0, 2*forwardBuf); return &b }}}
}

// linePrefix is what each forwarded line of the service name starts with: its profile for a
// gateway slot (gateway-NAME), else the service's own name.
func linePrefix(name string) []byte {
	if p, ok := strings.CutPrefix(name, SlotPrefix); ok && profile.Validate(p) == nil {
		name = p
	}
	return []byte(name + " | ")
}

// pipe makes a logger's stdout: it returns the read end, which the forwarder polls
// (non-blocking, so a waiting reader holds no thread), and the write end, blocking as a
// stdout is expected to be.
func (f *forwarder) pipe() (r, w int, err error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return -1, -1, err
	}
	if err := unix.SetNonblock(p[1], false); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return -1, -1, err
	}
	return p[0], p[1], nil
}

// copy forwards what comes out of the read end r, each line prefixed, until every writer has
// closed it; it closes r.
func (f *forwarder) copy(r int, name string) {
	f.wg.Add(1)
	file := os.NewFile(uintptr(r), name+"/log stdout")
	prefix := linePrefix(name)
	go func() {
		defer f.wg.Done()
		defer file.Close()
		buf := make([]byte, forwardBuf)
		have := 0
		for {
			n, err := file.Read(buf[have:])
			have += n
			rest := f.forward(prefix, buf[:have], err != nil)
			have = copy(buf, rest)
			if err != nil {
				return
			}
		}
	}()
}

// forward writes the whole lines of data, each prefixed, and returns what is left of an
// unfinished line. A full buffer without a newline, or the end of the input, is written as a
// line of its own.
func (f *forwarder) forward(prefix, data []byte, last bool) []byte {
	bp := f.bufs.Get().(*[]byte)
	out := (*bp)[:0]
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		out = append(append(out, prefix...), data[:i+1]...)
		data = data[i+1:]
	}
	if len(data) > 0 && (last || len(data) == forwardBuf) {
		out = append(append(append(out, prefix...), data...), '\n')
		data = nil
	}
	if len(out) > 0 {
		f.write(out)
	}
	*bp = out
	f.bufs.Put(bp)
	return data
}

// write writes out to the forwarder's descriptor in pieces of at most pipeBuf bytes cut at
// line ends, waiting while the descriptor is full (someone may have made it non-blocking).
// What cannot be written (no reader any more) is dropped: the loggers must never block.
func (f *forwarder) write(out []byte) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for len(out) > 0 {
		cut := len(out)
		if cut > pipeBuf {
			cut = pipeBuf
			if j := bytes.LastIndexByte(out[:pipeBuf], '\n'); j >= 0 {
				cut = j + 1
			}
		}
		n, err := unix.Write(f.fd, out[:cut])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			_, _ = unix.Poll([]unix.PollFd{{Fd: int32(f.fd), Events: unix.POLLOUT}}, -1)
			continue
		case err != nil:
			return
		}
		out = out[n:]
	}
}

// drain waits, at most drainTimeout, for every logger's output to be forwarded: after a stop,
// once the loggers have exited.
func (f *forwarder) drain() {
	done := make(chan struct{})
	go func() {
		f.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(drainTimeout):
	}
}
