package actors

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/poll"
	"github.com/walrus-go/walrus/messages"
	"github.com/walrus-go/walrus/wal"
	"github.com/walrus-go/walrus/wire"
)

// testCluster is a cluster of in-process nodes on loopback TCP with real
// raft, bolt stores and WAL files: node 1 bootstraps, the others join it.
type testCluster struct {
	t     testing.TB
	dir   string
	nodes map[uint64]*Node
	cfgs  map[uint64]Config
}

func testLogger(t testing.TB) *slog.Logger {
	if os.Getenv("WALRUS_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

func newTestCluster(t testing.TB, size int, tweak func(*Config)) *testCluster {
	t.Helper()
	c := &testCluster{t: t, dir: t.TempDir(), nodes: map[uint64]*Node{}, cfgs: map[uint64]Config{}}
	for id := uint64(1); id <= uint64(size); id++ {
		cfg := Config{NodeID: id, DataDir: c.dir, ClientAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0", LibLogLevel: testLibLevel(),
			Logger: testLogger(t), MonitorInterval: 50 * time.Millisecond, RaftHeartbeat: 300 * time.Millisecond}
		if id > 1 {
			cfg.Join = []string{c.nodes[1].RaftAddr()}
		}
		if tweak != nil {
			tweak(&cfg)
		}
		c.start(cfg)
		if id == 1 {
			c.waitFor("node 1 leads", 10*time.Second, func() bool { return c.nodes[1].IsRaftLeader() })
		}
	}
	c.waitFor("all nodes caught up and voting", 20*time.Second, func() bool {
		for _, n := range c.nodes {
			if !n.caughtUp.Load() {
				return false
			}
		}
		m := c.nodes[1].host.Metrics()
		cfgs := m["membership_config"].(map[string]any)["membership"].(map[string]any)["configs"].([][]uint64)
		return len(cfgs[0]) == size && len(c.nodes[1].State().Nodes) == size
	})
	t.Cleanup(c.stopAll)
	return c
}

func (c *testCluster) start(cfg Config) *Node {
	c.t.Helper()
	n, err := Start(cfg)
	if err != nil {
		c.t.Fatalf("start node %d: %v", cfg.NodeID, err)
	}
	// restart on the same ports
	cfg.RaftAddr, cfg.ClientAddr = n.RaftAddr(), n.ClientAddr()
	cfg.AdvertiseRaftAddr, cfg.AdvertiseClientAddr = "", ""
	c.nodes[cfg.NodeID] = n
	c.cfgs[cfg.NodeID] = cfg
	return n
}

func (c *testCluster) stop(id uint64) {
	if n := c.nodes[id]; n != nil {
		start := time.Now()
		tm := time.AfterFunc(3*time.Second, func() {
			if os.Getenv("WALRUS_TEST_DUMP") != "" {
				_ = pprof.Lookup("goroutine").WriteTo(os.Stderr, 1)
			}
		})
		n.Stop()
		tm.Stop()
		if d := time.Since(start); d > time.Second {
			c.t.Logf("stopping node %d took %v", id, d)
		}
		delete(c.nodes, id)
	}
}

func (c *testCluster) restart(id uint64) *Node {
	c.stop(id)
	return c.start(c.cfgs[id])
}

func (c *testCluster) stopAll() {
	for id := range c.nodes {
		c.stop(id)
	}
}

// waitFor polls cond until it holds or the deadline passes, then fails
// naming what it waited for.
func (c *testCluster) waitFor(what string, d time.Duration, cond func() bool) {
	c.t.Helper()
	if !poll.Until(d, 20*time.Millisecond, cond) {
		c.t.Fatalf("timed out after %v waiting for: %s\n%s", d, what, c.describe())
	}
}

// describe summarises every node's view, for failure messages.
func (c *testCluster) describe() string {
	var b strings.Builder
	for id := uint64(1); id <= 9; id++ {
		n := c.nodes[id]
		if n == nil {
			continue
		}
		m := n.host.Metrics()
		st := n.State()
		fmt.Fprintf(&b, "node %d: state=%v leader=%v caughtUp=%v lease=%v applied=%d membership=%v nodes=%d topics=%d\n",
			id, m["state"], m["current_leader"], n.caughtUp.Load(), n.lease.valid(n.now()), st.LastApplied,
			m["membership_config"], len(st.Nodes), len(st.Topics))
	}
	return b.String()
}

// client is a minimal protocol client for tests.
type client struct {
	t  testing.TB
	c  net.Conn
	fr *wire.FrameReader
	w  *bufio.Writer
}

func (c *testCluster) client(id uint64) *client {
	c.t.Helper()
	conn, err := net.Dial("tcp", c.nodes[id].ClientAddr())
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { conn.Close() })
	return &client{t: c.t, c: conn, fr: wire.NewFrameReader(conn, 64<<20), w: bufio.NewWriter(conn)}
}

func (cl *client) send(req string) {
	cl.t.Helper()
	if err := wire.WriteFrame(cl.w, []byte(req)); err != nil {
		cl.t.Fatal(err)
	}
}

// sendNow sends req at once (send buffers it until the next recv).
func (cl *client) sendNow(req string) {
	cl.t.Helper()
	cl.send(req)
	if err := cl.w.Flush(); err != nil {
		cl.t.Fatal(err)
	}
}

func (cl *client) recv() string {
	cl.t.Helper()
	if err := cl.w.Flush(); err != nil {
		cl.t.Fatal(err)
	}
	_ = cl.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	b, err := cl.fr.ReadFrame()
	if err != nil {
		cl.t.Fatalf("read reply: %v", err)
	}
	return string(b)
}

func (cl *client) do(req string) string {
	cl.t.Helper()
	start := time.Now()
	cl.send(req)
	r := cl.recv()
	if d := time.Since(start); d > time.Second {
		cl.t.Logf("slow request %q took %v -> %q", req, d, r)
	}
	return r
}

func (cl *client) must(req, want string) {
	cl.t.Helper()
	if got := cl.do(req); got != want {
		cl.t.Fatalf("%q: got %q, want %q", req, got, want)
	}
}

func TestClusterPutGetAcrossNodes(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	a := c.client(1)
	a.must("REGISTER logs", "OK")
	a.must("REGISTER logs", "OK")
	if got := a.do("PUT nope x"); got != "ERR unknown topic nope" {
		t.Fatalf("PUT to unknown topic: %q", got)
	}
	for i := 0; i < 5; i++ {
		for id := uint64(1); id <= 3; id++ {
			cl := c.client(id)
			cl.must(fmt.Sprintf("PUT logs m-%d-%d", i, id), "OK")
		}
	}
	var got []string
	for i := 0; i < 15; i++ {
		r := c.client(uint64(i%3) + 1).do("GET logs")
		if !strings.HasPrefix(r, "OK ") {
			t.Fatalf("GET %d: %q", i, r)
		}
		got = append(got, strings.TrimPrefix(r, "OK "))
	}
	want := []string{}
	for i := 0; i < 5; i++ {
		for id := 1; id <= 3; id++ {
			want = append(want, fmt.Sprintf("m-%d-%d", i, id))
		}
	}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("read order\n got %v\nwant %v", got, want)
	}
	a.must("GET logs", "EMPTY")
}

