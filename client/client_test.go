package client

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func mustOK(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func TestClusterEveryCall(t *testing.T) {
	cl := startCluster(t, 3, nil)
	c := cl.dial()
	ctx := testCtx(t, 60*time.Second)

	mustOK(t, "Register", c.Register(ctx, "logs"))
	mustOK(t, "Register again", c.Register(ctx, "logs"))
	mustOK(t, "Register rf=1", c.Register(ctx, "solo", RF(1)))
	if st, err := c.State(ctx, "solo"); err != nil || st.RF != 1 || len(st.Replicas[1]) != 1 {
		t.Fatalf("State(solo): %+v %v", st, err)
	}

	// Put: text form, binary bytes, trailing white space (sent as MPUT),
	// leading spaces
	puts := [][]byte{[]byte("hello world"), {0, 0xff, 'x'}, []byte("tail \r\n"), []byte("  lead")}
	for _, p := range puts {
		mustOK(t, "Put", c.Put(ctx, "logs", p))
	}
	rs, err := c.PutBatch(ctx, "logs", [][]byte{[]byte("b1"), []byte("b2 "), {'\n'}})
	mustOK(t, "PutBatch", err)
	if len(rs) != 1 || rs[0] != (Range{First: 4, Count: 3}) {
		t.Fatalf("PutBatch ranges %v, want [{4 3}]", rs)
	}
	all := append(append([][]byte{}, puts...), []byte("b1"), []byte("b2 "), []byte{'\n'})

	// Read: everything, a window, past the end
	if got := readExactly(t, c, "logs", 0, len(all)); !equalEntries(got, all) {
		t.Fatalf("Read from 0 = %q, want %q", got, all)
	}
	first, entries, err := c.Read(ctx, "logs", 4, 2)
	mustOK(t, "Read window", err)
	if first != 4 || !equalEntries(entries, all[4:6]) {
		t.Fatalf("Read(4, 2) = %d %q", first, entries)
	}
	first, entries, err = c.Read(ctx, "logs", 7, 10)
	if err != nil || first != 7 || entries != nil {
		t.Fatalf("Read past the end = %d %q %v, want 7, none", first, entries, err)
	}

	// Get walks the shared cursor, then reports EMPTY
	for i, want := range all {
		if got := getEventually(t, c, "logs"); !bytes.Equal(got, want) {
			t.Fatalf("Get %d = %q, want %q", i, got, want)
		}
	}
	if got, ok, err := c.Get(ctx, "logs"); err != nil || ok || got != nil {
		t.Fatalf("Get at the end = %q %v %v, want EMPTY", got, ok, err)
	}

	// GetWait: EMPTY after the wait, or the entry that arrives meanwhile
	if _, ok, err := c.GetWait(ctx, "logs", 50*time.Millisecond); err != nil || ok {
		t.Fatalf("GetWait on an empty topic: %v %v", ok, err)
	}
	type res struct {
		p   []byte
		ok  bool
		err error
	}
	waited := make(chan res, 1)
	go func() {
		p, ok, err := c.GetWait(ctx, "logs", 30*time.Second)
		waited <- res{p, ok, err}
	}()
	mustOK(t, "Put late", c.Put(ctx, "logs", []byte("late")))
	if r := <-waited; r.err != nil || !r.ok || string(r.p) != "late" {
		t.Fatalf("GetWait = %q %v %v, want late", r.p, r.ok, r.err)
	}

	// consumer groups: a new group starts at 0; Commit sets the position
	// (that GroupRead alone does not move it is TestServerBugGroupReadAdvances)
	first, entries, err = c.GroupRead(ctx, "logs", "billing", 2, 0)
	if err != nil || first != 0 || !equalEntries(entries, all[:2]) {
		t.Fatalf("GroupRead = %d %q %v", first, entries, err)
	}
	// Commit on groups nobody read yet (see the TestServerBug* tests for
	// Commit after GroupRead)
	mustOK(t, "Commit", c.Commit(ctx, "logs", "audit", 6))
	first, entries, err = c.GroupRead(ctx, "logs", "audit", 10, 0)
	if err != nil || first != 6 || !equalEntries(entries, [][]byte{{'\n'}, []byte("late")}) {
		t.Fatalf("GroupRead after Commit(6) = %d %q %v", first, entries, err)
	}
	mustOK(t, "Commit end", c.Commit(ctx, "logs", "done", 8))
	if first, entries, err := c.GroupRead(ctx, "logs", "done", 10, 50*time.Millisecond); err != nil || first != 0 || entries != nil {
		t.Fatalf("GroupRead at the end = %d %q %v, want none", first, entries, err)
	}

	// Leader and State agree with each other and with the cluster
	seg, node, addr, err := c.Leader(ctx, "logs")
	mustOK(t, "Leader", err)
	if seg != 1 || cl.Addr(node) != addr {
		t.Fatalf("Leader = %d %d %q; nodes %v", seg, node, addr, cl.Addrs())
	}
	st, err := c.State(ctx, "logs")
	mustOK(t, "State", err)
	if st.CurrentSegment != 1 || st.LeaderNode != node || st.SegmentLeaders[1] != node ||
		st.LastSealedEntryOffset != 0 || len(st.SealedSegments) != 0 || st.Cursor != 8 ||
		!bytes.Contains(st.Raw, []byte(`"current_segment":1`)) {
		t.Fatalf("State = %+v\n%s", st, st.Raw)
	}

	m, err := c.Metrics(ctx)
	mustOK(t, "Metrics", err)
	for _, k := range []string{"id", "state", "current_term", "current_leader", "last_log_index", "last_applied", "membership_config", "replication"} {
		if _, ok := m[k]; !ok {
			t.Fatalf("METRICS lacks %q: %v", k, m)
		}
	}

	// raw requests
	if got, err := c.Do(ctx, []byte("PUT logs raw")); err != nil || string(got) != "OK" {
		t.Fatalf("Do PUT = %q %v", got, err)
	}
	if got, err := c.Do(ctx, []byte("put logs raw")); err != nil || string(got) != "ERR unknown command" {
		t.Fatalf("Do put = %q %v", got, err)
	}
}

func equalEntries(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// TestClusterBadInputGetsServerText checks that bad requests come back as
// the server's exact error text.
func TestClusterBadInputGetsServerText(t *testing.T) {
	cl := startCluster(t, 3, nil)
	c := cl.dial()
	ctx := testCtx(t, 60*time.Second)
	mustOK(t, "Register", c.Register(ctx, "logs"))
	mustOK(t, "Put", c.Put(ctx, "logs", []byte("x")))

	for _, tc := range []struct {
		name string
		call func() error
		want string
	}{
		{"Put unknown topic", func() error { return c.Put(ctx, "nope", []byte("x")) }, "unknown topic nope"},
		{"PutBatch unknown topic", func() error { _, err := c.PutBatch(ctx, "nope", [][]byte{[]byte("x")}); return err }, "unknown topic nope"},
		{"Get unknown topic", func() error { _, _, err := c.Get(ctx, "nope"); return err }, "unknown topic nope"},
		{"GetWait unknown topic", func() error { _, _, err := c.GetWait(ctx, "nope", time.Millisecond); return err }, "unknown topic nope"},
		{"Read unknown topic", func() error { _, _, err := c.Read(ctx, "nope", 0, 1); return err }, "unknown topic nope"},
		{"GroupRead unknown topic", func() error { _, _, err := c.GroupRead(ctx, "nope", "g", 1, 0); return err }, "unknown topic nope"},
		{"Commit unknown topic", func() error { return c.Commit(ctx, "nope", "g", 0) }, "unknown topic nope"},
		{"Leader unknown topic", func() error { _, _, _, err := c.Leader(ctx, "nope"); return err }, "unknown topic nope"},
		{"State unknown topic", func() error { _, err := c.State(ctx, "nope"); return err }, "unknown topic nope"},
		{"Put empty payload", func() error { return c.Put(ctx, "logs", nil) }, "PUT requires a payload"},
		{"Get no topic", func() error { _, _, err := c.Get(ctx, ""); return err }, "GET requires a topic"},
		{"State no topic", func() error { _, err := c.State(ctx, ""); return err }, "STATE requires a topic"},
		{"Register no topic", func() error { return c.Register(ctx, "") }, "REGISTER requires a topic"},
		{"Read no topic", func() error { _, _, err := c.Read(ctx, "", 0, 1); return err }, "READ requires a topic"},
		{"Read max 0", func() error { _, _, err := c.Read(ctx, "logs", 0, 0); return err }, "READ max must be an integer from 1 to 10000"},
		{"Read max 10001", func() error { _, _, err := c.Read(ctx, "logs", 0, 10001); return err }, "READ max must be an integer from 1 to 10000"},
		{"GroupRead max -1", func() error { _, _, err := c.GroupRead(ctx, "logs", "g", -1, 0); return err }, "GROUPREAD max must be an integer from 1 to 10000"},
		{"GroupRead wait -1s", func() error { _, _, err := c.GroupRead(ctx, "logs", "g", 1, -time.Second); return err }, "GROUPREAD wait_ms must be an integer from 0 to 300000"},
		{"GroupRead wait too long", func() error { _, _, err := c.GroupRead(ctx, "logs", "g", 1, 301*time.Second); return err },
			"GROUPREAD wait_ms must be an integer from 0 to 300000"},
		{"GetWait negative", func() error { _, _, err := c.GetWait(ctx, "logs", -time.Second); return err },
			"GETW wait_ms must be an integer from 0 to 300000"},
		{"Commit no group", func() error { return c.Commit(ctx, "logs", "", 1) }, "COMMIT requires a group"},
		{"Register rf 0", func() error { return c.Register(ctx, "r0", RF(0)) }, "REGISTER rf must be an integer from 1 to 255"},
		{"Register rf 256", func() error { return c.Register(ctx, "r0", RF(256)) }, "REGISTER rf must be an integer from 1 to 255"},
		{"PutBatch empty entry", func() error {
			_, err := c.PutBatch(ctx, "logs", [][]byte{[]byte("a"), nil, []byte("c")})
			return err
		}, "MPUT entry 2 of 3 is empty"},
	} {
		err := tc.call()
		var se *ServerError
		if !errors.As(err, &se) || se.Msg != tc.want || err.Error() != tc.want {
			t.Errorf("%s: got %v (%T), want server error %q", tc.name, err, err, tc.want)
		}
	}
	if !IsUnknownTopic(c.Put(ctx, "nope", []byte("x"))) {
		t.Error("IsUnknownTopic false for an unknown topic")
	}
	// rejected before sending: the text protocol cannot carry these names
	if err := c.Put(ctx, "two words", []byte("x")); err == nil || !strings.Contains(err.Error(), "white space") {
		t.Errorf("topic with a space: %v", err)
	}
	if _, err := c.Do(ctx, nil); !errors.Is(err, ErrEmptyRequest) {
		t.Errorf("Do(nil): %v", err)
	}
	// nothing above wrote anything
	if first, entries, err := c.Read(ctx, "logs", 0, 100); err != nil || first != 0 || len(entries) != 1 {
		t.Fatalf("Read after the bad requests = %d %q %v, want the one entry", first, entries, err)
	}
}

// TestClusterPipelining sends 1000 concurrent Puts through one client: all
// are acknowledged, and Read finds each exactly once.
func TestClusterPipelining(t *testing.T) {
	cl := startCluster(t, 3, nil)
	c := cl.dial()
	ctx := testCtx(t, 120*time.Second)
	mustOK(t, "Register", c.Register(ctx, "pipe"))
	const n = 1000
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := c.Put(ctx, "pipe", fmt.Appendf(nil, "m-%04d", i)); err != nil {
				errs <- fmt.Errorf("put %d: %w", i, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]int{}
	for _, e := range readExactly(t, c, "pipe", 0, n) {
		seen[string(e)]++
	}
	if first, entries, err := c.Read(ctx, "pipe", n, 10); err != nil || entries != nil {
		t.Fatalf("Read past the %d entries = %d %q %v, want none", n, first, entries, err)
	}
	if len(seen) != n {
		t.Fatalf("%d distinct entries, want %d", len(seen), n)
	}
	for i := range n {
		if k := fmt.Sprintf("m-%04d", i); seen[k] != 1 {
			t.Fatalf("%s read %d times", k, seen[k])
		}
	}
	depth := 0
	for _, p := range c.order {
		depth = max(depth, p.maxDepth())
	}
	if depth < 2 {
		t.Fatalf("deepest pipeline %d: requests were not pipelined", depth)
	}
	t.Logf("deepest pipeline: %d requests", depth)
}

// TestClusterCloseWithCallsInFlight closes a client while GETWs wait on the
// server: each returns an error, and no client goroutine survives.
func TestClusterCloseWithCallsInFlight(t *testing.T) {
	cl := startCluster(t, 3, nil)
	before := clientGoroutines()
	c := cl.dial()
	ctx := testCtx(t, 60*time.Second)
	mustOK(t, "Register", c.Register(ctx, "idle"))
	const n = 10
	errs := make(chan error, n)
	for range n {
		go func() {
			_, _, err := c.GetWait(ctx, "idle", 30*time.Second)
			errs <- err
		}()
	}
	waitFor(t, "all GETWs written", 10*time.Second, func() bool { return c.written() == n })
	c.Close()
	for range n {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrClosed) {
				t.Fatalf("GETW in flight at Close: %v, want ErrClosed", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a GETW in flight did not return after Close")
		}
	}
	if err := c.Register(ctx, "idle"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Register after Close: %v", err)
	}
	waitForNoLeak(t, before)
}

// written counts requests written and awaiting replies, over all
// connections (for tests).
func (c *Client) written() int {
	c.mu.Lock()
	pools := c.order
	c.mu.Unlock()
	n := 0
	for _, p := range pools {
		p.mu.Lock()
		for _, cn := range p.conns {
			cn.mu.Lock()
			n += len(cn.pending)
			cn.mu.Unlock()
		}
		p.mu.Unlock()
	}
	return n
}
