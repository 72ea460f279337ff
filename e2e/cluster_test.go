package e2e

import (
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// smallSegments makes segments roll over every n entries, checked often.
func smallSegments(n int) clusterOpts {
	return clusterOpts{env: map[string]string{
		"WALRUS_MAX_SEGMENT_ENTRIES": fmt.Sprint(n),
		"WALRUS_MONITOR_CHECK_MS":    "100",
	}}
}

// Scenario 2 (COMPAT "Rollover"): with a threshold of 10, 60 PUTs leave
// segments 1..6 sealed at exactly 10 each, leaders spread over all three
// nodes, segment 7 open; another node reads all 60 back in order.
func TestRolloverSealsExactCountsRoundRobin(t *testing.T) {
	c := startCluster(t, 3, smallSegments(10))
	a := c.dial(1)
	a.mustDo("REGISTER roll", "OK")
	for i := range 60 {
		a.mustDo(fmt.Sprintf("PUT roll e%02d", i), "OK")
	}

	wantSealed := map[string]int64{}
	for s := 1; s <= 6; s++ {
		wantSealed[fmt.Sprint(s)] = 10
	}
	// every node's metadata converges on the same STATE
	var st jsonObj
	c.waitFor("every node's STATE roll to show segments 1..6 sealed at 10 and segment 7 open", 10*time.Second, func() error {
		var first string
		for _, id := range c.ids() {
			m, err := c.rawJSON(id, "STATE roll")
			if err != nil {
				return err
			}
			if got := intMap(m.get("sealed_segments")); !maps.Equal(got, wantSealed) {
				return fmt.Errorf("node %d: sealed_segments %v", id, m.get("sealed_segments"))
			}
			if s := fmt.Sprint(m); first == "" {
				first, st = s, m
			} else if s != first {
				return fmt.Errorf("nodes disagree: node 1 %s, node %d %s", first, id, s)
			}
		}
		return nil
	})
	expectInt(t, st, "current_segment", 7)
	expectInt(t, st, "last_sealed_entry_offset", 60)
	leaders := intMap(st.get("segment_leaders"))
	if len(leaders) != 7 {
		t.Fatalf("segment_leaders %v: want segments 1..7", st.get("segment_leaders"))
	}
	seen := map[int64]bool{}
	for s := 1; s <= 7; s++ {
		l, ok := leaders[fmt.Sprint(s)]
		if !ok {
			t.Fatalf("segment_leaders %v: no segment %d", st.get("segment_leaders"), s)
		}
		seen[l] = true
	}
	if len(seen) != 3 || !seen[1] || !seen[2] || !seen[3] {
		t.Fatalf("segment_leaders %v: want every node 1, 2, 3 to lead a segment", st.get("segment_leaders"))
	}
	expectInt(t, st, "leader_node", leaders["7"])

	b := c.dial(2)
	for i := range 60 {
		b.mustDo("GET roll", fmt.Sprintf("OK e%02d", i))
	}
	b.mustDo("GET roll", "EMPTY")
	c.dial(3).mustDo("GET roll", "EMPTY")
}

// Scenario 3 (COMPAT "REGISTER on any node; PUT/GET on any node"): every
// node takes PUTs and GETs, interleaved; GETs see the acknowledged PUTs in
// the order they were made. Small segments put the data on every node.
func TestPutGetThroughEveryNode(t *testing.T) {
	c := startCluster(t, 3, smallSegments(7))
	conns := []*conn{c.dial(1), c.dial(2), c.dial(3)}
	conns[2].mustDo("REGISTER mix", "OK")
	conns[0].mustDo("REGISTER mix", "OK")

	var written, read []string
	get := func(cn *conn) {
		t.Helper()
		r := cn.do("GET mix")
		p, ok := strings.CutPrefix(r, "OK ")
		if !ok {
			t.Fatalf("node %d: GET mix after %d reads of %d writes: got %q", cn.id, len(read), len(written), r)
		}
		read = append(read, p)
	}
	for i := range 45 {
		w := conns[i%3]
		p := fmt.Sprintf("m%02d-via-%d", i, w.id)
		w.mustDo("PUT mix "+p, "OK")
		written = append(written, p)
		if i%3 == 2 { // two GETs per three PUTs, each through the next node in turn
			get(conns[(i/3)%3])
			get(conns[(i/3+1)%3])
		}
	}
	for len(read) < len(written) {
		get(conns[len(read)%3])
	}
	for _, cn := range conns {
		cn.mustDo("GET mix", "EMPTY")
	}
	if !slices.Equal(read, written) {
		t.Fatalf("GETs out of write order:\n got %v\nwant %v", read, written)
	}
}

// Scenario 4a (COMPAT "A whole-cluster stop and start keeps every
// acknowledged entry and the topic metadata"): SIGTERM every node, start
// them all again with the same flags: STATE keeps what it said (see
// stateKept), GET continues where it stopped, PUT and GET work.
//
// The shared cursor is committed through raft in batches; this test lets
// the commit of its five GETs land before the stop.
// TestWholeClusterStopRightAfterGetsKeepsCursor stops the cluster at once.
func TestWholeClusterRestartKeepsEntriesMetadataAndCursor(t *testing.T) {
	c := startCluster(t, 3, smallSegments(7))
	a := c.dial(1)
	a.mustDo("REGISTER keep", "OK")
	for i := range 20 {
		a.mustDo(fmt.Sprintf("PUT keep k%02d", i), "OK")
	}
	for i := range 5 {
		a.mustDo("GET keep", fmt.Sprintf("OK k%02d", i))
	}
	c.waitCursorCommitted("keep", 5)
	before := c.dial(2).do("STATE keep")

	c.stopAll()
	c.startAll()
	c.waitReady()

	b := c.dial(2)
	if err := stateKept(before, b.do("STATE keep"), 20); err != nil {
		t.Error(err)
	}
	for i := 5; i < 20; i++ {
		b.mustDo("GET keep", fmt.Sprintf("OK k%02d", i))
	}
	b.mustDo("GET keep", "EMPTY")
	c.dial(3).mustDo("PUT keep after", "OK")
	c.dial(1).mustDo("GET keep", "OK after")
	b.mustDo("GET keep", "EMPTY")
	want := []string{}
	for i := range 20 {
		want = append(want, fmt.Sprintf("k%02d", i))
	}
	want = append(want, "after")
	if got := c.dial(3).readAll("keep"); !slices.Equal(got, want) {
		t.Fatalf("READ keep from 0:\n got %v\nwant %v", got, want)
	}
}

// Scenario 4a, the stop racing the cursor commit: SIGTERM every node right
// after five GETs. A graceful stop flushes the cursor (DESIGN "Reads and
// cursors": it survives restarts), so GET must continue at the sixth entry.
// Regression test: before 25c61ee the raft leader's flush found no quorum
// (the other nodes had stopped) and GET started over at k00 in most runs.
func TestWholeClusterStopRightAfterGetsKeepsCursor(t *testing.T) {
	c := startCluster(t, 3, smallSegments(7))
	a := c.dial(1)
	a.mustDo("REGISTER keep", "OK")
	for i := range 20 {
		a.mustDo(fmt.Sprintf("PUT keep k%02d", i), "OK")
	}
	for i := range 5 {
		a.mustDo("GET keep", fmt.Sprintf("OK k%02d", i))
	}

	c.stopAll()
	c.startAll()
	c.waitReady()

	b := c.dial(2)
	for i := 5; i < 20; i++ {
		b.mustDo("GET keep", fmt.Sprintf("OK k%02d", i))
	}
	b.mustDo("GET keep", "EMPTY")
}

// Stopping a whole cluster at once (walrus dev's Ctrl-C, a service
// manager stopping every node) is not a fault, and the nodes' logs must
// not say it is: from its "stopping" line on, no node logs an error, and
// raft (whose peers vanish under it) no warning either. The raft leader,
// left without anyone to hand over to, says it stepped down rather than
// naming a new leader. Before this was fixed, the leader logged a dozen
// raft errors (heartbeats refused, no quorum) and "handed over to=0".
func TestWholeClusterStopLogsNoFaults(t *testing.T) {
	c := startCluster(t, 3, clusterOpts{})
	leader := c.raftLeader(1)
	if leader == 0 {
		t.Fatal("no raft leader in METRICS")
	}
	a := c.dial(1)
	a.mustDo("REGISTER quiet", "OK")
	for i := range 5 {
		a.mustDo(fmt.Sprintf("PUT quiet q%d", i), "OK")
	}
	a.mustDo("GET quiet", "OK q0")

	c.stopAll()
	for _, nd := range c.nodes {
		b, err := os.ReadFile(nd.logPath)
		if err != nil {
			t.Fatal(err)
		}
		log := string(b)
		stopping, ok := afterStopping(log)
		if !ok {
			t.Fatalf("node %d's log has no stopping line:\n%s", nd.id, lastLines(log, 20))
		}
		for _, line := range faultsLogged(stopping) {
			t.Errorf("node %d logged while stopping: %s", nd.id, line)
		}
		if nd.id == leader && strings.Contains(stopping, " to=0") {
			t.Errorf("node %d (the raft leader) names node 0 as its successor:\n%s", nd.id, lastLines(log, 10))
		}
	}
}

// afterStopping is a node's log from its "stopping" line on (SIGTERM or
// SIGINT received), and whether it has one.
func afterStopping(log string) (string, bool) {
	at := strings.Index(log, "msg=stopping")
	if at < 0 {
		return "", false
	}
	return log[at:], true
}

// faultsLogged lists the lines of log that report a fault: errors and
// warnings, the node's own and raft's.
func faultsLogged(log string) []string {
	var out []string
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "level=ERROR") || strings.Contains(line, "level=WARN") {
			out = append(out, line)
		}
	}
	return out
}

