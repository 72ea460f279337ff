package transport

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walrus-go/walrus/wire"
)

func TestRPCRoundTrip(t *testing.T) {
	checkNoLeaks(t, false)
	m := startMux(t, "127.0.0.1:0", echo)
	c := newClient(t, m.addr)
	for _, body := range [][]byte{[]byte("hello"), nil, bytes.Repeat([]byte{0xA5}, 3<<20)} {
		kind, got, err := c.Call(context.Background(), 7, body)
		if err != nil {
			t.Fatalf("Call(%d bytes): %v", len(body), err)
		}
		if kind != 8 || !bytes.Equal(got, body) {
			t.Fatalf("Call(%d bytes) = kind %d, %d bytes; want kind 8, same body", len(body), kind, len(got))
		}
	}
	if n := m.ln.accepted.Load(); n != 1 {
		t.Fatalf("server accepted %d connections, want 1", n)
	}
}

func TestRPCGo(t *testing.T) {
	checkNoLeaks(t, false)
	m := startMux(t, "127.0.0.1:0", echo)
	c := newClient(t, m.addr)
	type res struct {
		kind uint8
		body []byte
		err  error
	}
	done := make(chan res, 1)
	c.Go(1, []byte("async"), time.Now().Add(10*time.Second), func(kind uint8, body []byte, err error) {
		done <- res{kind, body, err}
	})
	r := recv(t, "Go callback", done)
	if r.err != nil || r.kind != 2 || string(r.body) != "async" {
		t.Fatalf("Go callback got %d %q %v", r.kind, r.body, r.err)
	}
}

func TestRPCErrorReplies(t *testing.T) {
	checkNoLeaks(t, false)
	m := startMux(t, "127.0.0.1:0", HandlerFunc(func(_ context.Context, kind uint8, body []byte) (uint8, []byte, error) {
		switch string(body) {
		case "fail":
			return 0, nil, errors.New("unknown topic logs")
		case "panic":
			panic("boom")
		}
		return kind, body, nil
	}))
	c := newClient(t, m.addr)
	ctx := context.Background()

	_, _, err := c.Call(ctx, 1, []byte("fail"))
	var re *RemoteError
	if !errors.As(err, &re) || re.Msg != "unknown topic logs" {
		t.Fatalf("handler error: got %v, want RemoteError{unknown topic logs}", err)
	}
	_, _, err = c.Call(ctx, 1, []byte("panic"))
	if !errors.As(err, &re) || re.Msg != "panic: boom" {
		t.Fatalf("handler panic: got %v, want RemoteError{panic: boom}", err)
	}
	// The server survived and the connection is still good.
	if _, body, err := c.Call(ctx, 1, []byte("ok")); err != nil || string(body) != "ok" {
		t.Fatalf("after panic: %q, %v", body, err)
	}
	if n := m.ln.accepted.Load(); n != 1 {
		t.Fatalf("server accepted %d connections, want 1", n)
	}
}

func TestRPCNotReadyUntilHandlerSet(t *testing.T) {
	checkNoLeaks(t, false)
	m := startMux(t, "127.0.0.1:0", nil)
	c := newClient(t, m.addr)
	_, _, err := c.Call(context.Background(), 1, []byte("x"))
	var re *RemoteError
	if !errors.As(err, &re) || re.Msg != MsgNotReady {
		t.Fatalf("before SetRPCHandler: got %v, want RemoteError{not ready}", err)
	}
	m.SetRPCHandler(echo)
	if _, _, err := c.Call(context.Background(), 1, []byte("x")); err != nil {
		t.Fatalf("after SetRPCHandler: %v", err)
	}
}

func TestRPCRepliesOutOfOrder(t *testing.T) {
	checkNoLeaks(t, false)
	fastDone := make(chan struct{})
	m := startMux(t, "127.0.0.1:0", HandlerFunc(func(ctx context.Context, kind uint8, body []byte) (uint8, []byte, error) {
		if string(body) == "slow" {
			select { // finishes only after "fast" has replied
			case <-fastDone:
			case <-ctx.Done():
			}
		}
		return kind, body, nil
	}))
	c := newClient(t, m.addr)
	slow := make(chan error, 1)
	go func() {
		_, body, err := c.Call(context.Background(), 1, []byte("slow"))
		if err == nil && string(body) != "slow" {
			err = fmt.Errorf("slow got %q", body)
		}
		slow <- err
	}()
	_, body, err := c.Call(context.Background(), 1, []byte("fast"))
	if err != nil || string(body) != "fast" {
		t.Fatalf("fast: %q %v", body, err)
	}
	close(fastDone)
	if err := recv(t, "slow reply", slow); err != nil {
		t.Fatal(err)
	}
}