func TestClusterRolloverSealsExactCountsRoundRobin(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.MaxSegmentEntries = 10 })
	a := c.client(2)
	a.must("REGISTER roll", "OK")
	for i := 0; i < 60; i++ {
		a.must(fmt.Sprintf("PUT roll e%02d", i), "OK")
	}
	c.waitFor("6 sealed segments", 10*time.Second, func() bool {
		tp := c.nodes[1].State().Topics["roll"]
		return tp != nil && len(tp.Segments) >= 7 && tp.Segments[5].Sealed()
	})
	tp := c.nodes[1].State().Topics["roll"]
	leaders := map[uint64]bool{}
	for _, s := range tp.Segments[:6] {
		if !s.Sealed() || s.Count != 10 {
			t.Fatalf("segment %d: sealed=%v count=%d, want sealed at 10", s.ID, s.Sealed(), s.Count)
		}
		leaders[uint64(s.Leader)] = true
	}
	if len(leaders) != 3 {
		t.Fatalf("leaders %v: want all 3 nodes", leaders)
	}
	b := c.client(3)
	for i := 0; i < 60; i++ {
		b.must("GET roll", fmt.Sprintf("OK e%02d", i))
	}
	b.must("GET roll", "EMPTY")
	st := b.do("STATE roll")
	if !strings.Contains(st, `"current_segment":7`) || !strings.Contains(st, `"last_sealed_entry_offset":60`) ||
		!strings.Contains(st, `"high_water_mark":60`) || !strings.Contains(st, `"epoch":1`) {
		t.Fatalf("STATE: %s", st)
	}
	if !strings.HasPrefix(st, `{"current_segment":7,"leader_node":`) {
		t.Fatalf("STATE must start with the reference's keys: %s", st)
	}
}

func TestClusterWholeRestartKeepsEntriesMetadataAndCursor(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.MaxSegmentEntries = 7 })
	a := c.client(1)
	a.must("REGISTER keep", "OK")
	for i := 0; i < 20; i++ {
		a.must(fmt.Sprintf("PUT keep k%02d", i), "OK")
	}
	for i := 0; i < 5; i++ {
		a.must("GET keep", fmt.Sprintf("OK k%02d", i))
	}
	for id := uint64(1); id <= 3; id++ {
		c.stop(id)
	}
	for id := uint64(1); id <= 3; id++ {
		c.start(c.cfgs[id])
	}
	c.waitFor("a leader after restart", 20*time.Second, func() bool {
		for _, n := range c.nodes {
			if n.IsRaftLeader() {
				return true
			}
		}
		return false
	})
	b := c.client(2)
	for i := 5; i < 20; i++ {
		b.must("GET keep", fmt.Sprintf("OK k%02d", i))
	}
	b.must("PUT keep after", "OK")
	b.must("GET keep", "OK after")
	b.must("GET keep", "EMPTY")
}

func testLibLevel() slog.Level {
	if os.Getenv("WALRUS_TEST_LOG") != "" {
		return slog.LevelDebug
	}
	return slog.LevelWarn
}

func mput(topic string, entries ...string) string {
	b := []byte(fmt.Sprintf("MPUT %s %d\n", topic, len(entries)))
	for _, e := range entries {
		b = append(b, byte(len(e)), byte(len(e)>>8), byte(len(e)>>16), byte(len(e)>>24))
		b = append(b, e...)
	}
	return string(b)
}

func batch(first int, entries ...string) string {
	s := fmt.Sprintf("OK %d %d\n", first, len(entries))
	for _, e := range entries {
		s += string([]byte{byte(len(e)), byte(len(e) >> 8), byte(len(e) >> 16), byte(len(e) >> 24)}) + e
	}
	return s
}

func TestClusterProtocolAdditions(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.MaxSegmentEntries = 4 })
	a := c.client(1)
	a.must("REGISTER add rf=2", "OK")
	// MPUT crossing a segment boundary reports each contiguous range
	a.must(mput("add", "a", "b", "c"), "OK 0 3")
	// it crossed a segment boundary, but no other writer came between: one run
	a.must(mput("add", "d", "e \x00\xff", "f "), "OK 3 3")
	b := c.client(2)
	b.must("READ add 0 2", batch(0, "a", "b"))
	b.must("READ add 3 10", batch(3, "d"))
	b.must("READ add 4 10", batch(4, "e \x00\xff", "f "))
	b.must("READ add 6", "EMPTY")
	// consumer groups: GROUPREAD reads from the committed position and does
	// not move it; COMMIT moves it (back too)
	b.must("GROUPREAD add g1 2", batch(0, "a", "b"))
	b.must("GROUPREAD add g1 2", batch(0, "a", "b"))
	c.client(3).must("COMMIT add g1 2", "OK")
	b.must("GROUPREAD add g1 5", batch(2, "c", "d"))
	b.must("COMMIT add g1 6", "OK")
	b.must("GROUPREAD add g1 5", "EMPTY")
	b.must("COMMIT add g1 1", "OK")
	b.must("GROUPREAD add g1 1", batch(1, "b"))
	// blocking reads wake up when a write arrives
	waiter := c.client(3)
	waiter.send("GROUPREAD add g1x 1 1")
	if got := waiter.recv(); got != batch(0, "a") {
		t.Fatalf("GROUPREAD with wait on data: %q", got)
	}
	waiter.must("COMMIT add g2 6", "OK")
	waiter.must(" \t", "ERR unknown command")
	waiter.sendNow("GROUPREAD add g2 1 5000")
	time.Sleep(100 * time.Millisecond)
	a.must("PUT add late", "OK")
	if got := waiter.recv(); got != batch(6, "late") {
		t.Fatalf("blocking GROUPREAD: %q", got)
	}
	// LEADER names the active segment's leader and its client address
	st := c.nodes[1].State().Topics["add"]
	act := st.Active()
	want := fmt.Sprintf("OK %d %d %s", act.ID, act.Leader, c.nodes[uint64(act.Leader)].ClientAddr())
	b.must("LEADER add", want)
	// GETW waits for an entry, and answers EMPTY when none comes
	for i := 0; i < 7; i++ {
		a.do("GET add")
	}
	start := time.Now()
	a.must("GETW add 200", "EMPTY")
	if time.Since(start) < 150*time.Millisecond {
		t.Fatal("GETW returned before its wait")
	}
	a.sendNow("GETW add 5000")
	time.Sleep(100 * time.Millisecond)
	b.must("PUT add wake", "OK")
	if got := a.recv(); got != "OK wake" {
		t.Fatalf("GETW woken by a write: %q", got)
	}
	// a plain GET is answered at once while a GETW holds the cursor's
	// read at the segment leader (it used to wait for the long poll: the
	// forward timed out after 10 s, a GET at the cursor owner hung)
	// (an entry first: the cursor then reads the open segment 3 below
	// its end, not the end of the full segment 2, which is answered at once)
	b.must("PUT add pad", "OK")
	a.must("GET add", "OK pad")
	a.sendNow("GETW add 120000")
	time.Sleep(100 * time.Millisecond)
	for _, cl := range []*client{b, c.client(1)} {
		cl.must("GET add", "EMPTY")
	}
	b.must("PUT add wake2", "OK")
	if got := a.recv(); got != "OK wake2" {
		t.Fatalf("GETW woken by a write after plain GETs: %q", got)
	}
	// bad input for each addition
	for req, want := range map[string]string{
		"READ nope 0":              "ERR unknown topic nope",
		"READ add x":               "ERR READ offset must be a non-negative integer",
		"READ add 0 0":             "ERR READ max must be an integer from 1 to 10000",
		"READ add":                 "ERR READ requires an offset",
		"GROUPREAD add":            "ERR GROUPREAD requires a group",
		"COMMIT add g1":            "ERR COMMIT requires an offset",
		"COMMIT nope g 1":          "ERR unknown topic nope",
		"LEADER nope":              "ERR unknown topic nope",
		"GETW add":                 "ERR GETW requires wait_ms",
		"REGISTER x rf=0":          "ERR REGISTER rf must be an integer from 1 to 255",
		"MPUT add 2\n\x01\x00\x00": "ERR MPUT entry 1 of 2 is truncated",
		mput("nope", "x"):          "ERR unknown topic nope",
	} {
		if got := b.do(req); got != want {
			t.Errorf("%q: got %q, want %q", req, got, want)
		}
	}
}