// Scenario 4b: SIGKILL every node while a writer is busy. After a restart
// every acknowledged entry is still there (READ, in write order), and the
// shared cursor skipped nothing: GET resumes at or before where it was
// (at-least-once), repeating entries only from the crash point.
// The nodes run at the default --fsync, which their start lines name.
func TestWholeClusterKillKeepsAcknowledgedEntriesAndCursor(t *testing.T) {
	ranWithFsync(t, wholeClusterKill(t, smallSegments(7)), "always")
}

// The same under --fsync interval: a process crash loses nothing there
// either (the page cache keeps what was written), while the interval's
// syncs run beside the writes and the rollovers every 7 entries wait for
// them.
func TestWholeClusterKillUnderIntervalSync(t *testing.T) {
	wholeClusterKillWithFsync(t, "interval:20ms")
}

// And under --fsync never, where only seals, truncations and closes sync.
func TestWholeClusterKillUnderNoSync(t *testing.T) {
	wholeClusterKillWithFsync(t, "never")
}

// wholeClusterKillWithFsync runs wholeClusterKill with the nodes at
// --fsync mode and checks each node's start line names that mode.
func wholeClusterKillWithFsync(t *testing.T, mode string) {
	opts := smallSegments(7)
	opts.args = []string{"--fsync", mode}
	ranWithFsync(t, wholeClusterKill(t, opts), mode)
}