func TestRPC10000PipelinedCalls(t *testing.T) {
	checkNoLeaks(t, false)
	var inFlight, peak atomic.Int64
	m := startMux(t, "127.0.0.1:0", HandlerFunc(func(_ context.Context, kind uint8, body []byte) (uint8, []byte, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		return kind, body, nil
	}))
	c := newClient(t, m.addr)

	const n = 10000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	wg.Add(n)
	for i := range n {
		body := binary.LittleEndian.AppendUint64(nil, uint64(i))
		kind := uint8(i % 200) // below the reserved kinds
		c.Go(kind, body, time.Now().Add(30*time.Second), func(gotKind uint8, got []byte, err error) {
			defer wg.Done()
			switch {
			case err != nil:
				errs <- fmt.Errorf("call %d: %w", i, err)
			case gotKind != kind || !bytes.Equal(got, body):
				errs <- fmt.Errorf("call %d: got kind %d body %x", i, gotKind, got)
			}
		})
	}
	// Half of them again through Call, from 100 goroutines.
	for g := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				body := []byte(fmt.Sprintf("g%d-%d", g, j))
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				_, got, err := c.Call(ctx, 3, body)
				cancel()
				if err != nil || !bytes.Equal(got, body) {
					errs <- fmt.Errorf("Call %s: %q %v", body, got, err)
					return
				}
			}
		}()
	}
	waited := make(chan struct{})
	go func() { wg.Wait(); close(waited) }()
	recv(t, "15,000 replies", waited)
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if a := m.ln.accepted.Load(); a != 1 {
		t.Errorf("server accepted %d connections, want 1", a)
	}
	t.Logf("peak concurrent handlers on one connection: %d", peak.Load())
}

func TestRPCDeadlines(t *testing.T) {
	checkNoLeaks(t, false)
	release := make(chan struct{})
	m := startMux(t, "127.0.0.1:0", HandlerFunc(func(ctx context.Context, kind uint8, body []byte) (uint8, []byte, error) {
		if string(body) == "block" {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return kind, body, nil
	}))
	c := newClient(t, m.addr)

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, _, err := c.Call(ctx, 1, []byte("block")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Call past its deadline: %v, want context.DeadlineExceeded", err)
	}
	done := make(chan error, 1)
	c.Go(1, []byte("block"), time.Now().Add(50*time.Millisecond), func(_ uint8, _ []byte, err error) { done <- err })
	if err := recv(t, "Go deadline", done); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Go past its deadline: %v, want context.DeadlineExceeded", err)
	}
	c.Go(1, []byte("x"), time.Now().Add(-time.Second), func(_ uint8, _ []byte, err error) { done <- err })
	if err := recv(t, "Go with a passed deadline", done); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Go with a passed deadline: %v", err)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if _, _, err := c.Call(cctx, 1, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Call with a cancelled context: %v", err)
	}
	// Late replies to abandoned calls are dropped; the connection is fine.
	close(release)
	if _, body, err := c.Call(context.Background(), 1, []byte("after")); err != nil || string(body) != "after" {
		t.Fatalf("after deadlines: %q %v", body, err)
	}
	if a := m.ln.accepted.Load(); a != 1 {
		t.Errorf("server accepted %d connections, want 1", a)
	}
}

