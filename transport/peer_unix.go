//go:build unix

package transport

import (
	"errors"
	"net"
	"syscall"
)

// peerGone reports whether the peer has closed conn: a peek at the socket,
// without waiting and without taking anything from it, finds the end of
// the stream (FIN) or a reset. It runs beside the reader's blocked Read
// (Control takes no read lock). False for connections that are not
// sockets (the testkit's simulated network).
func peerGone(conn net.Conn) bool {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return false
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	gone := false
	_ = rc.Control(func(fd uintptr) {
		var b [1]byte
		n, _, err := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		gone = (n == 0 && err == nil) || errors.Is(err, syscall.ECONNRESET)
	})
	return gone
}