// ranWithFsync fails t unless every node of c logged that it ran with
// --fsync mode.
func ranWithFsync(t *testing.T, c *cluster, mode string) {
	t.Helper()
	for _, nd := range c.nodes {
		if b, _ := os.ReadFile(nd.logPath); !strings.Contains(string(b), "fsync="+mode) {
			t.Fatalf("node %d's log does not say it ran with --fsync %s", nd.id, mode)
		}
	}
}

func wholeClusterKill(t *testing.T, opts clusterOpts) *cluster {
	c := startCluster(t, 3, opts)
	a := c.dial(1)
	a.mustDo("REGISTER crash", "OK")
	var acked []string
	for i := range 30 {
		p := fmt.Sprintf("c%02d", i)
		a.mustDo("PUT crash "+p, "OK")
		acked = append(acked, p)
	}
	const consumed = 10
	for i := range consumed {
		a.mustDo("GET crash", "OK "+acked[i])
	}

	// A writer on node 2 PUTs one entry at a time until the crash breaks
	// its connection: all it got "OK" for is acknowledged, and at most the
	// one in flight is in doubt.
	type outcome struct {
		acked    []string
		inFlight string
		err      error
	}
	progress := make(chan int, 1000)
	result := make(chan outcome, 1)
	w, err := dialClient(c.node(2).clientAddr())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	go func() {
		var o outcome
		for i := 0; ; i++ {
			p := fmt.Sprintf("w%04d", i)
			r, err := w.roundTrip([]byte("PUT crash " + p))
			if err != nil || string(r) != "OK" {
				o.inFlight, o.err = p, fmt.Errorf("%s: reply %q, error %v", p, r, err)
				result <- o
				return
			}
			o.acked = append(o.acked, p)
			progress <- len(o.acked)
		}
	}()
	for n := 0; n < 15; {
		select {
		case n = <-progress:
		case o := <-result:
			t.Fatalf("writer failed before the crash after %d PUTs: %v", len(o.acked), o.err)
		case <-time.After(replyTimeout):
			t.Fatal("writer made no progress for 20s")
		}
	}
	c.killAll()
	o := <-result
	t.Logf("killed every node with %d writer PUTs acknowledged; in doubt: %s", len(o.acked), o.err)
	acked = append(acked, o.acked...)

	c.startAll()
	c.waitReady()

	var got []string
	start := time.Now()
	c.waitFor("node 3 to serve READ crash from offset 0 to the end", readyTimeout, func() (err error) {
		got, err = c.tryReadAll(3, "crash")
		return err
	})
	t.Logf("READ served %v after the cluster was ready", time.Since(start).Round(time.Millisecond))
	want := acked
	if len(got) == len(acked)+1 {
		want = append(slices.Clone(acked), o.inFlight) // the PUT in doubt made it
	}
	if !slices.Equal(got, want) {
		t.Fatalf("READ crash after the crash: %d entries\n got %v\nwant %v (acknowledged, in order, maybe + %s)",
			len(got), got, acked, o.inFlight)
	}

	rest := c.dial(1).getAll("crash")
	if len(rest) == 0 {
		t.Fatalf("GET after the crash: EMPTY at once, want entries from offset <= %d", consumed)
	}
	resume := slices.Index(got, rest[0])
	if resume < 0 || resume > consumed || !slices.Equal(rest, got[resume:]) {
		t.Fatalf("shared cursor after the crash: GETs returned %v\nwant a suffix of %v starting at or before offset %d",
			rest, got, consumed)
	}
	t.Logf("cursor resumed at offset %d (%d repeated)", resume, consumed-resume)

	c.dial(2).mustDo("PUT crash after", "OK")
	c.dial(3).mustDo("GET crash", "OK after")
	c.dial(1).mustDo("GET crash", "EMPTY")
	return c
}

