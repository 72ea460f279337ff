package e2e

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walrus-go/walrus/wire"
)

// Scenario 5 (COMPAT "STATE JSON", "METRICS JSON"): the keys clients and
// tooling read are there, with the documented types, on every node.
func TestStateAndMetricsShapes(t *testing.T) {
	c := startCluster(t, 3, clusterOpts{})
	c.dial(2).mustDo("REGISTER shapes", "OK")
	for _, id := range c.ids() {
		c.dial(id).mustDo("STATE nope", "ERR unknown topic nope")
	}

	// STATE: a fresh topic has segment 1 open, led by one of the nodes.
	c.waitFor("every node to know topic shapes", 10*time.Second, func() error {
		for _, id := range c.ids() {
			if _, err := c.rawJSON(id, "STATE shapes"); err != nil {
				return err
			}
		}
		return nil
	})
	for _, id := range c.ids() {
		st, err := c.rawJSON(id, "STATE shapes")
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"current_segment", "leader_node", "last_sealed_entry_offset"} {
			if _, ok := asInt(st.get(k)); !ok {
				t.Errorf("node %d: STATE %s = %#v, want an integer", id, k, st.get(k))
			}
		}
		for _, k := range []string{"sealed_segments", "segment_leaders"} {
			if _, ok := st.get(k).(map[string]any); !ok {
				t.Errorf("node %d: STATE %s = %#v, want an object", id, k, st.get(k))
			}
		}
		expectInt(t, st, "current_segment", 1)
		expectInt(t, st, "last_sealed_entry_offset", 0)
		if n := len(st.get("sealed_segments").(map[string]any)); n != 0 {
			t.Errorf("node %d: sealed_segments %v, want {}", id, st.get("sealed_segments"))
		}
		leader, _ := asInt(st.get("leader_node"))
		if leader < 1 || leader > 3 {
			t.Errorf("node %d: leader_node %d, want a node id 1..3", id, leader)
		}
		if got, want := intMap(st.get("segment_leaders")), map[string]int64{"1": leader}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("node %d: segment_leaders %v, want %v", id, st.get("segment_leaders"), want)
		}
	}

	// METRICS: every node, and replication filled in on the raft leader.
	states := []string{"Leader", "Follower", "Candidate", "Learner", "Shutdown"}
	leaders := map[int]int{} // node -> current_leader it reports
	c.waitFor("the raft leader's METRICS replication to list every node", 10*time.Second, func() error {
		for _, id := range c.ids() {
			m, err := c.metrics(id)
			if err != nil {
				return err
			}
			if m.get("state") == "Leader" {
				rep, ok := m.get("replication").(map[string]any)
				if !ok || len(rep) != 3 {
					return fmt.Errorf("leader %d: replication %v", id, m.get("replication"))
				}
			}
		}
		return nil
	})
	for _, id := range c.ids() {
		m, err := c.metrics(id)
		if err != nil {
			t.Fatal(err)
		}
		expectInt(t, m, "id", int64(id))
		state, _ := m.get("state").(string)
		if !slices.Contains(states, state) {
			t.Errorf("node %d: state %#v, want one of %v", id, m.get("state"), states)
		}
		for _, k := range []string{"current_term", "last_log_index", "last_applied"} {
			if _, ok := asInt(m.get(k)); !ok {
				t.Errorf("node %d: %s = %#v, want an integer", id, k, m.get(k))
			}
		}
		if !m.has("current_leader") {
			t.Errorf("node %d: no current_leader key", id)
		} else if l, ok := asInt(m.get("current_leader")); ok {
			leaders[id] = int(l)
		} else if m.get("current_leader") != nil {
			t.Errorf("node %d: current_leader %#v, want an integer or null", id, m.get("current_leader"))
		}
		if got := voterSets(m); fmt.Sprint(got) != "[[1 2 3]]" {
			t.Errorf("node %d: membership_config.membership.configs %#v, want [[1,2,3]] (any order)", id,
				m.get("membership_config", "membership", "configs"))
		}
		nodes, ok := m.get("membership_config", "membership", "nodes").(map[string]any)
		if !ok || len(nodes) != 3 {
			t.Errorf("node %d: membership_config.membership.nodes %#v, want an object with 3 nodes", id,
				m.get("membership_config", "membership", "nodes"))
		}
		for _, n := range c.nodes {
			if addr := nodes[strconv.Itoa(n.id)]; addr != n.raftAddr() {
				t.Errorf("node %d: membership nodes[%q] = %#v, want %q", id, strconv.Itoa(n.id), addr, n.raftAddr())
			}
		}
		if !m.has("replication") {
			t.Errorf("node %d: no replication key", id)
			continue
		}
		rep := m.get("replication")
		if state != "Leader" {
			if rep != nil {
				t.Errorf("node %d (%s): replication %#v, want null", id, state, rep)
			}
			continue
		}
		obj, ok := rep.(map[string]any)
		if !ok {
			t.Errorf("leader %d: replication %#v, want an object", id, rep)
			continue
		}
		for _, n := range c.nodes {
			r, ok := obj[strconv.Itoa(n.id)].(map[string]any)
			if _, isInt := asInt(r["index"]); !ok || !isInt {
				t.Errorf("leader %d: replication[%q] = %#v, want {\"index\": <int>}", id, strconv.Itoa(n.id), obj[strconv.Itoa(n.id)])
			}
		}
	}
	if len(leaders) != 3 || leaders[1] != leaders[2] || leaders[2] != leaders[3] {
		t.Errorf("nodes disagree on current_leader: %v", leaders)
	}
}

