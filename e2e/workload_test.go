package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Concurrent producers for the failover tests, and the waits those tests
// share. A producer writes unique payloads with PUT, one request at a
// time, on its own connection to one node, and records every request in a
// history (op) for checkHistory.

// history is the ops of one scenario, from any number of producers.
type history struct {
	mu  sync.Mutex
	ops []op
}

func (h *history) add(o op) {
	h.mu.Lock()
	h.ops = append(h.ops, o)
	h.mu.Unlock()
}

// snapshot returns the ops recorded so far.
func (h *history) snapshot() []op {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.ops)
}

// ackedAfter counts acknowledged writes sent at or after t, by producer.
func (h *history) ackedAfter(t time.Time) map[string]int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := map[string]int{}
	for _, o := range h.ops {
		if o.outcome() == acked && !o.sent.Before(t) {
			n[o.producer]++
		}
	}
	return n
}

// firstAckAfter is the earliest answer time of a write sent at or after t
// and acknowledged, or zero.
func (h *history) firstAckAfter(t time.Time) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	var first time.Time
	for _, o := range h.ops {
		if o.outcome() == acked && !o.sent.Before(t) && (first.IsZero() || o.answered.Before(first)) {
			first = o.answered
		}
	}
	return first
}

// producerReplyTimeout bounds the wait for one PUT reply: above the node's
// own 10 s request deadline, so a reply that comes is always read.
const producerReplyTimeout = 15 * time.Second

// producers is a set of running producer goroutines.
type producers struct {
	c     *cluster
	h     *history
	topic string
	names []string
	stopc chan struct{}
	wg    sync.WaitGroup
}

// startProducers starts one producer per entry of nodes, each on its own
// connection to that node, writing to topic. Producer i is named
// "<tag>p<i>"; its payloads are "<name>-<msg>-<attempt>". A failed write
// is retried with the next attempt number (a new payload); after a broken
// connection the producer dials the same node again.
func startProducers(c *cluster, h *history, topic, tag string, nodes ...int) *producers {
	c.t.Helper()
	ps := &producers{c: c, h: h, topic: topic, stopc: make(chan struct{})}
	for i, id := range nodes {
		name := fmt.Sprintf("%sp%d", tag, i)
		ps.names = append(ps.names, name)
		addr := c.node(id).clientAddr()
		ps.wg.Add(1)
		go func() {
			defer ps.wg.Done()
			ps.run(name, id, addr)
		}()
	}
	return ps
}

func (ps *producers) stopped() bool {
	select {
	case <-ps.stopc:
		return true
	default:
		return false
	}
}

// sleep waits d or until stop; it reports whether to go on.
func (ps *producers) sleep(d time.Duration) bool {
	select {
	case <-ps.stopc:
		return false
	case <-time.After(d):
		return true
	}
}

func (ps *producers) run(name string, id int, addr string) {
	var cl *client
	defer func() {
		if cl != nil {
			cl.Close()
		}
	}()
	msg, attempt := 0, 0
	for !ps.stopped() {
		if cl == nil {
			var err error
			if cl, err = dialClient(addr); err != nil {
				cl = nil
				if !ps.sleep(50 * time.Millisecond) {
					return
				}
				continue
			}
			cl.timeout = producerReplyTimeout
		}
		o := op{producer: name, msg: msg, attempt: attempt, node: id, payload: fmt.Sprintf("%s-%d-%d", name, msg, attempt)}
		o.sent = time.Now()
		r, err := cl.roundTrip([]byte("PUT " + ps.topic + " " + o.payload))
		if err != nil {
			o.ioErr = err.Error()
			cl.Close()
			cl = nil
		} else {
			o.answered, o.reply = time.Now(), string(r)
		}
		ps.h.add(o)
		if o.outcome() == acked {
			msg, attempt = msg+1, 0
			continue
		}
		attempt++
		if !ps.sleep(20 * time.Millisecond) {
			return
		}
	}
}

// stop asks every producer to stop after the request it has in flight and
// waits for them. Requests stuck at a node (up to the node's 10 s request
// deadline) delay it; past producerReplyTimeout plus a margin the test
// fails.
func (ps *producers) stop() {
	ps.c.t.Helper()
	close(ps.stopc)
	done := make(chan struct{})
	go func() {
		ps.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(producerReplyTimeout + 10*time.Second):
		ps.c.t.Fatalf("producers %v did not stop within %v", ps.names, producerReplyTimeout+10*time.Second)
	}
}

// waitAcks waits until every producer of ps has had n writes sent at or
// after since acknowledged.
func (ps *producers) waitAcks(n int, since time.Time, d time.Duration) {
	ps.c.t.Helper()
	what := fmt.Sprintf("producers %v to have %d writes each acknowledged, sent since %s", ps.names, n, since.Format("15:04:05.000"))
	ps.c.waitFor(what, d, func() error {
		got := ps.h.ackedAfter(since)
		for _, p := range ps.names {
			if got[p] < n {
				return fmt.Errorf("acknowledged per producer: %v", got)
			}
		}
		return nil
	})
}