// expectInt fails the test unless obj[key] is the JSON integer want.
func expectInt(t *testing.T, obj jsonObj, key string, want int64) {
	t.Helper()
	got, ok := asInt(obj.get(key))
	if !ok || got != want {
		t.Fatalf("%s = %v, want %d in %v", key, obj.get(key), want, obj)
	}
}

// intMap converts a JSON object of integers; values that are not integers
// are left out, so a comparison with the expected map catches them.
func intMap(v any) map[string]int64 {
	o, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	out := map[string]int64{}
	for k, x := range o {
		if n, ok := asInt(x); ok {
			out[k] = n
		}
	}
	return out
}

// waitCursorCommitted waits until every node's STATE shows the topic's
// shared cursor (our "cursor" key) at pos: GETs before it are committed
// through raft.
func (c *cluster) waitCursorCommitted(topic string, pos int64) {
	c.t.Helper()
	c.waitFor(fmt.Sprintf("every node's STATE %s to show cursor %d", topic, pos), 10*time.Second, func() error {
		for _, id := range c.ids() {
			st, err := c.rawJSON(id, "STATE "+topic)
			if err != nil {
				return err
			}
			if n, ok := asInt(st.get("cursor")); !ok || n != pos {
				return fmt.Errorf("node %d: cursor %v", id, st.get("cursor"))
			}
		}
		return nil
	})
}

// segmentLeader is the node leading the topic's active segment, from node
// 1's STATE.
func (c *cluster) segmentLeader(topic string) int {
	c.t.Helper()
	st, err := c.rawJSON(1, "STATE "+topic)
	if err != nil {
		c.t.Fatal(err)
	}
	l, ok := asInt(st.get("leader_node"))
	if !ok {
		c.t.Fatalf("STATE %s: leader_node %#v", topic, st.get("leader_node"))
	}
	return int(l)
}

