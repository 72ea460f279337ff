package client

import (
	"bufio"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walrus-go/walrus/wire"
)

// fakeServer is a scripted node for tests of the client's own logic
// (pipelining, retry rules, timeouts) that a real cluster cannot produce on
// demand. It reads frames, asks handle what to do with each, and answers in
// order like the real server.
type fakeServer struct {
	t      *testing.T
	ln     net.Listener
	handle func(req string) fakeAction

	mu    sync.Mutex
	reqs  []string
	conns map[net.Conn]bool
	wg    sync.WaitGroup
}

// fakeAction is what the fake does with one request.
type fakeAction struct {
	reply string // reply body
	// drop closes the connection instead of replying: the client has
	// written the request and will never hear back.
	drop bool
	// hold delays the reply until the channel is closed (replies to later
	// requests on the connection wait behind it, as on the real server).
	hold chan struct{}
}

func reply(s string) fakeAction { return fakeAction{reply: s} }

func newFakeServer(t *testing.T, handle func(req string) fakeAction) *fakeServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &fakeServer{t: t, ln: ln, handle: handle, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.close)
	return s
}

func (s *fakeServer) addr() string { return s.ln.Addr().String() }

func (s *fakeServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = true
		s.mu.Unlock()
		s.wg.Add(1)
		go s.serve(c)
	}
}

// serve reads requests as they come (so a client may pipeline) and answers
// them strictly in order from a second goroutine.
func (s *fakeServer) serve(c net.Conn) {
	defer s.wg.Done()
	defer c.Close()
	actions := make(chan fakeAction, 1<<16)
	done := make(chan struct{})
	go func() {
		defer close(done)
		w := bufio.NewWriter(c)
		for a := range actions {
			if a.hold != nil {
				<-a.hold
			}
			if a.drop {
				c.Close()
				return
			}
			if err := wire.WriteFrame(w, []byte(a.reply)); err != nil {
				return
			}
			if len(actions) == 0 {
				if w.Flush() != nil {
					return
				}
			}
		}
	}()
	fr := wire.NewFrameReader(c, 64<<20)
	for {
		body, err := fr.ReadFrame()
		if err != nil {
			break
		}
		req := string(body)
		s.mu.Lock()
		s.reqs = append(s.reqs, req)
		s.mu.Unlock()
		a := s.handle(req)
		actions <- a
		if a.drop {
			break
		}
	}
	close(actions)
	<-done
}

// requests returns the requests received so far, in arrival order.
func (s *fakeServer) requests() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.reqs...)
}

