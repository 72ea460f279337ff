package transport

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walrus-go/walrus/seam"
)

var tcpDial DialFunc = seam.TCPNetwork{}.Dial

// testLogger writes Warn and above to stderr when -v, else nothing.
func testLogger(t testing.TB) *slog.Logger {
	if !testing.Verbose() {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})).With("test", t.Name())
}

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

type testMux struct {
	*Mux
	ln   *countingListener
	addr string
}

// startMux serves a Mux on addr ("127.0.0.1:0" for any port) until the
// test ends.
func startMux(t testing.TB, addr string, h Handler, opts ...MuxOption) *testMux {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	cl := &countingListener{Listener: ln}
	m := NewMux(cl, testLogger(t), opts...)
	if h != nil {
		m.SetRPCHandler(h)
	}
	served := make(chan error, 1)
	go func() { served <- m.Serve() }()
	t.Cleanup(func() {
		_ = m.Close()
		if err := <-served; err != nil {
			t.Errorf("Serve returned %v after Close, want nil", err)
		}
	})
	return &testMux{Mux: m, ln: cl, addr: ln.Addr().String()}
}

func newClient(t testing.TB, addr string, opts ...ClientOption) *Client {
	c := NewClient(addr, tcpDial, testLogger(t), opts...)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// echo replies with kind+1 and the body.
var echo = HandlerFunc(func(_ context.Context, kind uint8, body []byte) (uint8, []byte, error) {
	return kind + 1, body, nil
})

// waitFor polls cond until it holds or 10s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after 10s waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// recv waits up to 10s for a value from ch.
func recv[T any](t testing.TB, what string, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out after 10s waiting for %s", what)
		panic("unreachable")
	}
}

// checkNoLeaks, called first in a test, fails it if goroutines running
// this package's code (or raft's, with raftToo) outlive its cleanups.
func checkNoLeaks(t *testing.T, raftToo bool) {
	t.Cleanup(func() {
		deadline := time.Now().Add(10 * time.Second)
		for {
			leaked := leakedGoroutines(raftToo)
			if len(leaked) == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Errorf("%d goroutines leaked:\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}

func leakedGoroutines(raftToo bool) []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var leaked []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "testing.tRunner") || strings.Contains(g, "leakedGoroutines") {
			continue
		}
		if strings.Contains(g, "walrus/transport.") || (raftToo && strings.Contains(g, "hashicorp/raft.")) {
			leaked = append(leaked, g)
		}
	}
	return leaked
}

// rawConn dials addr, sends first, and returns the connection.
func rawConn(t testing.TB, addr string, first []byte) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if len(first) > 0 {
		if _, err := c.Write(first); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// waitClosedByPeer waits (10s at most) for the peer to close c.
func waitClosedByPeer(t testing.TB, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [64]byte
	for {
		_, err := c.Read(b[:])
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("peer did not close the connection within 10s")
		}
		if err != io.EOF && !isConnReset(err) {
			t.Fatalf("read: %v, want EOF", err)
		}
		return
	}
}

func isConnReset(err error) bool {
	return strings.Contains(err.Error(), "connection reset")
}
