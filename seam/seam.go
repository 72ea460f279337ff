// Package seam holds the interfaces through which everything that makes two
// runs differ reaches the node: the clock and the network. Production wires
// the real implementations below (in cmd); the testkit swaps in simulations.
// The third seam, the file system, lives in package wal (wal.FS) because the
// storage engine may import only the standard library.
//
// Decision logic never calls time.Now, time.After or the global math/rand:
// it is handed a Clock (or a plain time.Time) and a seeded *rand.Rand.
package seam

import (
	"context"
	"net"
	"time"

	"github.com/walrus-go/walrus/internal/rawio"
)

// Clock is the node's source of time. Implementations must be safe for
// concurrent use. Now must be monotonic within one process run (the real
// clock's readings carry Go's monotonic reading, so differences are safe).
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has elapsed, unless the
	// returned Timer is stopped first.
	AfterFunc(d time.Duration, f func()) Timer
	// NewTicker delivers ticks on C() every d until Stop.
	NewTicker(d time.Duration) Ticker
}

// Timer is a pending AfterFunc call.
type Timer interface {
	// Stop prevents the call if it has not started; it reports whether it did.
	Stop() bool
}

// Ticker is a periodic tick source.
type Ticker interface {
	C() <-chan time.Time
	Stop()
}

// Network is how a node listens for and dials its peers (the internal port:
// raft transport plus node-to-node RPC). Client ports use it too, so a
// simulated cluster never opens a real socket.
type Network interface {
	Listen(addr string) (net.Listener, error)
	Dial(ctx context.Context, addr string) (net.Conn, error)
}

// RealClock is the operating system's clock.
type RealClock struct{}

func (RealClock) Now() time.Time { return time.Now() }

func (RealClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

func (RealClock) NewTicker(d time.Duration) Ticker { return realTicker{time.NewTicker(d)} }

type realTicker struct{ t *time.Ticker }

func (r realTicker) C() <-chan time.Time { return r.t.C }
func (r realTicker) Stop()               { r.t.Stop() }

// TCPNetwork is the real network: TCP sockets, read and written with raw
// system calls (package rawio: why) unless PlainSyscalls.
type TCPNetwork struct {
	PlainSyscalls bool // ordinary system calls, as net.Conn makes them (walrus --plain-syscalls)
}

func (n TCPNetwork) Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil || n.PlainSyscalls {
		return ln, err
	}
	return rawio.Listener(ln), nil
}

func (n TCPNetwork) Dial(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if n.PlainSyscalls {
		return c, nil
	}
	return rawio.Conn(c), nil
}
