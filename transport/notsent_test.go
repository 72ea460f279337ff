package transport

import (
	"bufio"
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"

	"github.com/walrus-go/walrus/wire"
)

// writeGatedConn blocks its writes, once armed, until gate is closed.
type writeGatedConn struct {
	net.Conn
	armed *atomic.Bool
	gate  chan struct{}
}

func (w *writeGatedConn) Write(p []byte) (int, error) {
	if w.armed.Load() {
		<-w.gate
	}
	return w.Conn.Write(p)
}

// TestCallsQueuedBehindAFailureAreNotSent: when a connection fails, the
// calls whose frames were still queued (behind a write under way) were
// never written: they fail with ErrNotSent. The call whose write was
// under way may have reached the peer and fails without it.
func TestCallsQueuedBehindAFailureAreNotSent(t *testing.T) {
	checkNoLeaks(t, false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closePeer := make(chan struct{})
	served := serveOneCall(ln, closePeer)
	gate := make(chan struct{})
	var armed atomic.Bool
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		if err != nil {
			return nil, err
		}
		return &writeGatedConn{Conn: c, armed: &armed, gate: gate}, nil
	}
	c := NewClient(ln.Addr().String(), dial, testLogger(t))
	defer c.Close()
	if _, _, err := c.Call(context.Background(), 1, []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, "the peer to answer", served); err != nil {
		t.Fatal(err)
	}
	armed.Store(true) // the connection's handshake and first call are written
	results := make(chan error, 2)
	call := func(body string) {
		_, _, err := c.Call(context.Background(), 1, []byte(body))
		results <- err
	}
	pending := func() int {
		c.mu.Lock()
		cc := c.cur
		c.mu.Unlock()
		cc.mu.Lock()
		defer cc.mu.Unlock()
		return len(cc.pending)
	}
	go call("writing") // its write blocks in the gate
	waitFor(t, "the first call to be pending", func() bool { return pending() == 1 })
	go call("queued") // queued behind it
	waitFor(t, "the second call to be pending", func() bool { return pending() == 2 })
	close(closePeer) // the reader sees the close and fails the connection
	var writing, queued error
	for range 2 {
		err := recv(t, "a call to fail", results)
		if errors.Is(err, ErrNotSent) {
			queued = err
		} else {
			writing = err
		}
	}
	close(gate)
	if queued == nil || !errors.Is(queued, ErrPeerUnavailable) {
		t.Fatalf("no call failed with ErrNotSent; the queued one should have (the other: %v)", writing)
	}
	if writing == nil || !errors.Is(writing, ErrPeerUnavailable) {
		t.Fatalf("the call being written: %v, want ErrPeerUnavailable without ErrNotSent (it may have been sent)", writing)
	}
}

// serveOneCall accepts one connection on ln and answers its first call
// (the body echoed), reporting on the channel it returns; then it waits
// for release (nil: not at all) and closes the connection and ln.
func serveOneCall(ln net.Listener, release <-chan struct{}) <-chan error {
	served := make(chan error, 1)
	go func() {
		defer ln.Close()
		conn, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		defer conn.Close()
		br := bufio.NewReader(conn)
		if _, err := br.ReadByte(); err != nil { // RPCByte
			served <- err
			return
		}
		f, err := wire.NewPeerReader(br, 0).ReadPeerFrame()
		if err == nil {
			_, err = conn.Write(wire.AppendPeerFrame(nil, f.Kind, f.ID, f.Body))
		}
		served <- err
		if release != nil {
			<-release
		}
	}()
	return served
}