func TestRPCServerKilledMidCallThenBack(t *testing.T) {
	checkNoLeaks(t, false)
	entered := make(chan struct{}, 1)
	blocking := HandlerFunc(func(ctx context.Context, kind uint8, body []byte) (uint8, []byte, error) {
		if string(body) == "hang" {
			entered <- struct{}{}
			<-ctx.Done() // until the server dies
		}
		return kind, body, nil
	})
	m := startMux(t, "127.0.0.1:0", blocking)
	addr := m.addr
	c := newClient(t, addr, WithBackoff(20*time.Millisecond, 200*time.Millisecond))

	result := make(chan error, 1)
	go func() {
		_, _, err := c.Call(context.Background(), 1, []byte("hang"))
		result <- err
	}()
	recv(t, "handler to start", entered)
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	if err := recv(t, "in-flight call to fail", result); !errors.Is(err, ErrPeerUnavailable) || errors.Is(err, ErrNotSent) {
		t.Fatalf("in-flight call when the server died: %v, want ErrPeerUnavailable without ErrNotSent (it was sent)", err)
	}

	// While the server is down calls fail, fast, with ErrPeerUnavailable.
	for range 5 {
		start := time.Now()
		_, _, err := c.Call(context.Background(), 1, []byte("x"))
		if !errors.Is(err, ErrPeerUnavailable) || !errors.Is(err, ErrNotSent) {
			t.Fatalf("call while down: %v, want ErrPeerUnavailable and ErrNotSent", err)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Fatalf("call while down took %v", d)
		}
	}

	// Back on the same address: the client recovers by itself.
	startMux(t, addr, blocking)
	waitFor(t, "a call to succeed after the server came back", func() bool {
		_, body, err := c.Call(context.Background(), 1, []byte("again"))
		return err == nil && string(body) == "again"
	})
}

func TestClientBacksOffWithoutDialing(t *testing.T) {
	checkNoLeaks(t, false)
	var dials atomic.Int64
	dial := func(ctx context.Context, addr string) (net.Conn, error) {
		dials.Add(1)
		return nil, errors.New("connection refused (simulated)")
	}
	c := NewClient("peer:1", dial, testLogger(t), WithBackoff(time.Hour, time.Hour))
	defer c.Close()
	for i := range 3 { // first failure: retried at once; then back-off
		_, _, err := c.Call(context.Background(), 1, nil)
		if !errors.Is(err, ErrPeerUnavailable) || !errors.Is(err, ErrNotSent) {
			t.Fatalf("call %d: %v, want ErrPeerUnavailable and ErrNotSent (never dialed)", i, err)
		}
	}
	if n := dials.Load(); n != 2 {
		t.Fatalf("%d dials, want 2 (the rest fail fast during back-off)", n)
	}
	errs := make(chan error, 1)
	c.Go(1, nil, time.Time{}, func(_ uint8, _ []byte, err error) { errs <- err })
	if err := recv(t, "Go during back-off", errs); !errors.Is(err, ErrPeerUnavailable) {
		t.Fatalf("Go during back-off: %v", err)
	}
}

func TestClientDialTimeout(t *testing.T) {
	checkNoLeaks(t, false)
	hang := func(ctx context.Context, addr string) (net.Conn, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	}
	c := NewClient("peer:1", hang, testLogger(t), WithDialTimeout(50*time.Millisecond))
	defer c.Close()
	if _, _, err := c.Call(context.Background(), 1, nil); !errors.Is(err, ErrPeerUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call with a hanging dial: %v, want ErrPeerUnavailable wrapping DeadlineExceeded", err)
	}
}

func TestClientClose(t *testing.T) {
	checkNoLeaks(t, false)
	entered := make(chan struct{}, 1)
	m := startMux(t, "127.0.0.1:0", HandlerFunc(func(ctx context.Context, kind uint8, body []byte) (uint8, []byte, error) {
		entered <- struct{}{}
		<-ctx.Done()
		return kind, body, nil
	}))
	c := NewClient(m.addr, tcpDial, testLogger(t))
	result := make(chan error, 2)
	go func() {
		_, _, err := c.Call(context.Background(), 1, nil)
		result <- err
	}()
	recv(t, "handler to start", entered)
	c.Go(1, nil, time.Time{}, func(_ uint8, _ []byte, err error) { result <- err })
	recv(t, "second handler to start", entered)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := recv(t, "in-flight call to fail", result); !errors.Is(err, ErrClosed) {
			t.Fatalf("in-flight call at Close: %v, want ErrClosed", err)
		}
	}
	if _, _, err := c.Call(context.Background(), 1, nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("call after Close: %v, want ErrClosed", err)
	}
	_ = c.Close() // idempotent
}

