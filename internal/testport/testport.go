// Package testport picks loopback ports for tests that start node
// processes (e2e, deploy).
package testport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

// handedOut holds the ports Free gave out in this test binary, so two
// nodes never get the same one.
var (
	mu        sync.Mutex
	handedOut = map[int]bool{}
)

// IsFree reports whether port p on 127.0.0.1 can be listened on now.
func IsFree(p int) bool {
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// Free picks a free port below the kernel's ephemeral range: a port the
// kernel handed out for listen(":0") and got back could be taken by any
// outgoing connection (other test packages run in parallel) before the node
// binds it; ports outside that range are only ever taken by a listener.
func Free(t testing.TB) int {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	for range 1000 {
		p := 20000 + rand.IntN(12000)
		if !handedOut[p] && IsFree(p) {
			handedOut[p] = true
			return p
		}
	}
	t.Fatal("no free port in 20000-31999")
	return 0
}
