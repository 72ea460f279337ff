package raftfsm

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
)

// harness drives one FSM through encoded commands at increasing indexes,
// the way raft would.
type harness struct {
	t   testing.TB
	f   *FSM
	idx uint64
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	return &harness{t: t, f: New()}
}

// cluster returns a harness whose cluster has the given nodes, all live.
func cluster(t testing.TB, ids ...NodeID) *harness {
	t.Helper()
	h := newHarness(t)
	for _, id := range ids {
		h.ok(UpsertNode{Node: node(id, true)})
	}
	return h
}

func node(id NodeID, live bool) NodeInfo {
	return NodeInfo{
		ID:         id,
		RaftAddr:   fmt.Sprintf("10.0.0.%d:6001", id),
		ClientAddr: fmt.Sprintf("10.0.0.%d:9091", id),
		HTTPAddr:   fmt.Sprintf("10.0.0.%d:8080", id),
		Live:       live,
	}
}

func mustEncode(t testing.TB, c Command) []byte {
	t.Helper()
	b, err := Encode(c)
	if err != nil {
		t.Fatalf("encode %#v: %v", c, err)
	}
	return b
}

func (h *harness) raw(data []byte) Result {
	h.idx++
	return h.f.Apply(h.idx, data)
}

func (h *harness) apply(c Command) Result {
	h.t.Helper()
	return h.raw(mustEncode(h.t, c))
}

// ok applies c, fails the test if it errs, and returns its Value.
func (h *harness) ok(c Command) any {
	h.t.Helper()
	r := h.apply(c)
	if r.Err != nil {
		h.t.Fatalf("apply %T%+v: %v", c, c, r.Err)
	}
	if err := h.f.State().CheckInvariants(); err != nil {
		h.t.Fatalf("after %T%+v: %v", c, c, err)
	}
	return r.Value
}

// fails applies c and checks that it fails with want and changes nothing but
// LastApplied.
func (h *harness) fails(c Command, want error) {
	h.t.Helper()
	before := h.f.State()
	r := h.apply(c)
	if !errors.Is(r.Err, want) {
		h.t.Fatalf("apply %T%+v: err %v, want %v", c, c, r.Err, want)
	}
	if r.Value != nil {
		h.t.Fatalf("apply %T%+v: failed with value %v", c, c, r.Value)
	}
	assertOnlyLastApplied(h.t, before, h.f.State(), h.idx)
}

func assertOnlyLastApplied(t testing.TB, before, after *State, idx uint64) {
	t.Helper()
	if after.LastApplied != idx {
		t.Fatalf("LastApplied %d, want %d", after.LastApplied, idx)
	}
	want := *before
	want.LastApplied = idx
	if !reflect.DeepEqual(&want, after) {
		t.Fatalf("state changed:\nbefore %s\nafter  %s", dump(before), dump(after))
	}
}

func (h *harness) topic(name string) *Topic {
	h.t.Helper()
	tp := h.f.State().Topics[name]
	if tp == nil {
		h.t.Fatalf("no topic %q", name)
	}
	return tp
}

// seal seals the active segment of topic at its current epoch with count.
func (h *harness) seal(topic string, count uint64) *Segment {
	h.t.Helper()
	a := h.topic(topic).Active()
	return h.ok(SealSegment{Topic: topic, Segment: a.ID, Epoch: a.Epoch, Count: count, AtMs: 1000 + int64(a.ID)}).(*Segment)
}

func dump(s *State) string {
	out := fmt.Sprintf("nfl=%d la=%d nodes:", s.NextFirstLeader, s.LastApplied)
	for _, id := range s.NodeIDs() {
		out += fmt.Sprintf(" %+v", *s.Nodes[id])
	}
	for _, name := range s.TopicNames() {
		tp := s.Topics[name]
		out += fmt.Sprintf("\n  topic %q rf=%d cursor=%d groups=%v ret=%+v", name, tp.RF, tp.Cursor, tp.Groups, tp.Retention)
		for _, g := range tp.Segments {
			out += fmt.Sprintf("\n    %+v", *g)
		}
	}
	return out
}

func leaders(tp *Topic) []NodeID {
	var out []NodeID
	for _, g := range tp.Segments {
		out = append(out, g.Leader)
	}
	return out
}