func TestServerDisconnectsGarbageAndKeepsServing(t *testing.T) {
	checkNoLeaks(t, false)
	m := startMux(t, "127.0.0.1:0", echo, WithServerMaxFrame(1<<10), WithHandshakeTimeout(100*time.Millisecond))
	good := newClient(t, m.addr)
	call := func() {
		t.Helper()
		if _, body, err := good.Call(context.Background(), 1, []byte("still here")); err != nil || string(body) != "still here" {
			t.Fatalf("well-behaved client: %q %v", body, err)
		}
	}
	call()
	for _, tc := range []struct {
		name string
		send []byte
	}{
		{"unknown first byte", []byte("GET / HTTP/1.1\r\n\r\n")},
		{"nul first byte", []byte{0}},
		{"silent", nil}, // handshake timeout
		{"zero-length frame", []byte{RPCByte, 0, 0, 0, 0}},
		{"frame shorter than its header", []byte{RPCByte, 8, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}},
		{"frame over the limit", append([]byte{RPCByte}, binary.LittleEndian.AppendUint32(nil, 1<<10+1)...)},
		{"huge frame", []byte{RPCByte, 0xFF, 0xFF, 0xFF, 0xFF}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			waitClosedByPeer(t, rawConn(t, m.addr, tc.send))
			call()
		})
	}
	// A good frame after a raw 'W' works, then garbage closes it.
	c := rawConn(t, m.addr, []byte{RPCByte})
	if _, err := c.Write(wire.AppendPeerFrame(nil, 4, 77, []byte("raw"))); err != nil {
		t.Fatal(err)
	}
	f, err := wire.NewPeerReader(c, 0).ReadPeerFrame()
	if err != nil || f.Kind != 5 || f.ID != 77 || string(f.Body) != "raw" {
		t.Fatalf("raw RPC: %+v %v", f, err)
	}
	if _, err := c.Write([]byte{0, 0, 0, 0}); err != nil {
		t.Fatal(err)
	}
	waitClosedByPeer(t, c)
	call()
}

func TestServerRefusesOversizedReply(t *testing.T) {
	checkNoLeaks(t, false)
	m := startMux(t, "127.0.0.1:0", HandlerFunc(func(context.Context, uint8, []byte) (uint8, []byte, error) {
		return 1, make([]byte, 2<<10), nil
	}), WithServerMaxFrame(1<<10))
	c := newClient(t, m.addr)
	_, _, err := c.Call(context.Background(), 1, nil)
	var re *RemoteError
	if !errors.As(err, &re) {
		t.Fatalf("oversized reply: %v, want a RemoteError", err)
	}
}

func TestMuxCloseCancelsHandlers(t *testing.T) {
	checkNoLeaks(t, false)
	entered := make(chan struct{}, 1)
	cancelled := make(chan struct{})
	m := startMux(t, "127.0.0.1:0", HandlerFunc(func(ctx context.Context, kind uint8, body []byte) (uint8, []byte, error) {
		entered <- struct{}{}
		<-ctx.Done()
		close(cancelled)
		return kind, body, nil
	}))
	c := newClient(t, m.addr)
	go func() { _, _, _ = c.Call(context.Background(), 1, nil) }()
	recv(t, "handler to start", entered)
	_ = m.Close()
	recv(t, "handler context to be cancelled", cancelled)
}

func TestServerBoundsInFlightPerConnection(t *testing.T) {
	checkNoLeaks(t, false)
	var inFlight, peak atomic.Int64
	release := make(chan struct{})
	m := startMux(t, "127.0.0.1:0", HandlerFunc(func(ctx context.Context, kind uint8, body []byte) (uint8, []byte, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		<-release
		return kind, body, nil
	}), WithMaxInFlight(4))
	c := newClient(t, m.addr)
	const calls = 20
	done := make(chan error, calls)
	for range calls {
		c.Go(1, nil, time.Time{}, func(_ uint8, _ []byte, err error) { done <- err })
	}
	waitFor(t, "4 handlers running", func() bool { return inFlight.Load() == 4 })
	close(release)
	for range calls {
		if err := recv(t, "reply", done); err != nil {
			t.Fatal(err)
		}
	}
	if p := peak.Load(); p != 4 {
		t.Fatalf("peak concurrent handlers %d, want 4", p)
	}
}

