package simnet

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"testing/synctest"
	"time"
)

func pair(t *testing.T, n *Network) (client, server net.Conn) {
	return pairOn(t, n, "b:1")
}

func pairOn(t *testing.T, n *Network, addr string) (client, server net.Conn) {
	t.Helper()
	ln, err := n.Host("b").Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	acc := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			acc <- c
		}
		close(acc)
	}()
	client, err = n.Host("a").Dial(context.Background(), addr)
	if err != nil {
		t.Fatal(err)
	}
	server = <-acc
	return client, server
}

func readN(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	buf := make([]byte, n)
	if _, err := io.ReadFull(c, buf); err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(buf)
}

func TestBytesArriveInOrderAfterLatency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{Seed: 1, MinLatency: time.Millisecond, MaxLatency: 5 * time.Millisecond})
		defer n.Close()
		c, s := pair(t, n)
		start := time.Now()
		for _, w := range []string{"hello ", "big ", "world"} {
			if _, err := c.Write([]byte(w)); err != nil {
				t.Fatal(err)
			}
		}
		if got := readN(t, s, len("hello big world")); got != "hello big world" {
			t.Fatalf("got %q", got)
		}
		if d := time.Since(start); d < time.Millisecond || d > 15*time.Millisecond {
			t.Fatalf("delivered after %v, want within the latency bounds", d)
		}
	})
}

func TestPartitionHoldsDataUntilHeal(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{Seed: 2, MinLatency: time.Millisecond, MaxLatency: time.Millisecond})
		defer n.Close()
		c, s := pair(t, n)
		n.Partition([]string{"a"}, []string{"a", "b"})
		c.Write([]byte("held"))
		_ = s.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := s.Read(make([]byte, 4)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read across a partition: %v, want a deadline error", err)
		}
		_ = s.SetReadDeadline(time.Time{})
		n.Heal()
		if got := readN(t, s, 4); got != "held" {
			t.Fatalf("after heal got %q", got)
		}
	})
}

func TestDialAcrossPartitionWaitsAndRefusedWithoutListener(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{Seed: 3, MinLatency: time.Millisecond, MaxLatency: time.Millisecond})
		defer n.Close()
		if _, err := n.Host("a").Dial(context.Background(), "b:9"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial with no listener: %v", err)
		}
		ln, _ := n.Host("b").Listen("b:9")
		defer ln.Close()
		n.Block("a", "b")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		start := time.Now()
		if _, err := n.Host("a").Dial(ctx, "b:9"); err == nil {
			t.Fatal("dial across a cut succeeded")
		}
		if time.Since(start) != 2*time.Second {
			t.Fatalf("dial gave up after %v, want the context's 2s", time.Since(start))
		}
	})
}

func TestResetAndKill(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{Seed: 4, MinLatency: time.Millisecond, MaxLatency: time.Millisecond})
		defer n.Close()
		c, s := pair(t, n)
		c.Write([]byte("lost"))
		n.ResetLink("a", "b")
		if _, err := s.Read(make([]byte, 4)); !IsReset(err) {
			t.Fatalf("read after reset: %v", err)
		}
		if _, err := c.Write([]byte("x")); !IsReset(err) {
			t.Fatalf("write after reset: %v", err)
		}
		n.Kill("b")
		if _, err := n.Host("a").Dial(context.Background(), "b:1"); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("dial to a killed host: %v", err)
		}
		if _, err := n.Host("b").Dial(context.Background(), "a:1"); err == nil {
			t.Fatal("a killed host dialed out")
		}
	})
}

func TestCloseSendsEOFAfterData(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{Seed: 5, MinLatency: time.Millisecond, MaxLatency: 3 * time.Millisecond})
		defer n.Close()
		c, s := pair(t, n)
		c.Write([]byte("last words"))
		c.Close()
		b, err := io.ReadAll(s)
		if err != nil || string(b) != "last words" {
			t.Fatalf("got %q, %v", b, err)
		}
	})
}

func peerFrame(kind uint8, id uint64, body string) []byte {
	f := make([]byte, 13+len(body))
	binary.LittleEndian.PutUint32(f, uint32(9+len(body)))
	f[4] = kind
	binary.LittleEndian.PutUint64(f[5:], id)
	copy(f[13:], body)
	return f
}

func TestPeerFramesTappedAndFaulted(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{Seed: 6, MinLatency: time.Millisecond, MaxLatency: 2 * time.Millisecond,
			Idempotent: map[uint8]bool{8: true}})
		defer n.Close()
		var seen []FrameEvent
		n.SetTap(func(e FrameEvent) {
			seen = append(seen, FrameEvent{Kind: e.Kind, ID: e.ID, Fate: e.Fate, Request: e.Request})
		})
		c, s := pair(t, n)
		n.SetFrameFaults(0, 1, 0) // duplicate every idempotent frame
		c.Write(append([]byte{'W'}, peerFrame(8, 1, "rep")...))
		c.Write(peerFrame(5, 2, "put")) // not idempotent: delivered once
		want := "W" + string(peerFrame(8, 1, "rep")) + string(peerFrame(8, 1, "rep")) + string(peerFrame(5, 2, "put"))
		if got := readN(t, s, len(want)); got != want {
			t.Fatalf("got %q\nwant %q", got, want)
		}
		if len(seen) != 2 || seen[0].Fate != Duplicated || seen[1].Fate != Delivered || !seen[0].Request {
			t.Fatalf("tap saw %+v", seen)
		}
		n.SetFrameFaults(1, 0, 0) // drop everything
		c.Write(peerFrame(8, 3, "gone"))
		_ = s.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := s.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("dropped frame arrived: %v", err)
		}
	})
}

// The same write at the same virtual time on the same link gets the same
// latency, whichever connection carries it.
func TestLatencyKeyedByContentNotConnection(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		n := New(Config{Seed: 7, MinLatency: time.Millisecond, MaxLatency: 50 * time.Millisecond})
		defer n.Close()
		c1, s1 := pairOn(t, n, "b:1")
		c2, s2 := pairOn(t, n, "b:2")
		at := make(chan time.Duration, 2)
		start := time.Now()
		for _, s := range []net.Conn{s1, s2} {
			go func() {
				readN(t, s, 5)
				at <- time.Since(start)
			}()
		}
		c1.Write([]byte("same!"))
		c2.Write([]byte("same!"))
		if a, b := <-at, <-at; a != b {
			t.Fatalf("latencies %v and %v differ", a, b)
		}
	})
}