// readAll reads a topic from offset 0 by READ batches until EMPTY.
func (cl *client) readAll(topic string) []string {
	cl.t.Helper()
	var out []string
	for off := 0; ; {
		r := cl.do(fmt.Sprintf("READ %s %d 1000", topic, off))
		if r == "EMPTY" {
			return out
		}
		first, entries, err := wire.ParseBatchReply([]byte(strings.TrimPrefix(r, "OK ")))
		if err != nil || int(first) != off {
			cl.t.Fatalf("READ %s %d: %q (%v)", topic, off, r, err)
		}
		for _, e := range entries {
			out = append(out, string(e))
		}
		off += len(entries)
	}
}

// TestClusterFailoverKeepsAcknowledgedWrites crashes the node leading the
// active segment while a producer writes through another node: writers
// continue after the failover, and every acknowledged entry is readable
// exactly once, in acknowledgement order; nothing unwritten appears.
func TestClusterFailoverKeepsAcknowledgedWrites(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	st := c.nodes[1].State()
	_ = st
	c.client(1).must("REGISTER fo", "OK")
	leader := uint64(c.nodes[1].State().Topics["fo"].Active().Leader)
	entry := uint64(1)
	if entry == leader {
		entry = 2
	}
	p := c.client(entry)
	var acked []string
	written := map[string]bool{}
	put := func(i int) {
		v := fmt.Sprintf("v%04d", i)
		written[v] = true
		if r := p.do("PUT fo " + v); r == "OK" {
			acked = append(acked, v)
		}
	}
	for i := 0; i < 50; i++ {
		put(i)
	}
	c.nodes[leader].Crash()
	delete(c.nodes, leader)
	start := time.Now()
	var firstAfter time.Duration
	for i := 50; i < 150; i++ {
		before := len(acked)
		put(i)
		if len(acked) > before && firstAfter == 0 && i > 50 {
			firstAfter = time.Since(start)
		}
	}
	t.Logf("first acknowledged write %v after the crash; %d of 150 acknowledged", firstAfter, len(acked))
	if len(acked) < 140 {
		t.Fatalf("only %d of 150 writes acknowledged: writers must continue after failover", len(acked))
	}
	got := p.readAll("fo")
	seen := map[string]int{}
	for _, v := range got {
		seen[v]++
		if !written[v] {
			t.Fatalf("read %q that was never written", v)
		}
		if seen[v] > 1 {
			t.Fatalf("%q read twice", v)
		}
	}
	pos := -1
	idx := map[string]int{}
	for i, v := range got {
		idx[v] = i
	}
	for _, v := range acked {
		i, ok := idx[v]
		if !ok {
			t.Fatalf("acknowledged %q lost", v)
		}
		if i < pos {
			t.Fatalf("acknowledged %q out of order", v)
		}
		pos = i
	}
}

// holdsAll reports whether every replica named in the metadata holds each
// sealed segment of topic completely, sealed on disk.
func (c *testCluster) holdsAll(topic string) (bool, string) {
	var st = c.anyNode().State()
	t := st.Topics[topic]
	for _, g := range t.Segments {
		if !g.Sealed() {
			continue
		}
		for _, r := range g.Replicas {
			n := c.nodes[uint64(r)]
			if n == nil {
				return false, fmt.Sprintf("segment %d: replica %d is not running", g.ID, r)
			}
			info, err := n.wal.Info(wal.SegmentKey{Topic: topic, Segment: g.ID})
			if err != nil || !info.Sealed || info.Count != g.Count {
				return false, fmt.Sprintf("segment %d on node %d: %+v %v (want sealed at %d)", g.ID, r, info, err, g.Count)
			}
		}
	}
	return true, ""
}

func (c *testCluster) anyNode() *Node {
	for id := uint64(1); id <= 9; id++ {
		if n := c.nodes[id]; n != nil {
			return n
		}
	}
	c.t.Fatal("no node running")
	return nil
}