// waitAnyAck waits until some producer of the history has a write sent at
// or after since acknowledged, and returns when that answer came.
func (c *cluster) waitAnyAck(h *history, since time.Time, d time.Duration) time.Time {
	c.t.Helper()
	var at time.Time
	c.waitFor(fmt.Sprintf("a write sent after %s to be acknowledged", since.Format("15:04:05.000")), d, func() error {
		if at = h.firstAckAfter(since); at.IsZero() {
			return errors.New("none yet")
		}
		return nil
	})
	return at
}

// probe writes through node id until a PUT is acknowledged, one request
// at a time, recording each attempt in h as producer name; it returns how
// many attempts it took.
func (c *cluster) probe(h *history, topic, name string, id int, d time.Duration) int {
	c.t.Helper()
	deadline := time.Now().Add(d)
	var last op
	for attempt := 0; time.Now().Before(deadline); attempt++ {
		last = op{producer: name, attempt: attempt, node: id, payload: fmt.Sprintf("%s-0-%d", name, attempt), sent: time.Now()}
		cl, err := dialClient(c.node(id).clientAddr())
		if err != nil {
			last.ioErr = err.Error()
		} else {
			cl.timeout = producerReplyTimeout
			if r, err := cl.roundTrip([]byte("PUT " + topic + " " + last.payload)); err != nil {
				last.ioErr = err.Error()
			} else {
				last.answered, last.reply = time.Now(), string(r)
			}
			cl.Close()
		}
		h.add(last)
		if last.outcome() == acked {
			return attempt + 1
		}
		time.Sleep(20 * time.Millisecond)
	}
	c.t.Fatalf("no write through node %d was acknowledged within %v; the last: %s\n%s", id, d, last, c.describe())
	return 0
}

// ---- cluster views the failover tests wait on ----

// topicState is the part of STATE the failover tests compare.
type topicState struct {
	current       int64
	leader        int
	segmentState  string
	epoch         int64
	sealed        map[string]int64
	leaders       map[string]int64
	replicas      map[string][]int64
	lastSealedOff int64
}

func (c *cluster) topicState(id int, topic string) (topicState, error) {
	m, err := c.rawJSON(id, "STATE "+topic)
	if err != nil {
		return topicState{}, err
	}
	var s topicState
	var ok bool
	l, ok1 := asInt(m.get("leader_node"))
	s.current, ok = asInt(m.get("current_segment"))
	s.epoch, _ = asInt(m.get("epoch"))
	s.lastSealedOff, _ = asInt(m.get("last_sealed_entry_offset"))
	if !ok || !ok1 {
		return topicState{}, fmt.Errorf("node %d: STATE %s: %v", id, topic, m)
	}
	s.leader = int(l)
	s.segmentState, _ = m.get("segment_state").(string)
	s.sealed = intMap(m.get("sealed_segments"))
	s.leaders = intMap(m.get("segment_leaders"))
	s.replicas = map[string][]int64{}
	if reps, ok := m.get("replicas").(map[string]any); ok {
		for seg, v := range reps {
			list, _ := v.([]any)
			for _, x := range list {
				n, _ := asInt(x)
				s.replicas[seg] = append(s.replicas[seg], n)
			}
		}
	}
	return s, nil
}

// sameMetadata compares what every node must agree on once it has caught
// up: the segments, their leaders, replicas and sealed counts.
func (a topicState) sameMetadata(b topicState) bool {
	return a.current == b.current && a.leader == b.leader && a.segmentState == b.segmentState &&
		a.epoch == b.epoch && maps.Equal(a.sealed, b.sealed) && maps.Equal(a.leaders, b.leaders) &&
		maps.EqualFunc(a.replicas, b.replicas, slices.Equal)
}

func (a topicState) String() string {
	return fmt.Sprintf("current %d (leader %d, %s, epoch %d), sealed %v, leaders %v, replicas %v",
		a.current, a.leader, a.segmentState, a.epoch, a.sealed, a.leaders, a.replicas)
}

// openLeader waits until node via's STATE shows topic's active segment
// open, and returns it and its leader.
func (c *cluster) openLeader(topic string, via int) (seg int64, leader int) {
	c.t.Helper()
	c.waitFor(fmt.Sprintf("node %d's STATE %s to show an open active segment", via, topic), readyTimeout, func() error {
		s, err := c.topicState(via, topic)
		if err != nil {
			return err
		}
		if s.segmentState != "open" {
			return fmt.Errorf("active segment %d is %s", s.current, s.segmentState)
		}
		seg, leader = s.current, s.leader
		return nil
	})
	return seg, leader
}

