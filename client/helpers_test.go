package client

import (
	"bytes"
	"math/rand/v2"
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

// readExactly reads n entries of topic from offset first. Every entry was
// acknowledged, so each READ must return at least one (READ stops at a
// segment boundary, so several may be needed): an EMPTY reply fails.
func readExactly(t *testing.T, c *Client, topic string, first uint64, n int) [][]byte {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	var out [][]byte
	for next := first; len(out) < n; {
		got, entries, err := c.Read(ctx, topic, next, n-len(out))
		if err != nil {
			t.Fatalf("Read(%s, %d, %d): %v", topic, next, n-len(out), err)
		}
		if got != next {
			t.Fatalf("Read(%s, %d) started at %d", topic, next, got)
		}
		if len(entries) == 0 {
			t.Fatalf("Read(%s, %d): EMPTY though %d acknowledged entries from %d are unread", topic, next, n-len(out), first)
		}
		out = append(out, entries...)
		next += uint64(len(entries))
	}
	return out
}

// getEventually is Get of an entry that was acknowledged: EMPTY fails.
func getEventually(t *testing.T, c *Client, topic string) []byte {
	t.Helper()
	ctx := testCtx(t, 30*time.Second)
	p, ok, err := c.Get(ctx, topic)
	if err != nil {
		t.Fatalf("Get(%s): %v", topic, err)
	}
	if !ok {
		t.Fatalf("Get(%s): EMPTY after an acknowledged write", topic)
	}
	return p
}