// count returns how many requests began with prefix.
func (s *fakeServer) count(prefix string) int {
	n := 0
	for _, r := range s.requests() {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

func (s *fakeServer) close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// fastRetry retries quickly, for tests.
var fastRetry = WithRetry(RetryPolicy{Attempts: 5, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond})

func dialFake(t *testing.T, addrs []string, opts ...Option) *Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	opts = append([]Option{WithSmartRouting(false), fastRetry}, opts...)
	c, err := Dial(ctx, addrs, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitFor polls cond until it holds or d passes, then fails naming what it
// waited for.
func waitFor(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestFakePipeliningMatchesRepliesInOrder(t *testing.T) {
	const n = 200
	// Replies are held until every request has arrived: a client that
	// waited for each reply before sending the next request would stall.
	all := make(chan struct{})
	var mu sync.Mutex
	seen := 0
	s := newFakeServer(t, func(req string) fakeAction {
		mu.Lock()
		defer mu.Unlock()
		seen++
		if seen == n {
			close(all)
		}
		return fakeAction{reply: "OK echo " + req, hold: all}
	})
	c := dialFake(t, []string{s.addr()}, WithPoolSize(1))
	ctx := testCtx(t, 20*time.Second)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := "READ t " + string(rune('a'+i%26)) + strings.Repeat("x", i)
			got, err := c.Do(ctx, []byte(req))
			if err != nil {
				errs <- err
				return
			}
			if string(got) != "OK echo "+req {
				errs <- errors.New("reply " + string(got) + " for request " + req)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if d := c.poolFor(s.addr()).maxDepth(); d < 2 {
		t.Fatalf("deepest pipeline %d: requests were not pipelined", d)
	}
}

func TestFakePutOutcomeUnknownIsNotRetried(t *testing.T) {
	s := newFakeServer(t, func(req string) fakeAction { return fakeAction{drop: true} })
	c := dialFake(t, []string{s.addr()})
	err := c.Put(testCtx(t, 10*time.Second), "t", []byte("x"))
	if !IsOutcomeUnknown(err) || !errors.Is(err, ErrOutcomeUnknown) {
		t.Fatalf("Put over a dropped connection: %v, want an outcome-unknown error", err)
	}
	if got := s.count("PUT "); got != 1 {
		t.Fatalf("server saw %d PUTs, want exactly 1 (no automatic retry)", got)
	}
	if _, err := c.PutBatch(testCtx(t, 10*time.Second), "t", [][]byte{[]byte("a")}); !IsOutcomeUnknown(err) {
		t.Fatalf("PutBatch: %v", err)
	}
	if got := s.count("MPUT "); got != 1 {
		t.Fatalf("server saw %d MPUTs, want exactly 1", got)
	}
}

func TestFakePutOutcomeUnknownRetriedWhenOptedIn(t *testing.T) {
	var mu sync.Mutex
	n := 0
	s := newFakeServer(t, func(req string) fakeAction {
		mu.Lock()
		defer mu.Unlock()
		n++
		switch n {
		case 1:
			return fakeAction{drop: true}
		case 2:
			return reply("ERR unavailable: peer gone (outcome unknown)")
		}
		return reply("OK")
	})
	c := dialFake(t, []string{s.addr()}, RetryUnknownWrites(true))
	if err := c.Put(testCtx(t, 10*time.Second), "t", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if got := s.count("PUT t x"); got != 3 {
		t.Fatalf("server saw %d PUTs, want 3", got)
	}

	// a retry that fails for good still reports the first attempt's doubt
	var dropped bool
	s2 := newFakeServer(t, func(req string) fakeAction {
		mu.Lock()
		defer mu.Unlock()
		if !dropped {
			dropped = true
			return fakeAction{drop: true}
		}
		return reply("ERR unknown topic t")
	})
	c2 := dialFake(t, []string{s2.addr()}, RetryUnknownWrites(true))
	err := c2.Put(testCtx(t, 10*time.Second), "t", []byte("x"))
	var se *ServerError
	if !errors.As(err, &se) || se.Msg != "unknown topic t" || !IsOutcomeUnknown(err) {
		t.Fatalf("got %v, want the server's error marked outcome unknown", err)
	}
}

func TestFakeServerOutcomeUnknownIsNotRetried(t *testing.T) {
	const msg = "unavailable: rpc to node 2: peer unavailable (outcome unknown)"
	s := newFakeServer(t, func(req string) fakeAction { return reply("ERR " + msg) })
	c := dialFake(t, []string{s.addr()})
	err := c.Put(testCtx(t, 10*time.Second), "t", []byte("x"))
	var se *ServerError
	if !errors.As(err, &se) || se.Msg != msg || err.Error() != msg || !IsOutcomeUnknown(err) {
		t.Fatalf("got %v, want ServerError %q", err, msg)
	}
	if got := s.count("PUT "); got != 1 {
		t.Fatalf("server saw %d PUTs, want 1", got)
	}
}

func TestFakeNotLeaderAndUnavailableAreRetried(t *testing.T) {
	var mu sync.Mutex
	n := map[string]int{}
	s := newFakeServer(t, func(req string) fakeAction {
		mu.Lock()
		defer mu.Unlock()
		cmd, _, _ := strings.Cut(req, " ")
		n[cmd]++
		if n[cmd] <= 2 {
			if cmd == "PUT" {
				return reply("ERR NotLeaderForPartition: t/1")
			}
			return reply("ERR unavailable: no raft leader")
		}
		return reply("OK")
	})
	c := dialFake(t, []string{s.addr()})
	ctx := testCtx(t, 10*time.Second)
	if err := c.Put(ctx, "t", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := c.Register(ctx, "t"); err != nil {
		t.Fatal(err)
	}
	if got := s.count("PUT "); got != 3 {
		t.Fatalf("PUT sent %d times, want 3", got)
	}
	if got := s.count("REGISTER "); got != 3 {
		t.Fatalf("REGISTER sent %d times, want 3", got)
	}
}

func TestFakeRetriesRunOut(t *testing.T) {
	s := newFakeServer(t, func(req string) fakeAction { return reply("ERR NotLeaderForPartition: t/7") })
	c := dialFake(t, []string{s.addr()}, WithRetry(RetryPolicy{Attempts: 3, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond}))
	err := c.Put(testCtx(t, 10*time.Second), "t", []byte("x"))
	if !IsNotLeader(err) || err.Error() != "NotLeaderForPartition: t/7" {
		t.Fatalf("got %v", err)
	}
	if got := s.count("PUT "); got != 3 {
		t.Fatalf("PUT sent %d times, want 3 (Attempts)", got)
	}
}

func TestFakeGetIsNeverRetriedOnceWritten(t *testing.T) {
	s := newFakeServer(t, func(req string) fakeAction {
		if strings.HasPrefix(req, "GETW") {
			return reply("ERR unavailable: read timed out")
		}
		return fakeAction{drop: true}
	})
	c := dialFake(t, []string{s.addr()})
	ctx := testCtx(t, 10*time.Second)
	if _, _, err := c.Get(ctx, "t"); !IsOutcomeUnknown(err) {
		t.Fatalf("Get: %v, want outcome unknown", err)
	}
	if _, _, err := c.GetWait(ctx, "t", time.Second); err == nil || err.Error() != "unavailable: read timed out" {
		t.Fatalf("GetWait: %v", err)
	}
	if got, want := s.requests(), []string{"GET t", "GETW t 1000"}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("server saw %q, want %q", got, want)
	}
}

func TestFakeIdempotentRetriedAfterDrop(t *testing.T) {
	var mu sync.Mutex
	n := 0
	s := newFakeServer(t, func(req string) fakeAction {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n == 1 {
			return fakeAction{drop: true}
		}
		return reply("OK 5 1\n\x01\x00\x00\x00z")
	})
	c := dialFake(t, []string{s.addr()})
	first, entries, err := c.Read(testCtx(t, 10*time.Second), "t", 5, 10)
	if err != nil || first != 5 || len(entries) != 1 || string(entries[0]) != "z" {
		t.Fatalf("Read: %d %q %v", first, entries, err)
	}
	if got := s.count("READ t 5 10"); got != 2 {
		t.Fatalf("READ sent %d times, want 2", got)
	}
}

func TestFakeUnreachableSeedIsSkipped(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()
	s := newFakeServer(t, func(req string) fakeAction { return reply("OK") })
	c := dialFake(t, []string{deadAddr, s.addr()})
	for range 10 {
		// every request that lands on the dead node fails before it is
		// written and goes to the live one
		if err := c.Put(testCtx(t, 10*time.Second), "t", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.count("PUT "); got != 10 {
		t.Fatalf("live node saw %d PUTs, want 10", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Dial(ctx, []string{deadAddr}); err == nil {
		t.Fatal("Dial to a dead address succeeded")
	}
	if _, err := Dial(ctx, nil); !errors.Is(err, ErrNoNodes) {
		t.Fatalf("Dial(nil): %v", err)
	}
}

func TestFakeRequestTimeout(t *testing.T) {
	never := make(chan struct{})
	defer close(never)
	release := make(chan struct{})
	s := newFakeServer(t, func(req string) fakeAction {
		switch {
		case req == "PUT t first":
			return fakeAction{reply: "OK", hold: never}
		case strings.HasPrefix(req, "GETW"):
			return fakeAction{reply: "OK late", hold: release}
		}
		return reply("OK")
	})
	c := dialFake(t, []string{s.addr()}, WithRequestTimeout(50*time.Millisecond), WithPoolSize(1))
	ctx := testCtx(t, 10*time.Second)
	err := c.Put(ctx, "t", []byte("first"))
	if !errors.Is(err, ErrTimeout) || !IsOutcomeUnknown(err) {
		t.Fatalf("got %v, want a timeout with unknown outcome", err)
	}
	if got := s.count("PUT "); got != 1 {
		t.Fatalf("PUT sent %d times, want 1", got)
	}
	// the silent connection was dropped: the next request gets a new one
	mustOK(t, "Put after a timeout", c.Put(ctx, "t", []byte("second")))

	// a GETW may take its wait on top of the request timeout
	got := make(chan error, 1)
	go func() {
		p, ok, err := c.GetWait(ctx, "t", 5*time.Second)
		if err == nil && (!ok || string(p) != "late") {
			err = errors.New("GetWait returned " + string(p))
		}
		got <- err
	}()
	waitFor(t, "GETW received", 5*time.Second, func() bool { return s.count("GETW") == 1 })
	time.Sleep(100 * time.Millisecond) // twice the request timeout
	close(release)
	mustOK(t, "GetWait held longer than the request timeout", <-got)

	// a cancelled context ends the call too, and is not retried
	cctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.State(cctx, "t"); !errors.Is(err, context.Canceled) {
		t.Fatalf("State with a cancelled context: %v", err)
	}
}

func TestFakeTooLargeIsRefusedLocally(t *testing.T) {
	s := newFakeServer(t, func(req string) fakeAction { return reply("OK") })
	c := dialFake(t, []string{s.addr()}, WithMaxFrame(100))
	ctx := testCtx(t, 10*time.Second)
	if err := c.Put(ctx, "t", make([]byte, 200)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Put: %v", err)
	}
	if _, err := c.PutBatch(ctx, "t", [][]byte{make([]byte, 200)}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("PutBatch: %v", err)
	}
	// an entry whose request fits the frame, but whose READ reply would
	// not (wire.MaxEntrySize(100) = 70): refused before anything is sent
	if err := c.Put(ctx, "t", make([]byte, 71)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Put of 71 bytes under a 100-byte frame limit: %v", err)
	}
	if _, err := c.PutBatch(ctx, "t", [][]byte{[]byte("a"), make([]byte, 71)}); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("PutBatch with a 71-byte entry: %v", err)
	}
	if got := len(s.requests()); got != 0 {
		t.Fatalf("server saw %d requests, want none", got)
	}
	if err := c.Put(ctx, "t", make([]byte, 70)); err != nil {
		t.Fatalf("Put of 70 bytes: %v", err)
	}
}

func TestFakePutBatchSplitsAndCollectsRanges(t *testing.T) {
	var mu sync.Mutex
	next := uint64(0)
	s := newFakeServer(t, func(req string) fakeAction {
		r, err := wire.ParseRequest([]byte(req))
		if err != nil {
			return reply("ERR " + err.Error())
		}
		mu.Lock()
		defer mu.Unlock()
		n := uint64(len(r.Entries))
		first := next
		next += n
		if n > 1 { // pretend a rollover split it
			return reply("OK " + u(first) + " 1 " + u(first+1) + " " + u(n-1))
		}
		return reply("OK " + u(first) + " " + u(n))
	})
	c := dialFake(t, []string{s.addr()}, WithMaxFrame(64))
	payloads := make([][]byte, 10)
	for i := range payloads {
		payloads[i] = []byte(strings.Repeat("p", 10))
	}
	rs, err := c.PutBatch(testCtx(t, 10*time.Second), "t", payloads)
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	want := uint64(0)
	for _, r := range rs {
		if r.First != want {
			t.Fatalf("ranges %v: not contiguous", rs)
		}
		want += uint64(r.Count)
		total += r.Count
	}
	if total != 10 || s.count("MPUT ") < 3 {
		t.Fatalf("ranges %v over %d MPUTs", rs, s.count("MPUT "))
	}
	if rs, err := c.PutBatch(testCtx(t, time.Second), "t", nil); rs != nil || err != nil {
		t.Fatalf("empty batch: %v %v", rs, err)
	}
}

func TestFakeSmartRoutingSendsWritesToLeader(t *testing.T) {
	leader := newFakeServer(t, func(req string) fakeAction { return reply("OK") })
	var mu sync.Mutex
	notLeaderOnce := false
	other := newFakeServer(t, func(req string) fakeAction {
		if strings.HasPrefix(req, "LEADER ") {
			return reply("OK 3 2 " + leader.addr())
		}
		mu.Lock()
		defer mu.Unlock()
		if !notLeaderOnce {
			notLeaderOnce = true
			return reply("ERR NotLeaderForPartition: t/3")
		}
		return reply("OK")
	})
	c := dialFake(t, []string{other.addr()}, WithSmartRouting(true))
	ctx := testCtx(t, 10*time.Second)
	for range 5 {
		if err := c.Put(ctx, "t", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if got := leader.count("PUT "); got != 5 {
		t.Fatalf("leader saw %d PUTs, want 5", got)
	}
	if got := other.count("LEADER t"); got != 1 {
		t.Fatalf("LEADER asked %d times, want 1 (cached)", got)
	}
	seg, node, addr, err := c.Leader(ctx, "t")
	if err != nil || seg != 3 || node != 2 || addr != leader.addr() {
		t.Fatalf("Leader: %d %d %q %v", seg, node, addr, err)
	}
}

// leaderTTL shortens how long the client trusts a LEADER answer.
func leaderTTL(d time.Duration) Option { return func(c *config) { c.leaderTTL = d } }

// leaderNamer is a node whose first LEADER answer names leader (segment
// 1, node 1), whose later LEADER answers are later, and which answers
// every other request OK.
func leaderNamer(t *testing.T, leader string, later fakeAction) *fakeServer {
	var mu sync.Mutex
	asked := 0
	return newFakeServer(t, func(req string) fakeAction {
		if !strings.HasPrefix(req, "LEADER ") {
			return reply("OK")
		}
		mu.Lock()
		defer mu.Unlock()
		if asked++; asked == 1 {
			return reply("OK 1 1 " + leader)
		}
		return later
	})
}

// Once the cached leader expires, writes keep going to it while one
// LEADER lookup runs beside them; none waits for that lookup, and the
// answer, when it comes, moves the writes.
func TestFakeLeaderRefreshDoesNotHoldWrites(t *testing.T) {
	first := newFakeServer(t, func(req string) fakeAction { return reply("OK") })
	second := newFakeServer(t, func(req string) fakeAction { return reply("OK") })
	release := make(chan struct{})
	// the lookups after the first hang until released
	other := leaderNamer(t, first.addr(), fakeAction{reply: "OK 2 2 " + second.addr(), hold: release})
	var releaseOnce sync.Once
	releaseLookups := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(releaseLookups) // before the servers close: a held reply would keep them open
	c := dialFake(t, []string{other.addr()}, WithSmartRouting(true), leaderTTL(20*time.Millisecond))
	ctx := testCtx(t, 10*time.Second)
	if err := c.Put(ctx, "t", []byte("x")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(40 * time.Millisecond) // the answer has expired
	for range 5 {
		// each write must not wait for the hanging lookup
		if err := c.Put(testCtx(t, 2*time.Second), "t", []byte("x")); err != nil {
			t.Fatalf("a write after the leader expired: %v", err)
		}
	}
	if got := first.count("PUT "); got != 6 {
		t.Fatalf("the expired leader saw %d PUTs, want 6", got)
	}
	waitFor(t, "the refresh to be asked", 5*time.Second, func() bool { return other.count("LEADER t") >= 2 })
	if got := other.count("LEADER t"); got != 2 {
		t.Fatalf("LEADER asked %d times, want 2 (one refresh at a time)", got)
	}
	releaseLookups()
	waitFor(t, "writes to move to the node the refresh named", 5*time.Second, func() bool {
		return c.Put(ctx, "t", []byte("x")) == nil && second.count("PUT ") > 0
	})
}

// A refresh that fails keeps writes on the node they went to, rather
// than send them through any node.
func TestFakeFailedLeaderRefreshKeepsTheLeader(t *testing.T) {
	leader := newFakeServer(t, func(req string) fakeAction { return reply("OK") })
	other := leaderNamer(t, leader.addr(), reply("ERR unavailable: no raft leader"))
	c := dialFake(t, []string{other.addr()}, WithSmartRouting(true), leaderTTL(10*time.Millisecond))
	ctx := testCtx(t, 10*time.Second)
	if err := c.Put(ctx, "t", []byte("x")); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if err := c.Put(ctx, "t", []byte("x")); err != nil { // starts a refresh, which fails
		t.Fatal(err)
	}
	waitFor(t, "the refresh to be asked", 5*time.Second, func() bool { return other.count("LEADER t") >= 2 })
	for range 5 {
		if err := c.Put(ctx, "t", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if got, all := leader.count("PUT "), 7; got != all || other.count("PUT ") != 0 {
		t.Fatalf("leader saw %d of %d PUTs, the other node %d", got, all, other.count("PUT "))
	}
}

func TestFakeReferenceServerWithoutLeaderCommand(t *testing.T) {
	s := newFakeServer(t, func(req string) fakeAction {
		if strings.HasPrefix(req, "PUT ") {
			return reply("OK")
		}
		return reply("ERR unknown command")
	})
	c := dialFake(t, []string{s.addr()}, WithSmartRouting(true))
	for range 3 {
		if err := c.Put(testCtx(t, 10*time.Second), "t", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	if got := s.count("LEADER "); got != 1 {
		t.Fatalf("LEADER asked %d times, want 1 (then smart routing is off)", got)
	}
}

func TestFakeCloseFailsCallsInFlight(t *testing.T) {
	never := make(chan struct{})
	defer close(never)
	s := newFakeServer(t, func(req string) fakeAction { return fakeAction{reply: "OK", hold: never} })
	before := clientGoroutines()
	c := dialFake(t, []string{s.addr()})
	const n = 20
	errs := make(chan error, n)
	for range n {
		go func() { errs <- c.Put(context.Background(), "t", []byte("x")) }()
	}
	waitFor(t, "all PUTs written", 10*time.Second, func() bool { return s.count("PUT ") == n })
	c.Close()
	for range n {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("call in flight at Close: %v, want ErrClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a call in flight did not return after Close")
		}
	}
	if err := c.Put(context.Background(), "t", []byte("x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Put after Close: %v", err)
	}
	waitForNoLeak(t, before)
}

func TestBackoffIsBoundedAndSeeded(t *testing.T) {
	mk := func() *Client {
		cfg := defaultConfig()
		cfg.retry = RetryPolicy{MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
		return &Client{cfg: cfg, rnd: newSeeded(42)}
	}
	a, b := mk(), mk()
	for attempt := 1; attempt <= 12; attempt++ {
		da, db := a.backoff(attempt), b.backoff(attempt)
		if da != db {
			t.Fatalf("attempt %d: same seed gave %v and %v", attempt, da, db)
		}
		top := min(10*time.Millisecond<<(attempt-1), 200*time.Millisecond)
		if da < 10*time.Millisecond || da > top {
			t.Fatalf("attempt %d: %v outside [10ms, %v]", attempt, da, top)
		}
	}
}

func TestRetryRules(t *testing.T) {
	sent := &transportError{addr: "a", sent: true, err: errors.New("EOF")}
	unsent := &transportError{addr: "a", err: errors.New("refused")}
	notLeader := &ServerError{"NotLeaderForPartition: t/1"}
	unavail := &ServerError{"unavailable: no raft leader"}
	unknown := &ServerError{"unavailable: x (outcome unknown)"}
	fenced := &ServerError{"segment fenced for recovery: outcome unknown"}
	bad := &ServerError{"unknown topic t"}
	for _, tc := range []struct {
		kind  opKind
		err   error
		optIn bool
		want  bool
	}{
		{opWrite, unsent, false, true},
		{opWrite, sent, false, false},
		{opWrite, sent, true, true},
		{opWrite, notLeader, false, true},
		{opWrite, unavail, false, true},
		{opWrite, unknown, false, false},
		{opWrite, unknown, true, true},
		{opWrite, fenced, false, false},
		{opWrite, fenced, true, true},
		{opWrite, bad, true, false},
		{opDestructive, unsent, false, true},
		{opDestructive, sent, true, false},
		{opDestructive, unavail, true, false},
		{opIdempotent, sent, false, true},
		{opIdempotent, unknown, false, true},
		{opIdempotent, bad, false, false},
		{opIdempotent, &transportError{addr: "a", sent: true, err: ErrClosed}, false, false},
		{opIdempotent, &transportError{addr: "a", err: context.Canceled}, false, false},
	} {
		if got := retryable(tc.kind, tc.err, tc.optIn); got != tc.want {
			t.Errorf("retryable(%d, %v, optIn=%v) = %v, want %v", tc.kind, tc.err, tc.optIn, got, tc.want)
		}
	}
}