// waitSealed polls node via's STATE until segment seg of topic is sealed,
// and returns the sealed count and the time it was first seen sealed (at
// most 20 ms after via applied the seal; raft applies only committed
// entries, so the seal was committed before that time).
func (c *cluster) waitSealed(topic string, seg int64, via int, d time.Duration) (count int64, seen time.Time) {
	c.t.Helper()
	c.waitFor(fmt.Sprintf("node %d's STATE %s to show segment %d sealed", via, topic, seg), d, func() error {
		s, err := c.topicState(via, topic)
		if err != nil {
			return err
		}
		n, ok := s.sealed[fmt.Sprint(seg)]
		if !ok {
			return fmt.Errorf("not sealed: %s", s)
		}
		count, seen = n, time.Now()
		return nil
	})
	return count, seen
}

// waitAgree waits until the STATE of every node in ids shows the same
// metadata for topic, and returns it.
func (c *cluster) waitAgree(topic string, d time.Duration, ids ...int) topicState {
	c.t.Helper()
	var first topicState
	c.waitFor(fmt.Sprintf("nodes %v to agree on STATE %s", ids, topic), d, func() error {
		for i, id := range ids {
			s, err := c.topicState(id, topic)
			if err != nil {
				return err
			}
			if i == 0 {
				first = s
			} else if !s.sameMetadata(first) {
				return fmt.Errorf("node %d: %s\nnode %d: %s", ids[0], first, id, s)
			}
		}
		return nil
	})
	return first
}

// waitAllLive waits until node via's NODES lists every member as live (the
// raft leader has recorded their pings), so new segments get full replica
// sets.
func (c *cluster) waitAllLive(via int) {
	c.t.Helper()
	c.waitFor(fmt.Sprintf("node %d's NODES to show all %d members live", via, len(c.nodes)), readyTimeout, func() error {
		cl, err := dialClient(c.node(via).clientAddr())
		if err != nil {
			return err
		}
		defer cl.Close()
		cl.timeout = 3 * time.Second
		r, err := cl.roundTrip([]byte("NODES"))
		if err != nil {
			return err
		}
		var ns []struct {
			ID   int  `json:"id"`
			Live bool `json:"live"`
		}
		if err := json.Unmarshal(r, &ns); err != nil {
			return fmt.Errorf("NODES: %v: %s", err, quote(r))
		}
		var dead []int
		for _, n := range ns {
			if !n.Live {
				dead = append(dead, n.ID)
			}
		}
		if len(ns) != len(c.nodes) || len(dead) > 0 {
			return fmt.Errorf("NODES %s (not live: %v)", r, dead)
		}
		return nil
	})
}

// waitReadAll reads the whole topic through node id with READ, waiting out
// segments under recovery.
func (c *cluster) waitReadAll(id int, topic string) []string {
	c.t.Helper()
	var got []string
	c.waitFor(fmt.Sprintf("node %d to serve READ %s from offset 0 to the end", id, topic), readyTimeout, func() (err error) {
		got, err = c.tryReadAll(id, topic)
		return err
	})
	return got
}

// others lists the members except the given ones.
func (c *cluster) others(not ...int) []int {
	var ids []int
	for _, id := range c.ids() {
		if !slices.Contains(not, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// raftLeader is the raft leader according to node via's METRICS, or 0.
func (c *cluster) raftLeader(via int) int {
	m, err := c.metrics(via)
	if err != nil {
		return 0
	}
	l, _ := asInt(m.get("current_leader"))
	return int(l)
}

// sameLog fails the test unless every node in ids serves the same log.
func (c *cluster) sameLog(topic string, want []string, ids ...int) {
	c.t.Helper()
	for _, id := range ids {
		got := c.waitReadAll(id, topic)
		if !slices.Equal(got, want) {
			c.t.Errorf("READ %s through node %d differs from the log checked:\n%s", topic, id, diffLogs(want, got))
		}
	}
}

// diffLogs describes where two logs first differ.
func diffLogs(want, got []string) string {
	n := min(len(want), len(got))
	i := 0
	for i < n && want[i] == got[i] {
		i++
	}
	show := func(l []string) string {
		return strings.Join(l[i:min(len(l), i+5)], " ")
	}
	return fmt.Sprintf("%d entries vs %d, first difference at offset %d: [%s] vs [%s]", len(want), len(got), i, show(want), show(got))
}

// checkLog runs checkHistory and fails the test on any problem.
func checkLog(t *testing.T, h *history, log []string) {
	t.Helper()
	r := checkHistory(h.snapshot(), log)
	if err := r.err(); err != nil {
		t.Fatal(err)
	}
	t.Logf("history checked: %s", r)
}
