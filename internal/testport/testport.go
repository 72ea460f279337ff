// Package testport picks loopback ports for tests that start node
// processes (e2e, deploy).
package testport

import (
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
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

// FreeOffset picks an offset that, added to every one of ports, gives
// ports in 20000-31999 that are free now and were not handed out before
// (Free's range and reasons); it hands them all out. For a program that
// lays its ports out from fixed bases (walrus dev's --port-offset).
func FreeOffset(t testing.TB, ports ...int) int {
	t.Helper()
	lo, hi := slices.Min(ports), slices.Max(ports)
	if hi-lo >= 12000 {
		t.Fatalf("ports %v span more than 20000-31999", ports)
	}
	mu.Lock()
	defer mu.Unlock()
next:
	for range 1000 {
		offset := 20000 - lo + rand.IntN(12000-(hi-lo))
		for _, p := range ports {
			if handedOut[p+offset] || !IsFree(p+offset) {
				continue next
			}
		}
		for _, p := range ports {
			handedOut[p+offset] = true
		}
		return offset
	}
	t.Fatalf("no offset puts %v on free ports in 20000-31999", ports)
	return 0
}