func TestClusterJoinPromoteRemoveAndReReplicate(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.MaxSegmentEntries = 5 })
	a := c.client(1)
	a.must("REGISTER rr", "OK")
	for i := 0; i < 22; i++ {
		a.must(fmt.Sprintf("PUT rr r%02d", i), "OK")
	}
	// a fourth node joins through node 2 and is promoted to voter
	cfg := c.cfgs[1]
	cfg.NodeID, cfg.Join = 4, []string{c.nodes[2].RaftAddr()}
	cfg.RaftAddr, cfg.ClientAddr = "127.0.0.1:0", "127.0.0.1:0"
	c.start(cfg)
	c.waitFor("node 4 to be a voter", 20*time.Second, func() bool {
		return strings.Contains(c.client(1).do("NODES"), `{"id":4,`) &&
			strings.Contains(c.client(1).do("NODES"), `"live":true,"suffrage":"voter"}]`)
	})
	// remove node 2 for good: its segments are sealed or re-replicated
	c.client(3).must("REMOVENODE 2", "OK")
	c.client(3).must("REMOVENODE 2", "ERR unknown node 2") // removed already
	c.client(1).must("REMOVENODE 99", "ERR unknown node 99")
	c.stop(2)
	c.waitFor("every sealed segment back at three full copies on members", 30*time.Second, func() bool {
		st := c.anyNode().State()
		if _, still := st.Nodes[2]; still || len(st.UnderReplicated()) != 0 {
			return false
		}
		for _, g := range st.Topics["rr"].Segments {
			if g.Sealed() && len(g.Replicas) != 3 {
				return false
			}
		}
		ok, _ := c.holdsAll("rr")
		return ok
	})
	if m := c.client(1).do("METRICS"); !strings.Contains(m, `"configs":[[1,3,4]]`) || !strings.Contains(m, `"under_replicated_segments":0`) {
		t.Fatalf("METRICS after removal: %s", m)
	}
	b := c.client(4)
	b.must("PUT rr after", "OK")
	got := b.readAll("rr")
	if len(got) != 23 || got[0] != "r00" || got[21] != "r21" || got[22] != "after" {
		t.Fatalf("entries after removal: %v", got)
	}
}

// TestClusterWipedNodeIsRefilled loses a node's whole data directory: it
// comes back empty, rejoins, and re-fetches every segment it replicates.
func TestClusterWipedNodeIsRefilled(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.MaxSegmentEntries = 4 })
	a := c.client(1)
	a.must("REGISTER wipe", "OK")
	for i := 0; i < 19; i++ {
		a.must(fmt.Sprintf("PUT wipe w%02d", i), "OK")
	}
	c.nodes[3].Crash()
	delete(c.nodes, 3)
	cfg := c.cfgs[3]
	if err := os.RemoveAll(cfg.NodeDir()); err != nil {
		t.Fatal(err)
	}
	cfg.Join = []string{c.nodes[1].RaftAddr()}
	c.start(cfg)
	c.waitFor("node 3 holds every sealed segment again", 30*time.Second, func() bool {
		ok, _ := c.holdsAll("wipe")
		return ok
	})
	if ok, why := c.holdsAll("wipe"); !ok {
		t.Fatal(why)
	}
	got := c.client(3).readAll("wipe")
	if len(got) != 19 {
		t.Fatalf("read %d entries after refill, want 19", len(got))
	}
}

// A follower of the open segment whose disk is wiped (or restored from an
// older backup) rejoins holding fewer entries than it acknowledged: the
// leader sends them again, so that it counts toward the quorum once more.
// It used to resend from what the follower had acknowledged, meet the same
// gap forever (a busy loop), and writes stopped as soon as the other
// follower stopped too, although two of three nodes ran.
func TestClusterWipedFollowerOfOpenSegmentCatchesUp(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.HTTPAddr = "127.0.0.1:0" })
	a := c.client(1)
	a.must("REGISTER open", "OK")
	for i := 0; i < 5; i++ {
		a.must(fmt.Sprintf("PUT open a%d", i), "OK")
	}
	act := c.nodes[1].State().Topics["open"].Active()
	leader := uint64(act.Leader)
	var followers []uint64
	for _, r := range act.Replicas {
		if uint64(r) != leader {
			followers = append(followers, uint64(r))
		}
	}
	wiped, other := followers[0], followers[1]
	c.nodes[wiped].Crash()
	delete(c.nodes, wiped)
	cfg := c.cfgs[wiped]
	if err := os.RemoveAll(cfg.NodeDir()); err != nil {
		t.Fatal(err)
	}
	cfg.Join = []string{c.nodes[leader].RaftAddr()}
	c.start(cfg)
	c.waitFor("the wiped follower caught up with raft", 20*time.Second, func() bool { return c.nodes[wiped].caughtUp.Load() })
	ld := c.client(leader)
	ld.must("PUT open b0", "OK")
	c.waitFor("the leader's replication lag back to 0", 20*time.Second, func() bool {
		lag, ok := scrape(t, c.nodes[leader])[`walrus_replication_lag_entries{topic="open"}`]
		return ok && lag == 0
	})
	// the wiped follower is now what the quorum needs
	c.stop(other)
	ld.must("PUT open b1", "OK")
	if got := ld.readAll("open"); len(got) != 7 || got[0] != "a0" || got[6] != "b1" {
		t.Fatalf("entries: %v", got)
	}
}