// Scenario 6 (COMPAT "Client protocol", docs/protocol.md "Framing"): bad
// input gets the documented reply on its own connection and nothing else
// notices: after each case another connection still PUTs and GETs.
func TestBadInput(t *testing.T) {
	c := startCluster(t, 3, clusterOpts{})
	c.dial(1).mustDo("REGISTER t", "OK")
	c.dial(1).mustDo("REGISTER health", "OK")
	var nonce atomic.Int64
	// stillServing proves the node serves other clients, and that nothing a
	// bad connection sent was executed: the topics hold only what the checks
	// put there.
	stillServing := func(t *testing.T) {
		t.Helper()
		p := fmt.Sprintf("alive-%d", nonce.Add(1))
		other := c.dialIn(t, 1)
		other.mustDo("PUT health "+p, "OK")
		other.mustDo("GET health", "OK "+p)
		other.mustDo("GET t", "EMPTY")
	}
	frame := func(body string) []byte { return wire.AppendFrame(nil, []byte(body)) }
	header := func(n uint32) []byte { return binary.LittleEndian.AppendUint32(nil, n) }

	t.Run("zero length", func(t *testing.T) {
		cn := c.dialIn(t, 1)
		// a valid frame right behind the bad header must not be executed
		cn.mustWriteRaw(append(header(0), frame("PUT t smuggled")...))
		if got := cn.mustRecv(); got != "ERR invalid frame length" {
			t.Fatalf("length 0: got %q, want %q", got, "ERR invalid frame length")
		}
		cn.expectClosed()
		stillServing(t)
	})
	t.Run("over the limit", func(t *testing.T) {
		cn := c.dialIn(t, 1)
		// only the header: the reply must not wait for a body
		cn.mustWriteRaw(header(wire.DefaultMaxFrame + 1))
		if got := cn.mustRecv(); got != "ERR invalid frame length" {
			t.Fatalf("length 1 MiB + 1: got %q, want %q", got, "ERR invalid frame length")
		}
		cn.expectClosed()
		stillServing(t)
	})
	t.Run("huge length", func(t *testing.T) {
		cn := c.dialIn(t, 1)
		cn.mustWriteRaw(header(0xffffffff))
		if got := cn.mustRecv(); got != "ERR invalid frame length" {
			t.Fatalf("length 4 GiB - 1: got %q, want %q", got, "ERR invalid frame length")
		}
		cn.expectClosed()
		stillServing(t)
	})
	t.Run("exactly the limit", func(t *testing.T) {
		// a 1 MiB PUT fits the frame, but its entry would not fit a READ
		// reply: refused, nothing written, the connection in step
		cn := c.dialIn(t, 1)
		max := wire.MaxEntrySize(wire.DefaultMaxFrame)
		payload := bytes.Repeat([]byte("L"), wire.DefaultMaxFrame-len("PUT t "))
		want := fmt.Sprintf("ERR entry too large: %d bytes (at most %d)", len(payload), max)
		if got := cn.doBytes(append([]byte("PUT t "), payload...)); string(got) != want {
			t.Fatalf("1 MiB request: got %s, want %q", quote(got), want)
		}
		cn.mustDo("GET t", "EMPTY")
		stillServing(t)
	})
	t.Run("the largest entry", func(t *testing.T) {
		// what a PUT may carry, a reader with the node's frame limit
		// reads back, by READ, GROUPREAD and GET
		cn := c.dialIn(t, 1)
		cn.mustDo("REGISTER big", "OK")
		entry := bytes.Repeat([]byte("B"), wire.MaxEntrySize(wire.DefaultMaxFrame))
		if got := cn.doBytes(append([]byte("PUT big "), entry...)); string(got) != "OK" {
			t.Fatalf("PUT of the largest entry: got %s", quote(got))
		}
		reader := c.dialIn(t, 2)
		reader.fr = wire.NewFrameReader(reader.nc, wire.DefaultMaxFrame)
		want := append([]byte("OK 0 1\n"), binary.LittleEndian.AppendUint32(nil, uint32(len(entry)))...)
		want = append(want, entry...)
		for _, req := range []string{"READ big 0 10", "GROUPREAD big g 10"} {
			if got := reader.doBytes([]byte(req)); !bytes.Equal(got, want) {
				t.Fatalf("%s: got %s", req, quote(got))
			}
		}
		if got := reader.doBytes([]byte("GET big")); !bytes.Equal(got, append([]byte("OK "), entry...)) {
			t.Fatalf("GET of the largest entry: got %s", quote(got))
		}
		stillServing(t)
	})
	t.Run("random bytes", func(t *testing.T) {
		cn := c.dialIn(t, 1)
		body := make([]byte, 200)
		rand.New(rand.NewSource(4)).Read(body)
		body[0] = 0xff // no command word starts so
		if got := cn.doBytes(body); string(got) != "ERR unknown command" {
			t.Fatalf("random body: got %s, want \"ERR unknown command\"", quote(got))
		}
		cn.mustDo("GET t", "EMPTY") // the connection is still in step
		stillServing(t)
	})
	for _, tc := range []struct{ name, req, want string }{
		{"empty after trim", " \t\r\n ", "ERR unknown command"},
		{"lower case", "put t x", "ERR unknown command"},
		{"unknown word", "DELETE t", "ERR unknown command"},
		{"PUT alone", "PUT", "ERR PUT requires a topic"},
		{"PUT topic", "PUT t", "ERR PUT requires a payload"},
		{"PUT topic space", "PUT t   ", "ERR PUT requires a payload"},
		{"GET alone", "GET", "ERR GET requires a topic"},
		{"REGISTER alone", "REGISTER", "ERR REGISTER requires a topic"},
		{"STATE alone", "STATE", "ERR STATE requires a topic"},
		{"GET unknown topic", "GET nope", "ERR unknown topic nope"},
		{"PUT unknown topic", "PUT nope x", "ERR unknown topic nope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cn := c.dialIn(t, 1)
			cn.mustDo(tc.req, tc.want)
			cn.mustDo(tc.req, tc.want) // same connection, same answer: still in step
			stillServing(t)
		})
	}
	t.Run("truncated frame", func(t *testing.T) {
		cn := c.dialIn(t, 1)
		cn.mustWriteRaw(append(header(100), "PUT t 1234"...)) // 10 of the 100 bytes
		cn.Close()
		stillServing(t)
	})
	t.Run("truncated header", func(t *testing.T) {
		cn := c.dialIn(t, 1)
		cn.mustWriteRaw([]byte{5, 0})
		cn.Close()
		stillServing(t)
	})
	t.Run("binary payload", func(t *testing.T) {
		cn := c.dialIn(t, 1)
		cn.mustDo("REGISTER bin", "OK")
		payloads := [][]byte{
			{0x00, 0xff, 0x01, 0x00, 0xfe},
			[]byte("\xff\xfe not utf-8 \x00 with spaces \x80"),
			[]byte("  leading and  inner  spaces"),
			{0x00},
			{0xff},
		}
		for _, p := range payloads {
			if got := cn.doBytes(append([]byte("PUT bin "), p...)); string(got) != "OK" {
				t.Fatalf("PUT bin %s: got %s", quote(p), quote(got))
			}
		}
		other := c.dialIn(t, 1)
		for _, p := range payloads {
			if got, want := other.doBytes([]byte("GET bin")), append([]byte("OK "), p...); !bytes.Equal(got, want) {
				t.Fatalf("GET bin: got %s, want %s", quote(got), quote(want))
			}
		}
		other.mustDo("GET bin", "EMPTY")
		stillServing(t)
	})
}

// A one-node cluster (walrus dev --nodes 1, or a first node before others
// join) takes REGISTER as soon as METRICS shows it leads. Regression test:
// before 25c61ee it answered "ERR raftfsm: no nodes to place a segment on"
// for ~200ms.
func TestSingleNodeRegistersRightAway(t *testing.T) {
	c := startCluster(t, 1, clusterOpts{})
	a := c.dial(1)
	a.mustDo("REGISTER first", "OK")
	a.mustDo("PUT first x", "OK")
	a.mustDo("GET first", "OK x")

	// a cluster of one has no one to hand raft leadership to: its stop
	// does not try (and warn that no follower took it)
	c.stop(1)
	if log := c.nodeLog(1); strings.Contains(log, "not handed over") || !strings.Contains(log, `msg="node stopped"`) {
		t.Fatalf("single node's stop:\n%s", lastLines(log, 10))
	}
}
