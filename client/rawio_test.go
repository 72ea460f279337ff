package client

import (
	"context"
	"net"
	"runtime"
	"testing"
)

// By default the client's TCP connections are rawio's (on Linux);
// WithPlainSyscalls keeps the plain *net.TCPConn.
func TestPlainSyscallsOption(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // nothing needs to accept: the kernel completes a connect into the backlog
	for _, plain := range []bool{false, true} {
		var opts []Option
		if plain {
			opts = append(opts, WithPlainSyscalls())
		}
		cl, err := Dial(context.Background(), []string{ln.Addr().String()}, opts...)
		if err != nil {
			t.Fatal(err)
		}
		p := cl.order[0]
		p.mu.Lock()
		_, isPlain := p.conns[0].nc.(*net.TCPConn)
		p.mu.Unlock()
		cl.Close()
		if want := plain || runtime.GOOS != "linux"; isPlain != want {
			t.Errorf("WithPlainSyscalls %v: a plain TCPConn %v, want %v", plain, isPlain, want)
		}
	}
}