// A write taken by the segment leader itself, whose followers never
// answer (both dead, while raft, on five nodes, keeps its quorum and the
// leader its lease), is answered within the request timeout, "(outcome
// unknown)", as a forwarded one is by its call's timeout. It used to wait
// for a quorum that never came, with no answer at all.
func TestClusterLocalWriteWithoutQuorumIsAnswered(t *testing.T) {
	c := newTestCluster(t, 5, func(cfg *Config) { cfg.RequestTimeout = 2 * time.Second })
	a := c.client(1)
	a.must("REGISTER noq rf=3", "OK")
	a.must("PUT noq x", "OK")
	act := c.nodes[1].State().Topics["noq"].Active()
	leader := uint64(act.Leader)
	ld := c.client(leader)
	for _, r := range act.Replicas {
		if id := uint64(r); id != leader {
			c.nodes[id].Crash()
			delete(c.nodes, id)
		}
	}
	answer := make(chan string, 1)
	go func() { answer <- ld.do("PUT noq y") }()
	select {
	case r := <-answer:
		if !strings.HasPrefix(r, "ERR ") || !strings.Contains(r, "outcome unknown") {
			t.Fatalf("PUT with no follower left: %q, want ERR ... (outcome unknown)", r)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("PUT through the segment leader with no follower left: no answer 15 s later (request timeout 2 s)")
	}
}

// A node that finds a corrupt sealed segment file refuses its disk; with
// WALSetAsideCorrupt it starts, sets the file aside and copies the segment
// back from the other replicas.
func TestClusterCorruptSealedFileSetAsideAndRefilled(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.MaxSegmentEntries = 4 })
	a := c.client(1)
	a.must("REGISTER rot", "OK")
	for i := 0; i < 19; i++ {
		a.must(fmt.Sprintf("PUT rot r%02d", i), "OK")
	}
	c.waitFor("node 3 holds every sealed segment", 30*time.Second, func() bool {
		ok, _ := c.holdsAll("rot")
		return ok
	})
	c.stop(3)
	cfg := c.cfgs[3]
	walDir := filepath.Join(cfg.NodeDir(), "wal")
	sealed, err := filepath.Glob(filepath.Join(walDir, "rot.*.sealed"))
	if err != nil || len(sealed) == 0 {
		t.Fatalf("no sealed file of rot on node 3 (%v)", err)
	}
	b, err := os.ReadFile(sealed[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0x40 // inside its last record
	if err := os.WriteFile(sealed[0], b, 0o644); err != nil {
		t.Fatal(err)
	}

	if _, err := Start(cfg); err == nil || !strings.Contains(err.Error(), "corrupt") {
		t.Fatalf("start on the corrupt file: %v, want a corrupt-file error", err)
	}
	cfg.WALSetAsideCorrupt = true
	c.cfgs[3] = cfg
	c.start(cfg)
	if _, err := os.Stat(sealed[0] + ".corrupt"); err != nil {
		t.Fatalf("the set-aside file: %v", err)
	}
	c.waitFor("node 3 holds every sealed segment again", 30*time.Second, func() bool {
		ok, _ := c.holdsAll("rot")
		return ok
	})
	if ok, why := c.holdsAll("rot"); !ok {
		t.Fatal(why)
	}
	if got := c.client(3).readAll("rot"); len(got) != 19 {
		t.Fatalf("read %d entries through node 3, want 19", len(got))
	}
	// node 3's own copy of every sealed segment, the refilled one
	// included, holds what node 1's does
	for _, g := range c.anyNode().State().Topics["rot"].Segments {
		if !g.Sealed() || g.Count == 0 {
			continue
		}
		key := wal.SegmentKey{Topic: "rot", Segment: g.ID}
		mine, err := c.nodes[3].wal.Read(key, 0, int(g.Count), 1<<20)
		if err != nil {
			t.Fatalf("segment %d on node 3: %v", g.ID, err)
		}
		theirs, err := c.nodes[1].wal.Read(key, 0, int(g.Count), 1<<20)
		if err != nil {
			t.Fatalf("segment %d on node 1: %v", g.ID, err)
		}
		if !slices.EqualFunc(mine, theirs, bytes.Equal) {
			t.Fatalf("segment %d: node 3 holds %q, node 1 %q", g.ID, mine, theirs)
		}
	}
}

func TestClusterRetentionDropsOldSegmentsEverywhere(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.MaxSegmentEntries = 3 })
	a := c.client(1)
	a.must("REGISTER ret", "OK")
	a.must("RETENTION nope max_segments=1", "ERR unknown topic nope")
	for i := 0; i < 6; i++ {
		a.must(fmt.Sprintf("PUT ret x%02d", i), "OK")
	}
	a.must("GET ret", "OK x00")
	a.must("RETENTION ret max_segments=2", "OK")
	for i := 6; i < 14; i++ {
		a.must(fmt.Sprintf("PUT ret x%02d", i), "OK")
	}
	// 14 entries, 3 per segment: segments 1-4 sealed, 5 active; keep 2 sealed
	c.waitFor("segments 1 and 2 dropped from metadata and every disk", 10*time.Second, func() bool {
		t := c.nodes[1].State().Topics["ret"]
		if t.Segments[0].ID != 3 {
			return false
		}
		for _, n := range c.nodes {
			for _, info := range n.wal.Segments() {
				if info.Key.Topic == "ret" && info.Key.Segment < 3 {
					return false
				}
			}
		}
		return true
	})
	b := c.client(2)
	b.must("READ ret 0", "ERR offset 0 was deleted by retention; the first offset is 6")
	b.must("READ ret 6 1", batch(6, "x06"))
	// the shared cursor pointed into deleted data: it skips forward
	b.must("GET ret", "OK x06")
	if st := b.do("STATE ret"); !strings.Contains(st, `"first_offset":6`) || !strings.Contains(st, `"sealed_segments":{"3":3,"4":3}`) ||
		!strings.Contains(st, `"retention":{"max_age_ms":0,"max_bytes":0,"max_segments":2}`) {
		t.Fatalf("STATE after retention: %s", st)
	}
}

// scrape fetches a node's /metrics and returns the value of every sample
// whose line starts with one of the names (with labels, as written).
func scrape(t *testing.T, n *Node) map[string]float64 {
	t.Helper()
	resp, err := http.Get("http://" + n.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	for _, line := range strings.Split(string(body), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

func TestClusterMetricsEndpointMovesWithTraffic(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.HTTPAddr = "127.0.0.1:0" })
	n := c.nodes[1]
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := http.Get("http://" + n.HTTPAddr() + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	before := scrape(t, n)
	a := c.client(1)
	a.must("REGISTER met", "OK")
	for i := 0; i < 20; i++ {
		a.must(fmt.Sprintf("PUT met m%d", i), "OK")
	}
	a.must(mput("met", "x", "y", "z"), "OK 20 3")
	a.must("GET met", "OK m0")
	a.do("READ met 0 5")
	a.must("PUT nope x", "ERR unknown topic nope")
	after := scrape(t, n)
	moved := func(series string, by float64) {
		t.Helper()
		if d := after[series] - before[series]; d < by {
			t.Errorf("%s moved by %v, want at least %v (before %v, after %v)", series, d, by, before[series], after[series])
		}
	}
	moved(`walrus_requests_total{command="PUT",result="ok"}`, 20)
	moved(`walrus_requests_total{command="PUT",result="error"}`, 1)
	moved(`walrus_requests_total{command="GET",result="ok"}`, 1)
	moved(`walrus_request_seconds_count{command="PUT"}`, 21)
	moved(`walrus_put_batch_entries_sum`, 23)
	moved(`walrus_read_entries_total`, 5)
	moved(`walrus_get_entries_total`, 1)
	moved(`walrus_wal_batches_total`, 1)
	moved(`walrus_wal_append_seconds_count`, 1)
	if after[`walrus_raft_state{state="Leader"}`] != 1 || after[`walrus_write_lease`] != 1 {
		t.Errorf("node 1 should lead raft and hold its lease: %v %v", after[`walrus_raft_state{state="Leader"}`], after[`walrus_write_lease`])
	}
	if after[`walrus_client_connections`] < 1 || after[`walrus_segments{state="open"}`] < 1 {
		t.Errorf("connections %v, open segments %v", after[`walrus_client_connections`], after[`walrus_segments{state="open"}`])
	}
	if _, ok := after["go_goroutines"]; !ok {
		t.Error("runtime metrics missing")
	}
}

// TestClusterRaftLeaderCrash kills the raft leader: a new one is elected
// and accepts proposals (REGISTER) within 3 s, and the data path goes on.
func TestClusterRaftLeaderCrash(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.client(2).must("REGISTER before", "OK")
	c.client(2).must("PUT before x", "OK")
	var old uint64
	for id, n := range c.nodes {
		if n.IsRaftLeader() {
			old = id
		}
	}
	c.nodes[old].Crash()
	delete(c.nodes, old)
	other := uint64(1)
	for other == old {
		other++
	}
	start := time.Now()
	c.client(other).must("REGISTER after", "OK")
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("a proposal took %v after the raft leader died, want <= 3s", d)
	}
	t.Logf("new raft leader accepted a proposal %v after the crash", time.Since(start))
	c.client(other).must("PUT after y", "OK")
	c.client(other).must("GET after", "OK y")
}

// TestClusterBootstrapWithInitialPeers forms a cluster the other way: every
// node starts with the same --initial-peer list and no --join.
func TestClusterBootstrapWithInitialPeers(t *testing.T) {
	dir := t.TempDir()
	ports := make([]string, 3)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().String()
		l.Close()
	}
	peers := []string{"1@" + ports[0], "2@" + ports[1], "3@" + ports[2]}
	c := &testCluster{t: t, dir: dir, nodes: map[uint64]*Node{}, cfgs: map[uint64]Config{}}
	t.Cleanup(c.stopAll)
	for id := uint64(1); id <= 3; id++ {
		c.start(Config{NodeID: id, DataDir: dir, ClientAddr: "127.0.0.1:0", RaftAddr: ports[id-1],
			InitialPeers: peers, Logger: testLogger(t), RaftHeartbeat: 300 * time.Millisecond})
	}
	c.waitFor("a leader and all three nodes announced", 20*time.Second, func() bool {
		for _, n := range c.nodes {
			if n.IsRaftLeader() && len(n.State().Nodes) == 3 {
				return true
			}
		}
		return false
	})
	c.client(3).must("REGISTER boot", "OK")
	c.client(2).must("PUT boot z", "OK")
	c.client(1).must("GET boot", "OK z")
	if bad := c.client(1).do("NODES"); strings.Count(bad, `"suffrage":"voter"`) != 3 {
		t.Fatalf("NODES: %s", bad)
	}
}

