package client

import (
	"bytes"
	"math/rand/v2"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"
)

func u(n uint64) string { return strconv.FormatUint(n, 10) }

func newSeeded(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0)) }

// clientGoroutines counts goroutines running the client's own code
// (connection readers and writers, calls in progress).
func clientGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		for _, m := range [][]byte{[]byte("client.(*conn)."), []byte("client.(*Client)."), []byte("client.(*nodePool).")} {
			if bytes.Contains(g, m) {
				count++
				break
			}
		}
	}
	return count
}

// waitForNoLeak waits until no more client goroutines run than before.
func waitForNoLeak(t *testing.T, before int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		n := clientGoroutines()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("%d client goroutines still running (%d before):\n%s", n, before, buf)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func getenv(k string) string { return os.Getenv(k) }