func TestClientRefusesOversizedRequest(t *testing.T) {
	checkNoLeaks(t, false)
	m := startMux(t, "127.0.0.1:0", echo, WithServerMaxFrame(1<<10))
	c := newClient(t, m.addr, WithClientMaxFrame(1<<10))
	if _, _, err := c.Call(context.Background(), 1, make([]byte, 1<<10)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversized request: %v, want ErrTooLarge", err)
	}
	body := make([]byte, 1<<10-(wire.PeerHeaderLen-4)) // exactly at the limit
	if _, got, err := c.Call(context.Background(), 1, body); err != nil || len(got) != len(body) {
		t.Fatalf("request at the limit: %d bytes, %v", len(got), err)
	}
}

// TestGoAppend: a body appended straight into the send buffer arrives as
// Go's would, among plain calls; one over the limit fails with
// ErrTooLarge, sends nothing and leaves the connection usable.
func TestGoAppend(t *testing.T) {
	checkNoLeaks(t, false)
	m := startMux(t, "127.0.0.1:0", echo, WithServerMaxFrame(1<<10))
	c := newClient(t, m.addr, WithClientMaxFrame(1<<10))
	limit := 1<<10 - (wire.PeerHeaderLen - 4)
	type res struct {
		body []byte
		err  error
	}
	done := make(chan res, 4)
	cb := func(_ uint8, b []byte, err error) { done <- res{b, err} }
	c.GoAppend(1, func(dst []byte) []byte { return append(dst, "one"...) }, time.Time{}, cb)
	c.GoAppend(1, func(dst []byte) []byte { return append(dst, make([]byte, limit+1)...) }, time.Time{}, cb)
	c.Go(1, []byte("two"), time.Time{}, cb)
	c.GoAppend(1, func(dst []byte) []byte { return append(dst, make([]byte, limit)...) }, time.Time{}, cb)
	// the oversized call fails at once, the others are answered; the
	// callbacks come in whatever order the reader and the callers reach them
	got, tooLarge := map[int]int{}, 0
	for range 4 {
		r := recv(t, "reply", done)
		switch {
		case errors.Is(r.err, ErrTooLarge):
			tooLarge++
		case r.err != nil:
			t.Fatal(r.err)
		default:
			got[len(r.body)]++
		}
	}
	if tooLarge != 1 || got[3] != 2 || got[limit] != 1 {
		t.Fatalf("%d ErrTooLarge (want 1), reply sizes %v (want 3 twice and %d once)", tooLarge, got, limit)
	}
}

// orderedEcho takes kind 7 on the reader goroutine and answers from a single
// worker goroutine, recording arrival order.
type orderedEcho struct {
	HandlerFunc
	work chan func()
	seen chan []byte
}

func (o *orderedEcho) Dispatch(kind uint8, body []byte, reply func(uint8, []byte, error)) bool {
	if kind != 7 {
		return false
	}
	o.seen <- body
	o.work <- func() { reply(kind, body, nil) }
	return true
}

func TestOrderedHandlerKeepsPipelineOrder(t *testing.T) {
	checkNoLeaks(t, false)
	o := &orderedEcho{
		HandlerFunc: func(ctx context.Context, kind uint8, body []byte) (uint8, []byte, error) { return kind, body, nil },
		work:        make(chan func(), 2000),
		seen:        make(chan []byte, 2000),
	}
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case f := <-o.work:
				f()
			case <-done:
				return
			}
		}
	}()
	m := startMux(t, "127.0.0.1:0", o)
	c := newClient(t, m.addr)
	const n = 1000
	results := make(chan error, n)
	for i := range n {
		c.Go(7, []byte(strconv.Itoa(i)), time.Time{}, func(_ uint8, b []byte, err error) {
			if err == nil && string(b) != strconv.Itoa(i) {
				err = fmt.Errorf("reply %q for request %d", b, i)
			}
			results <- err
		})
	}
	for range n {
		if err := recv(t, "ordered reply", results); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		if got := string(<-o.seen); got != strconv.Itoa(i) {
			t.Fatalf("dispatch %d saw request %q: order lost", i, got)
		}
	}
	// kinds the handler does not take still go through Handle
	if _, b, err := c.Call(context.Background(), 3, []byte("x")); err != nil || string(b) != "x" {
		t.Fatalf("fallback to Handle: %q %v", b, err)
	}
}
