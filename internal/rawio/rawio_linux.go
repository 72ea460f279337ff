//go:build linux

package rawio

import (
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// Conn returns c with Read and Write issued as raw system calls when c is
// a *net.TCPConn, and c itself otherwise. Deadlines, Close and every other
// method are the TCPConn's own; waiting for readiness stays with Go's
// netpoller (syscall.RawConn), so deadlines and Close interrupt a waiting
// Read or Write as usual.
func Conn(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	rw := &conn{TCPConn: tc, rc: rc}
	rw.readFn, rw.writeFn = rw.readOnce, rw.writeOnce
	return rw
}

// conn keeps each direction's call state in fields, under that
// direction's mutex, and the functions handed to RawConn built once: a
// closure per call would be an allocation per read and per write.
type conn struct {
	*net.TCPConn
	rc syscall.RawConn

	readMu sync.Mutex
	rbuf   []byte
	rn     int
	rerr   syscall.Errno
	readFn func(fd uintptr) bool

	writeMu sync.Mutex
	wbuf    []byte
	written int
	werr    syscall.Errno
	wstuck  bool // write(2) took nothing and said nothing: as net's, io.ErrUnexpectedEOF
	writeFn func(fd uintptr) bool
}

func (c *conn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	c.readMu.Lock()
	defer c.readMu.Unlock()
	c.rbuf, c.rn, c.rerr = p, 0, 0
	err := c.rc.Read(c.readFn)
	n, errno := c.rn, c.rerr
	c.rbuf = nil
	switch {
	case err != nil:
		return 0, c.opError("read", err)
	case errno != 0:
		return 0, c.opError("read", os.NewSyscallError("read", errno))
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// readOnce is one read(2) into rbuf; false (EAGAIN) has RawConn wait for
// readiness and call it again.
func (c *conn) readOnce(fd uintptr) bool {
	p := c.rbuf
	for {
		r, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch e {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait for readiness in the netpoller
		}
		if e == 0 && int(r) > len(p) {
			e = syscall.EIO // more than the buffer holds: never report it
		}
		c.rn, c.rerr = int(r), e
		return true
	}
}

func (c *conn) Write(p []byte) (int, error) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	c.wbuf, c.written, c.werr, c.wstuck = p, 0, 0, false
	err := c.rc.Write(c.writeFn)
	written, errno := c.written, c.werr
	c.wbuf = nil
	switch {
	case err != nil:
		return written, c.opError("write", err)
	case errno != 0:
		return written, c.opError("write", os.NewSyscallError("write", errno))
	case c.wstuck:
		return written, c.opError("write", io.ErrUnexpectedEOF)
	}
	return written, nil
}

// writeOnce writes what is left of wbuf; false (EAGAIN: the send buffer
// is full) has RawConn wait for room and call it again.
func (c *conn) writeOnce(fd uintptr) bool {
	p := c.wbuf
	for c.written < len(p) {
		r, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[c.written])), uintptr(len(p)-c.written))
		switch e {
		case 0:
			if r == 0 {
				c.wstuck = true // never loop on a write that makes no progress
				return true
			}
			if int(r) > len(p)-c.written {
				c.werr = syscall.EIO // more than asked for (seen from broken drivers): never report it
				return true
			}
			c.written += int(r)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			c.werr = e
			return true
		}
	}
	return true
}

// opError wraps err as the net package does, so that callers' checks
// (errors.Is(err, net.ErrClosed), os.ErrDeadlineExceeded, net.Error's
// Timeout) see what they would see from a plain TCPConn.
func (c *conn) opError(op string, err error) error {
	return &net.OpError{Op: op, Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: err}
}