// TestClientIdleAndStalledFramesTimeOut: a connection that sends nothing,
// or stops in the middle of a frame, is closed; others are unaffected.
func TestClientIdleAndStalledFramesTimeOut(t *testing.T) {
	c := newTestCluster(t, 1, func(cfg *Config) { cfg.ClientIdleTimeout = 300 * time.Millisecond })
	idle := c.client(1)
	stalled := c.client(1)
	stalled.c.Write([]byte{10, 0, 0, 0, 'P', 'U'}) // header says 10 bytes, 2 sent
	for _, cl := range []*client{idle, stalled} {
		_ = cl.c.SetReadDeadline(time.Now().Add(10 * time.Second))
		buf := make([]byte, 16)
		if n, err := cl.c.Read(buf); err == nil {
			t.Fatalf("connection still open after the idle timeout (read %q)", buf[:n])
		}
	}
	c.client(1).must("REGISTER alive", "OK")
}

// A client that half-closes its connection after its requests (FIN, as
// "nc -N" does) still gets the answer to a plain GET: only long polls,
// which wait for entries to come, are withdrawn when the connection ends.
func TestHalfClosedClientGetsPlainGet(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.client(1).must("REGISTER half", "OK")
	c.client(1).must("PUT half x", "OK")
	for _, via := range []uint64{1, 2} { // at the cursor owner, and forwarded to it
		cl := c.client(via)
		cl.send("GET half")
		cl.send("GETW half 60000")
		if err := cl.w.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := cl.c.(*net.TCPConn).CloseWrite(); err != nil {
			t.Fatal(err)
		}
		if via == 1 {
			if got := cl.recv(); got != "OK x" {
				t.Fatalf("GET through node %d, then FIN: got %q, want \"OK x\"", via, got)
			}
		} else if got := cl.recv(); got != "EMPTY" {
			t.Fatalf("GET through node %d, then FIN: got %q, want EMPTY", via, got)
		}
		if got := cl.recv(); !strings.HasPrefix(got, "ERR") {
			t.Fatalf("GETW through node %d, then FIN: got %q, want it withdrawn (ERR)", via, got)
		}
	}
}