// stateKept checks that STATE after a restart keeps what STATE said before
// it, for a topic holding total entries. The node may go on from there: it
// seals a segment whose leader restarted (fenced first, then sealed with
// the entries it holds) and opens the next one, so the active segment may
// have moved on; everything that was settled must be unchanged.
func stateKept(beforeJSON, afterJSON string, total int64) error {
	before, err := decodeJSON(beforeJSON)
	if err != nil {
		return err
	}
	after, err := decodeJSON(afterJSON)
	if err != nil {
		return err
	}
	fail := func(format string, args ...any) error {
		return fmt.Errorf("STATE across the restart: "+format+"\nbefore %s\n after %s", append(args, beforeJSON, afterJSON)...)
	}
	bSealed, aSealed := intMap(before.get("sealed_segments")), intMap(after.get("sealed_segments"))
	for seg, n := range bSealed {
		if aSealed[seg] != n {
			return fail("sealed segment %s held %d entries, now %d", seg, n, aSealed[seg])
		}
	}
	bLeaders, aLeaders := intMap(before.get("segment_leaders")), intMap(after.get("segment_leaders"))
	for seg, l := range bLeaders {
		if aLeaders[seg] != l {
			return fail("segment %s was led by node %d, now by %d", seg, l, aLeaders[seg])
		}
	}
	bCur, _ := asInt(before.get("current_segment"))
	aCur, _ := asInt(after.get("current_segment"))
	bOff, _ := asInt(before.get("last_sealed_entry_offset"))
	aOff, _ := asInt(after.get("last_sealed_entry_offset"))
	switch {
	case aCur < bCur:
		return fail("current_segment went back")
	case aCur > bCur && aSealed[fmt.Sprint(bCur)] != total-bOff:
		return fail("segment %d was sealed with %d entries, it held %d", bCur, aSealed[fmt.Sprint(bCur)], total-bOff)
	}
	var sum int64
	for _, n := range aSealed {
		sum += n
	}
	if aOff != sum {
		return fail("last_sealed_entry_offset %d is not the sum of sealed_segments %d", aOff, sum)
	}
	if l, _ := asInt(after.get("leader_node")); l != aLeaders[fmt.Sprint(aCur)] {
		return fail("leader_node %d does not lead current_segment %d", l, aCur)
	}
	if fmt.Sprint(before.get("cursor")) != fmt.Sprint(after.get("cursor")) {
		return fail("cursor moved from %v to %v", before.get("cursor"), after.get("cursor"))
	}
	return nil
}

// A raft leader stopped with SIGTERM (a rolling restart) commits the
// shared cursor and hands raft leadership to a follower before it exits
// (its log says so; without the hand-over the others elect a leader once
// their election timeout has passed), and GETs go on through the others
// from where the cursor was.
func TestGracefulStopHandsOverRaftLeadership(t *testing.T) {
	c := startCluster(t, 3, clusterOpts{})
	leader := c.raftLeader(1)
	if leader == 0 {
		t.Fatal("no raft leader in METRICS")
	}
	via := leader%3 + 1
	a := c.dial(via)
	a.mustDo("REGISTER g", "OK")
	for _, p := range []string{"g1", "g2", "g3"} {
		a.mustDo("PUT g "+p, "OK")
	}
	a.mustDo("GET g", "OK g1")

	c.stop(leader)
	if log := c.nodeLog(leader); !strings.Contains(log, "raft leadership handed over") {
		t.Fatalf("node %d's log does not say it handed raft leadership over:\n%s", leader, lastLines(log, 20))
	}
	c.waitFor("a running node to lead raft", readyTimeout, func() error {
		if l := c.raftLeader(via); l == 0 || l == leader {
			return fmt.Errorf("node %d: current_leader %d", via, l)
		}
		return nil
	})
	a = c.dial(via)
	a.mustDo("GET g", "OK g2")
	a.mustDo("GET g", "OK g3")
}

// A segment leader stopped with SIGTERM seals the open segment it leads
// before it exits (its log says so) at what it acknowledged, and the
// next segment opens on another node, which takes the next write.
func TestGracefulStopHandsOverSegments(t *testing.T) {
	c := startCluster(t, 3, clusterOpts{})
	c.dial(1).mustDo("REGISTER hs", "OK")
	seg, leader := c.openLeader("hs", 1)
	via := c.others(leader)[0]
	a := c.dial(via)
	for _, p := range []string{"h1", "h2"} {
		a.mustDo("PUT hs "+p, "OK")
	}
	c.stop(leader)
	if log := c.nodeLog(leader); !strings.Contains(log, "graceful stop: handed over the segments this node led") {
		t.Fatalf("node %d's log does not say it handed its segments over:\n%s", leader, lastLines(log, 20))
	}
	if n, _ := c.waitSealed("hs", seg, via, readyTimeout); n != 2 {
		t.Fatalf("segment %d sealed with %d entries, want 2", seg, n)
	}
	if _, next := c.openLeader("hs", via); next == leader {
		t.Fatalf("the next segment is led by the stopped node %d", leader)
	}
	a.mustDo("PUT hs h3", "OK")
	if got := c.waitReadAll(via, "hs"); !slices.Equal(got, []string{"h1", "h2", "h3"}) {
		t.Fatalf("entries: %v", got)
	}
}