// A client waiting for a long poll is not idle: a GETW longer than the idle
// timeout gets its answer (the idle timeout closes a connection, and that
// withdraws its long polls).
func TestClientIdleTimeoutSparesALongPoll(t *testing.T) {
	c := newTestCluster(t, 1, func(cfg *Config) { cfg.ClientIdleTimeout = 300 * time.Millisecond })
	cl := c.client(1)
	cl.must("REGISTER idle", "OK")
	cl.must("GETW idle 1000", "EMPTY")
	cl.must("PUT idle x", "OK")
	cl.must("GETW idle 1000", "OK x")

	// answered, the long poll holds the connection no longer: it idles
	// out after ClientIdleTimeout (it stayed open for the poll's wait plus
	// RequestTimeout plus the idle timeout, 11.3 s here, when the hold
	// outlived the answer)
	quiet := c.client(1)
	quiet.must("PUT idle y", "OK")
	quiet.must("GETW idle 1000", "OK y")
	closed := make(chan error, 1)
	go func() { _, err := quiet.c.Read(make([]byte, 1)); closed <- err }()
	select {
	case err := <-closed:
		if err == nil {
			t.Fatal("the node sent bytes nobody asked for")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a connection idle after its long poll was answered was still open 5 s later (idle timeout 300 ms)")
	}
}

// A GET forwarded to the cursor owner whose caller stops waiting for it
// (GetReq.BudgetMs, less getBudgetMargin) is answered without an entry
// then, although its long poll has longer to run: an entry handed to it
// would reach nobody. The entry written after goes to the next GET.
func TestForwardedGetPastItsBudgetTakesNoEntry(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	cl := c.client(1)
	cl.must("REGISTER budget", "OK")
	// REGISTER's OK comes when raft applied it; the topic's actors start a
	// moment later. A GET through the connection waits them out (it retries
	// "not ready"), handleGet below would not.
	cl.must("GET budget", "EMPTY")
	done := make(chan *messages.GetResp, 1)
	go func() {
		done <- c.nodes[1].handleGet(context.Background(), &messages.GetReq{Topic: "budget", Max: 1, WaitMs: 3000,
			BudgetMs: (getBudgetMargin + 200*time.Millisecond).Milliseconds()})
	}()
	select {
	case r := <-done:
		if r.Err.Code != messages.CodeCanceled || len(r.Entries) != 0 {
			t.Fatalf("GET past its budget: %+v, want CodeCanceled and no entry", r)
		}
	case <-time.After(2500 * time.Millisecond):
		t.Fatal("a GET whose caller's budget was spent still waited (for its 3 s long poll)")
	}
	cl.must("PUT budget x", "OK")
	cl.must("GET budget", "OK x")
}

// TestClusterReadYourWrites: an acknowledged PUT is readable at once by READ
// and GET through any node, even when two followers made it durable before
// the leader's own fsync (the leader serves it from its replication buffer).
func TestClusterReadYourWrites(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.client(1).must("REGISTER ryw", "OK")
	cls := []*client{c.client(1), c.client(2), c.client(3)}
	for i := 0; i < 300; i++ {
		cl := cls[i%3]
		p := fmt.Sprintf("e%03d", i)
		cl.must("PUT ryw "+p, "OK")
		cl.must(fmt.Sprintf("READ ryw %d 1", i), batch(i, p))
		cl.must("GET ryw", "OK "+p)
	}
}

// TestClusterRestartedFollowerKeepsReplicating: a follower restarted while
// the leader keeps writing catches up on the open segment it holds and
// counts toward the quorum again.
func TestClusterRestartedFollowerKeepsReplicating(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.client(1).must("REGISTER f", "OK")
	leader := uint64(c.nodes[1].State().Topics["f"].Active().Leader)
	follower, other := leader%3+1, (leader+1)%3+1
	ld := c.client(leader)
	for i := 0; i < 5; i++ {
		ld.must(fmt.Sprintf("PUT f a%d", i), "OK")
	}
	c.restart(follower)
	c.waitFor("the restarted follower caught up", 10*time.Second, func() bool { return c.nodes[follower].caughtUp.Load() })
	for i := 0; i < 5; i++ {
		ld.must(fmt.Sprintf("PUT f b%d", i), "OK")
	}
	c.nodes[other].Crash()
	delete(c.nodes, other)
	ld.must("PUT f c0", "OK")
	if got := ld.readAll("f"); len(got) != 11 || got[10] != "c0" {
		t.Fatalf("entries: %v", got)
	}
}

// TestSingleNodeRegistersRightAway: a fresh one-node cluster takes REGISTER
// as soon as it leads, though it has not recorded itself in the metadata yet.
func TestSingleNodeRegistersRightAway(t *testing.T) {
	dir := t.TempDir()
	c := &testCluster{t: t, dir: dir, nodes: map[uint64]*Node{}, cfgs: map[uint64]Config{}}
	t.Cleanup(c.stopAll)
	n := c.start(Config{NodeID: 1, DataDir: dir, ClientAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0",
		Logger: testLogger(t), RaftHeartbeat: 300 * time.Millisecond})
	c.waitFor("node 1 leads", 10*time.Second, n.IsRaftLeader)
	a := c.client(1)
	a.must("REGISTER first", "OK")
	a.must("PUT first x", "OK")
	a.must("GET first", "OK x")
}

// TestClusterConcurrentStopKeepsCursor stops every node at once right after
// some GETs (a whole-cluster SIGTERM): the cursor's last moves survive.
func TestClusterConcurrentStopKeepsCursor(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.MaxSegmentEntries = 7 })
	a := c.client(1)
	a.must("REGISTER keep", "OK")
	for i := 0; i < 20; i++ {
		a.must(fmt.Sprintf("PUT keep k%02d", i), "OK")
	}
	for i := 0; i < 5; i++ {
		a.must("GET keep", fmt.Sprintf("OK k%02d", i))
	}
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Add(1)
		go func(n *Node) { defer wg.Done(); n.Stop() }(n)
	}
	wg.Wait()
	c.nodes = map[uint64]*Node{}
	for id := uint64(1); id <= 3; id++ {
		c.start(c.cfgs[id])
	}
	b := c.client(2)
	for i := 5; i < 20; i++ {
		b.must("GET keep", fmt.Sprintf("OK k%02d", i))
	}
	b.must("GET keep", "EMPTY")
}

// TestClusterPipelinedPutsKeepOrder: 500 PUTs sent back to back on one
// connection, right after REGISTER, through the segment's leader and
// through a node that forwards to it: all OK, appended in the order sent.
func TestClusterPipelinedPutsKeepOrder(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.MaxSegmentEntries = 64 })
	c.client(1).must("REGISTER pipe", "OK")
	leader := uint64(c.nodes[1].State().Topics["pipe"].Active().Leader)
	var want []string
	for _, via := range []uint64{leader, leader%3 + 1} {
		cl := c.client(via)
		for i := 0; i < 500; i++ {
			p := fmt.Sprintf("via%d-%03d", via, i)
			want = append(want, p)
			cl.send("PUT pipe " + p)
		}
		for i := 0; i < 500; i++ {
			if r := cl.recv(); r != "OK" {
				t.Fatalf("reply %d via node %d: %q", i, via, r)
			}
		}
	}
	got := c.client(3).readAll("pipe")
	if strings.Join(got, ",") != strings.Join(want, ",") {
		for i := range want {
			if i >= len(got) || got[i] != want[i] {
				t.Fatalf("order differs at %d: got %v, want %s (read %d of %d)", i, got[i:min(i+3, len(got))], want[i], len(got), len(want))
			}
		}
		t.Fatalf("read %d entries, want %d: extra entries after the %d written: %v", len(got), len(want), len(want), got[len(want):])
	}
}

// TestClusterSegmentsSealedWhileANodeWasDownAreToppedUp: segments placed
// while a node was down get two replicas; when it returns, every sealed
// segment is brought back to RF 3 with its data copied.
func TestClusterSegmentsSealedWhileANodeWasDownAreToppedUp(t *testing.T) {
	c := newTestCluster(t, 3, func(cfg *Config) { cfg.MaxSegmentEntries = 3 })
	a := c.client(1)
	a.must("REGISTER top", "OK")
	c.stop(3)
	c.waitFor("node 3 marked not live", 15*time.Second, func() bool {
		ni := c.nodes[1].State().Nodes[3]
		return ni != nil && !ni.Live
	})
	for i := 0; i < 12; i++ {
		a.must(fmt.Sprintf("PUT top t%02d", i), "OK")
	}
	small := 0
	for _, g := range c.nodes[1].State().Topics["top"].Segments {
		if g.Sealed() && len(g.Replicas) == 2 {
			small++
		}
	}
	if small == 0 {
		t.Fatal("no segment was sealed with two replicas while node 3 was down: the test lost its point")
	}
	c.start(c.cfgs[3])
	c.waitFor("every sealed segment back at three full copies", 30*time.Second, func() bool {
		for _, g := range c.anyNode().State().Topics["top"].Segments {
			if g.Sealed() && len(g.Replicas) != 3 {
				return false
			}
		}
		ok, _ := c.holdsAll("top")
		return ok
	})
	if m := a.do("METRICS"); !strings.Contains(m, `"under_replicated_segments":0`) {
		t.Fatalf("METRICS: %s", m)
	}
}

// TestClusterRemovingAFollowerKeepsWritesFlowing: removing a node that
// follows the active segment rolls the segment over gracefully: a writer
// running meanwhile sees no error at all.
func TestClusterRemovingAFollowerKeepsWritesFlowing(t *testing.T) {
	c := newTestCluster(t, 4, nil)
	c.client(1).must("REGISTER flow rf=3", "OK")
	act := c.nodes[1].State().Topics["flow"].Active()
	var victim, via uint64
	for _, r := range act.Replicas {
		if r != act.Leader {
			victim = uint64(r)
		}
	}
	for id := uint64(1); id <= 4; id++ {
		if id != victim {
			via = id
		}
	}
	w := c.client(via)
	done := make(chan struct{})
	errs := make(chan string, 1000)
	go func() {
		defer close(done)
		for i := 0; i < 300; i++ {
			if r := w.do(fmt.Sprintf("PUT flow w%03d", i)); r != "OK" {
				errs <- r
			}
		}
	}()
	c.client(via).must(fmt.Sprintf("REMOVENODE %d", victim), "OK")
	<-done
	close(errs)
	for e := range errs {
		t.Errorf("a write failed while a follower was removed: %q", e)
	}
	c.waitFor("the segment the removed node followed is sealed", 10*time.Second, func() bool {
		return c.nodes[via].State().Topics["flow"].SegmentByID(act.ID).Sealed()
	})
	if got := c.client(via).readAll("flow"); len(got) != 300 {
		t.Fatalf("read %d entries, want 300", len(got))
	}
}

// TestStartFailureIsReportedAndCleansUp: a node whose port is taken fails
// to start with an error (no panic) and releases what it had opened.
func TestStartFailureIsReportedAndCleansUp(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	cfg := Config{NodeID: 1, DataDir: dir, ClientAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0",
		HTTPAddr: busy.Addr().String(), Logger: testLogger(t)}
	n, err := Start(cfg)
	if err == nil || n != nil || !strings.Contains(err.Error(), "listen on http port") {
		t.Fatalf("Start with a taken HTTP port: %v, %v", n, err)
	}
	// everything it opened was released: the same data dir starts again
	cfg.HTTPAddr = ""
	n, err = Start(cfg)
	if err != nil {
		t.Fatalf("restart after a failed start: %v", err)
	}
	n.Stop()
}

// TestClusterEmptyPeerWriteIsRefused: a PutReq without entries (clients
// cannot send one, a peer can) gets an invalid-request answer, not a waiter
// that is never released.
func TestClusterEmptyPeerWriteIsRefused(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.client(1).must("REGISTER empty rf=3", "OK")
	c.client(1).must("PUT empty x", "OK")
	resp, _ := c.putFromPeer("empty", nil)
	if resp.Err.Code != messages.CodeInvalid {
		t.Fatalf("empty write answered %+v, want CodeInvalid", resp)
	}
}

// putFromPeer sends a PutReq of entries for topic to the node leading its
// active segment from another node, as a forwarded write travels, and
// returns the answer and the sending node.
func (c *testCluster) putFromPeer(topic string, entries [][]byte) (resp messages.PutResp, from uint64) {
	c.t.Helper()
	leader := uint64(c.nodes[1].State().Topics[topic].Active().Leader)
	from = leader%3 + 1
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.nodes[from].call(ctx, leader, messages.KindPut, &messages.PutReq{Topic: topic, Entries: entries}, &resp); err != nil {
		c.t.Fatalf("call: %v", err)
	}
	return resp, from
}

// answered counts the client requests of command cmd that node n has
// answered (walrus_requests_total, every result).
func answered(t testing.TB, n *Node, cmd string) float64 {
	t.Helper()
	mfs, err := n.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "walrus_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "command" && l.GetValue() == cmd {
					total += m.GetCounter().GetValue()
				}
			}
		}
	}
	return total
}

// TestClusterAbandonedLongPollsTakeNoEntry: clients that send a GETW and
// close their connections at once, before anything is written, must not
// take entries: the node cancels a connection's long polls when it ends,
// at the cursor owner too when another node forwarded them there. (As
// reported: five such clients, then six PUTs, and a live client's GET got
// only the sixth; the others went to nobody.)
func TestClusterAbandonedLongPollsTakeNoEntry(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	const owner, other = 1, 2 // node 1 leads raft: it owns the cursor
	live := c.client(3)
	live.must("REGISTER dw", "OK")
	live.must("GET dw", "EMPTY")
	for i := range 5 {
		via := uint64(owner) // three wait at the owner itself
		if i%2 == 1 {
			via = other // two are forwarded there by another node
		}
		cl := c.client(via)
		cl.sendNow("GETW dw 300000")
		if err := cl.c.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// Each is answered (into the closed connection) once withdrawn; before
	// the fix they waited for an entry, or their 300 s.
	c.waitFor("the five abandoned GETWs to be withdrawn", 10*time.Second, func() bool {
		return answered(t, c.nodes[owner], "GETW") == 3 && answered(t, c.nodes[other], "GETW") == 2
	})
	for i := range 6 {
		live.must(fmt.Sprintf("PUT dw e%d", i), "OK")
	}
	for i := range 6 {
		live.must("GET dw", fmt.Sprintf("OK e%d", i))
	}
	live.must("GET dw", "EMPTY")
}

// TestClusterGracefulStopHandsOverSegments: a node stopped gracefully
// seals the open segment it leads at what it acknowledged, and the next
// segment opens on another node, so writers go on without waiting for a
// failover. The old segment keeps epoch 1: a failover fences it first,
// which raises its epoch.
func TestClusterGracefulStopHandsOverSegments(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.client(1).must("REGISTER h", "OK")
	first := *c.nodes[1].State().Topics["h"].Active()
	leader := uint64(first.Leader)
	other := leader%3 + 1
	cl := c.client(other)
	for i := 0; i < 3; i++ {
		cl.must(fmt.Sprintf("PUT h e%d", i), "OK")
	}
	c.stop(leader)
	c.waitFor("the stopped node's segment to be sealed", 10*time.Second, func() bool {
		return c.nodes[other].State().Topics["h"].Active().ID != first.ID
	})
	tp := c.nodes[other].State().Topics["h"]
	old := tp.Segments[len(tp.Segments)-2]
	if old.ID != first.ID || old.Epoch != 1 || old.Count != 3 {
		t.Fatalf("segment %d after a graceful stop of its leader: epoch %d, %d entries; want epoch 1 (sealed by its leader, not fenced by a failover), 3 entries",
			old.ID, old.Epoch, old.Count)
	}
	if next := tp.Active(); uint64(next.Leader) == leader {
		t.Fatalf("the next segment is led by the stopped node %d", leader)
	}
	cl.must("PUT h e3", "OK")
	if got := cl.readAll("h"); !slices.Equal(got, []string{"e0", "e1", "e2", "e3"}) {
		t.Fatalf("entries: %v", got)
	}
}
