package raftfsm

import (
	"math"
	"reflect"
	"slices"
	"testing"
)

// tc is one table case: build a state, apply one command, then either expect
// err (and no change but LastApplied) or run check on the result.
type tc struct {
	name  string
	setup func(h *harness) // nil: nodes 1,2,3 live and topic "t" with RF 3
	cmd   Command
	err   error
	check func(t *testing.T, h *harness, v any)
}

func defaultSetup(h *harness) {
	for _, id := range []NodeID{1, 2, 3} {
		h.ok(UpsertNode{Node: node(id, true)})
	}
	h.ok(CreateTopic{Name: "t", RF: 3})
}

func run(t *testing.T, cases []tc) {
	t.Helper()
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t)
			if c.setup != nil {
				c.setup(h)
			} else {
				defaultSetup(h)
			}
			if c.err != nil {
				h.fails(c.cmd, c.err)
				return
			}
			v := h.ok(c.cmd)
			if h.f.State().LastApplied != h.idx {
				t.Fatalf("LastApplied %d, want %d", h.f.State().LastApplied, h.idx)
			}
			if c.check != nil {
				c.check(t, h, v)
			}
		})
	}
}

func eq[T any](t *testing.T, what string, got, want T) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func ids(v ...NodeID) []NodeID { return v }

func TestUpsertNode(t *testing.T) {
	run(t, []tc{
		{name: "id 0", cmd: UpsertNode{Node: node(0, true)}, err: ErrInvalid},
		{name: "no raft addr", cmd: UpsertNode{Node: NodeInfo{ID: 4}}, err: ErrInvalid},
		{name: "add", cmd: UpsertNode{Node: node(4, false)}, check: func(t *testing.T, h *harness, v any) {
			eq(t, "node", *h.f.State().Nodes[4], node(4, false))
			eq(t, "value", v.(*NodeInfo), h.f.State().Nodes[4])
			eq(t, "ids", h.f.State().NodeIDs(), ids(1, 2, 3, 4))
		}},
		{name: "replace", cmd: UpsertNode{Node: NodeInfo{ID: 2, RaftAddr: "new:1", Live: false}}, check: func(t *testing.T, h *harness, v any) {
			eq(t, "node", *h.f.State().Nodes[2], NodeInfo{ID: 2, RaftAddr: "new:1"})
		}},
	})
}

func TestRemoveNode(t *testing.T) {
	run(t, []tc{
		{name: "id 0", cmd: RemoveNode{ID: 0}, err: ErrInvalid},
		{name: "unknown", cmd: RemoveNode{ID: 9}, err: ErrUnknownNode},
		{name: "segments keep history", cmd: RemoveNode{ID: 1}, check: func(t *testing.T, h *harness, v any) {
			eq(t, "ids", h.f.State().NodeIDs(), ids(2, 3))
			a := h.topic("t").Active()
			eq(t, "leader", a.Leader, NodeID(1))
			eq(t, "replicas", a.Replicas, ids(1, 2, 3))
			// The next segment is placed on the remaining nodes only.
			eq(t, "next leader", h.seal("t", 5).Leader, NodeID(2))
			eq(t, "next replicas", h.topic("t").Active().Replicas, ids(2, 3))
		}},
	})
}

func TestSetLiveness(t *testing.T) {
	run(t, []tc{
		{name: "id 0", cmd: SetLiveness{ID: 0}, err: ErrInvalid},
		{name: "unknown", cmd: SetLiveness{ID: 7, Live: true}, err: ErrUnknownNode},
		{name: "down", cmd: SetLiveness{ID: 2, Live: false}, check: func(t *testing.T, h *harness, v any) {
			want := node(2, false)
			eq(t, "node", *h.f.State().Nodes[2], want)
			eq(t, "value", *v.(*NodeInfo), want)
			eq(t, "candidates", h.f.State().Candidates(), ids(1, 3))
		}},
	})
}

func TestCreateTopic(t *testing.T) {
	three := func(h *harness) {
		for _, id := range []NodeID{1, 2, 3} {
			h.ok(UpsertNode{Node: node(id, true)})
		}
	}
	run(t, []tc{
		{name: "empty name", setup: three, cmd: CreateTopic{Name: "", RF: 1}, err: ErrInvalid},
		{name: "name with space", setup: three, cmd: CreateTopic{Name: "a b", RF: 1}, err: ErrInvalid},
		{name: "name not utf-8", setup: three, cmd: CreateTopic{Name: "a\xff", RF: 1}, err: ErrInvalid},
		{name: "rf 0", setup: three, cmd: CreateTopic{Name: "a", RF: 0}, err: ErrInvalid},
		{name: "rf negative", setup: three, cmd: CreateTopic{Name: "a", RF: -3}, err: ErrInvalid},
		{name: "negative retention", setup: three, cmd: CreateTopic{Name: "a", RF: 1, Retention: Retention{MaxBytes: -1}}, err: ErrInvalid},
		{name: "no nodes", setup: func(*harness) {}, cmd: CreateTopic{Name: "a", RF: 1}, err: ErrNoNodes},
		{name: "invalid even if it exists", cmd: CreateTopic{Name: "t", RF: 0}, err: ErrInvalid},
		{name: "segment 1", setup: three, cmd: CreateTopic{Name: "logs", RF: 2, Retention: Retention{MaxAgeMs: 60000}}, check: func(t *testing.T, h *harness, v any) {
			tp := h.topic("logs")
			eq(t, "value", v.(*Topic), tp)
			eq(t, "rf", tp.RF, 2)
			eq(t, "retention", tp.Retention, Retention{MaxAgeMs: 60000})
			eq(t, "segments", len(tp.Segments), 1)
			eq(t, "segment", *tp.Segments[0], Segment{ID: 1, Leader: 1, Replicas: ids(1, 2), Epoch: 1, State: SegOpen})
			eq(t, "groups", tp.Groups, map[string]uint64{})
			eq(t, "next first leader", h.f.State().NextFirstLeader, uint64(1))
		}},
		{name: "existing is a no-op", cmd: CreateTopic{Name: "t", RF: 1, Retention: Retention{MaxSegments: 3}}, check: func(t *testing.T, h *harness, v any) {
			tp := h.topic("t")
			eq(t, "value", v.(*Topic), tp)
			eq(t, "rf", tp.RF, 3)
			eq(t, "retention", tp.Retention, Retention{})
			eq(t, "next first leader", h.f.State().NextFirstLeader, uint64(1))
		}},
		{name: "rf capped by live nodes", setup: func(h *harness) {
			three(h)
			h.ok(SetLiveness{ID: 2})
		}, cmd: CreateTopic{Name: "a", RF: 5}, check: func(t *testing.T, h *harness, v any) {
			tp := h.topic("a")
			eq(t, "rf kept as asked", tp.RF, 5)
			eq(t, "replicas", tp.Active().Replicas, ids(1, 3))
		}},
		{name: "no live node: all nodes", setup: func(h *harness) {
			h.ok(UpsertNode{Node: node(5, false)})
			h.ok(UpsertNode{Node: node(4, false)})
		}, cmd: CreateTopic{Name: "a", RF: 3}, check: func(t *testing.T, h *harness, v any) {
			eq(t, "replicas", h.topic("a").Active().Replicas, ids(4, 5))
		}},
	})
}

// New topics' first leaders go round-robin over exactly the live nodes, and
// replicas follow the leader in ring order.
func TestCreateTopicRoundRobin(t *testing.T) {
	h := cluster(t, 1, 2, 3, 4)
	h.ok(SetLiveness{ID: 3})
	type want struct {
		leader NodeID
		reps   []NodeID
	}
	wants := []want{
		{1, ids(1, 2, 4)}, {2, ids(2, 4, 1)}, {4, ids(4, 1, 2)}, {1, ids(1, 2, 4)},
	}
	for i, w := range wants {
		name := string(rune('a' + i))
		h.ok(CreateTopic{Name: name, RF: 3})
		a := h.topic(name).Active()
		if a.Leader != w.leader || !reflect.DeepEqual(a.Replicas, w.reps) {
			t.Fatalf("topic %s: leader %d replicas %v, want %d %v", name, a.Leader, a.Replicas, w.leader, w.reps)
		}
	}
	// Node 3 comes back: the counter (now 4) continues over 4 candidates.
	h.ok(SetLiveness{ID: 3, Live: true})
	h.ok(CreateTopic{Name: "e", RF: 2})
	eq(t, "e", h.topic("e").Active().Replicas, ids(1, 2))
	h.ok(CreateTopic{Name: "f", RF: 2})
	eq(t, "f", h.topic("f").Active().Replicas, ids(2, 3))
	h.ok(CreateTopic{Name: "g", RF: 2})
	h.ok(CreateTopic{Name: "h", RF: 2})
	eq(t, "h", h.topic("h").Active().Replicas, ids(4, 1))
}

func TestSealSegment(t *testing.T) {
	fenced := func(h *harness) {
		defaultSetup(h)
		h.ok(FenceSegment{Topic: "t", Segment: 1, Epoch: 1})
	}
	sealedOnce := func(h *harness) {
		defaultSetup(h)
		h.seal("t", 10)
	}
	run(t, []tc{
		{name: "segment 0", cmd: SealSegment{Topic: "t", Segment: 0, Epoch: 1}, err: ErrInvalid},
		{name: "epoch 0", cmd: SealSegment{Topic: "t", Segment: 1, Epoch: 0}, err: ErrInvalid},
		{name: "negative time", cmd: SealSegment{Topic: "t", Segment: 1, Epoch: 1, AtMs: -1}, err: ErrInvalid},
		{name: "unknown topic", cmd: SealSegment{Topic: "u", Segment: 1, Epoch: 1}, err: ErrUnknownTopic},
		{name: "future segment", cmd: SealSegment{Topic: "t", Segment: 2, Epoch: 1}, err: ErrStale},
		{name: "wrong epoch", cmd: SealSegment{Topic: "t", Segment: 1, Epoch: 2}, err: ErrStale},
		{name: "duplicate rollover", setup: sealedOnce, cmd: SealSegment{Topic: "t", Segment: 1, Epoch: 1, Count: 10}, err: ErrStale},
		{name: "fenced leader's rollover", setup: fenced, cmd: SealSegment{Topic: "t", Segment: 1, Epoch: 1, Count: 7}, err: ErrStale},
		{name: "count overflows", setup: sealedOnce, cmd: SealSegment{Topic: "t", Segment: 2, Epoch: 1, Count: math.MaxUint64 - 5}, err: ErrInvalid},
		{name: "no nodes left", setup: func(h *harness) {
			defaultSetup(h)
			for _, id := range []NodeID{1, 2, 3} {
				h.ok(RemoveNode{ID: id})
			}
		}, cmd: SealSegment{Topic: "t", Segment: 1, Epoch: 1, Count: 3}, err: ErrNoNodes},
		{name: "rollover", cmd: SealSegment{Topic: "t", Segment: 1, Epoch: 1, Count: 10, AtMs: 1234}, check: func(t *testing.T, h *harness, v any) {
			tp := h.topic("t")
			eq(t, "sealed", *tp.Segments[0], Segment{ID: 1, Leader: 1, Replicas: ids(1, 2, 3), Epoch: 1, State: SegSealed, Count: 10, SealedAtMs: 1234})
			eq(t, "next", *tp.Segments[1], Segment{ID: 2, Leader: 2, Replicas: ids(2, 3, 1), Epoch: 1, State: SegOpen, Base: 10})
			eq(t, "value", v.(*Segment), tp.Segments[1])
		}},
		{name: "recovery seals at the new epoch", setup: fenced, cmd: SealSegment{Topic: "t", Segment: 1, Epoch: 2, Count: 7}, check: func(t *testing.T, h *harness, v any) {
			tp := h.topic("t")
			eq(t, "sealed", tp.Segments[0].State, SegSealed)
			eq(t, "epoch", tp.Segments[0].Epoch, uint64(2))
			eq(t, "count", tp.Segments[0].Count, uint64(7))
			eq(t, "next base", tp.Active().Base, uint64(7))
		}},
		{name: "dead leader skipped", setup: func(h *harness) {
			defaultSetup(h)
			h.ok(SetLiveness{ID: 2})
		}, cmd: SealSegment{Topic: "t", Segment: 1, Epoch: 1, Count: 1}, check: func(t *testing.T, h *harness, v any) {
			eq(t, "next", v.(*Segment).Replicas, ids(3, 1))
		}},
		{name: "only live node leads again", setup: func(h *harness) {
			defaultSetup(h)
			h.ok(SetLiveness{ID: 2})
			h.ok(SetLiveness{ID: 3})
		}, cmd: SealSegment{Topic: "t", Segment: 1, Epoch: 1, Count: 1}, check: func(t *testing.T, h *harness, v any) {
			eq(t, "next", v.(*Segment).Replicas, ids(1))
		}},
		{name: "no live node: all nodes", setup: func(h *harness) {
			defaultSetup(h)
			for _, id := range []NodeID{1, 2, 3} {
				h.ok(SetLiveness{ID: id})
			}
		}, cmd: SealSegment{Topic: "t", Segment: 1, Epoch: 1, Count: 1}, check: func(t *testing.T, h *harness, v any) {
			eq(t, "next", v.(*Segment).Replicas, ids(2, 3, 1))
		}},
		{name: "old leader removed", setup: func(h *harness) {
			defaultSetup(h)
			h.ok(UpsertNode{Node: node(5, true)})
			h.seal("t", 1) // segment 2 led by 2
			h.ok(RemoveNode{ID: 2})
		}, cmd: SealSegment{Topic: "t", Segment: 2, Epoch: 1, Count: 1}, check: func(t *testing.T, h *harness, v any) {
			eq(t, "next", v.(*Segment).Replicas, ids(3, 5, 1))
		}},
	})
}

// Bases add up across rollovers (empty segments included), Locate finds
// every offset, and the leaders go round the live nodes.
func TestRolloversBaseArithmetic(t *testing.T) {
	h := cluster(t, 1, 2, 3)
	h.ok(CreateTopic{Name: "t", RF: 1})
	counts := []uint64{10, 0, 5, 7, 0, 0, 3}
	for _, c := range counts {
		h.seal("t", c)
	}
	tp := h.topic("t")
	wantBases := []uint64{0, 10, 10, 15, 22, 22, 22, 25}
	for i, g := range tp.Segments {
		if g.ID != uint64(i+1) || g.Base != wantBases[i] {
			t.Fatalf("segment #%d: id %d base %d, want %d %d", i, g.ID, g.Base, i+1, wantBases[i])
		}
	}
	eq(t, "leaders", leaders(tp), ids(1, 2, 3, 1, 2, 3, 1, 2))
	eq(t, "sealed total", tp.SealedTotal(), uint64(25))
	eq(t, "first offset", tp.FirstOffset(), uint64(0))
	for off := range uint64(40) {
		seg, idx, ok := tp.Locate(off)
		if !ok {
			t.Fatalf("Locate(%d) not ok", off)
		}
		if seg.Count == 0 && seg != tp.Active() {
			t.Fatalf("Locate(%d) gave empty segment %d", off, seg.ID)
		}
		if seg.Base+idx != off || (seg != tp.Active() && idx >= seg.Count) {
			t.Fatalf("Locate(%d) = segment %d index %d", off, seg.ID, idx)
		}
	}
	for off, want := range map[uint64]uint64{0: 1, 9: 1, 10: 3, 14: 3, 15: 4, 21: 4, 22: 7, 24: 7, 25: 8, 1 << 40: 8} {
		if seg, _, _ := tp.Locate(off); seg.ID != want {
			t.Fatalf("Locate(%d) in segment %d, want %d", off, seg.ID, want)
		}
	}
	eq(t, "by id", tp.SegmentByID(4).Base, uint64(15))
	if tp.SegmentByID(0) != nil || tp.SegmentByID(9) != nil {
		t.Fatal("SegmentByID found a segment that does not exist")
	}
}

func TestFenceSegment(t *testing.T) {
	fenced := func(h *harness) {
		defaultSetup(h)
		h.ok(FenceSegment{Topic: "t", Segment: 1, Epoch: 1})
	}
	run(t, []tc{
		{name: "segment 0", cmd: FenceSegment{Topic: "t", Segment: 0, Epoch: 1}, err: ErrInvalid},
		{name: "epoch 0", cmd: FenceSegment{Topic: "t", Segment: 1, Epoch: 0}, err: ErrInvalid},
		{name: "unknown topic", cmd: FenceSegment{Topic: "u", Segment: 1, Epoch: 1}, err: ErrUnknownTopic},
		{name: "wrong epoch", cmd: FenceSegment{Topic: "t", Segment: 1, Epoch: 3}, err: ErrStale},
		{name: "not active", setup: func(h *harness) {
			defaultSetup(h)
			h.seal("t", 4)
		}, cmd: FenceSegment{Topic: "t", Segment: 1, Epoch: 1}, err: ErrStale},
		{name: "already fenced", setup: fenced, cmd: FenceSegment{Topic: "t", Segment: 1, Epoch: 2}, err: ErrStale},
		{name: "fence", cmd: FenceSegment{Topic: "t", Segment: 1, Epoch: 1}, check: func(t *testing.T, h *harness, v any) {
			a := h.topic("t").Active()
			eq(t, "segment", *a, Segment{ID: 1, Leader: 1, Replicas: ids(1, 2, 3), Epoch: 2, State: SegFenced})
			eq(t, "value", v.(*Segment), a)
		}},
	})
}

func TestCommitCursor(t *testing.T) {
	at := func(cursor uint64, groups map[string]uint64) func(*harness) {
		return func(h *harness) {
			defaultSetup(h)
			h.ok(CommitCursor{Topic: "t", Offset: cursor})
			for g, o := range groups {
				h.ok(CommitCursor{Topic: "t", Group: g, Offset: o})
			}
		}
	}
	run(t, []tc{
		{name: "unknown topic", cmd: CommitCursor{Topic: "u", Offset: 1}, err: ErrUnknownTopic},
		{name: "forward", setup: at(5, nil), cmd: CommitCursor{Topic: "t", Offset: 9}, check: func(t *testing.T, h *harness, v any) {
			eq(t, "cursor", h.topic("t").Cursor, uint64(9))
			eq(t, "value", v.(uint64), uint64(9))
		}},
		{name: "backward is a no-op", setup: at(5, nil), cmd: CommitCursor{Topic: "t", Offset: 3}, check: func(t *testing.T, h *harness, v any) {
			eq(t, "cursor", h.topic("t").Cursor, uint64(5))
			eq(t, "value", v.(uint64), uint64(5))
		}},
		{name: "new group", setup: at(5, nil), cmd: CommitCursor{Topic: "t", Group: "g", Offset: 2}, check: func(t *testing.T, h *harness, v any) {
			eq(t, "groups", h.topic("t").Groups, map[string]uint64{"g": 2})
			eq(t, "cursor", h.topic("t").Cursor, uint64(5))
		}},
		{name: "group seeks back", setup: at(0, map[string]uint64{"g": 20, "h": 1}), cmd: CommitCursor{Topic: "t", Group: "g", Offset: 4}, check: func(t *testing.T, h *harness, v any) {
			eq(t, "groups", h.topic("t").Groups, map[string]uint64{"g": 4, "h": 1})
		}},
	})
}

func TestDeleteGroup(t *testing.T) {
	withGroup := func(h *harness) {
		defaultSetup(h)
		h.ok(CommitCursor{Topic: "t", Group: "g", Offset: 3})
	}
	run(t, []tc{
		{name: "shared cursor", setup: withGroup, cmd: DeleteGroup{Topic: "t"}, err: ErrInvalid},
		{name: "unknown topic", cmd: DeleteGroup{Topic: "u", Group: "g"}, err: ErrUnknownTopic},
		{name: "absent", setup: withGroup, cmd: DeleteGroup{Topic: "t", Group: "x"}, check: func(t *testing.T, h *harness, v any) {
			eq(t, "value", v.(bool), false)
			eq(t, "groups", h.topic("t").Groups, map[string]uint64{"g": 3})
		}},
		{name: "delete", setup: withGroup, cmd: DeleteGroup{Topic: "t", Group: "g"}, check: func(t *testing.T, h *harness, v any) {
			eq(t, "value", v.(bool), true)
			eq(t, "groups", h.topic("t").Groups, map[string]uint64{})
		}},
	})
}

func TestSetReplicas(t *testing.T) {
	four := func(h *harness) {
		defaultSetup(h)
		h.ok(UpsertNode{Node: node(4, true)})
		h.seal("t", 3) // segment 1 sealed (leader 1), segment 2 active (leader 2)
	}
	run(t, []tc{
		{name: "segment 0", setup: four, cmd: SetReplicas{Topic: "t", Segment: 0, Replicas: ids(1)}, err: ErrInvalid},
		{name: "empty", setup: four, cmd: SetReplicas{Topic: "t", Segment: 1}, err: ErrInvalid},
		{name: "node 0", setup: four, cmd: SetReplicas{Topic: "t", Segment: 1, Replicas: ids(1, 0)}, err: ErrInvalid},
		{name: "repeated", setup: four, cmd: SetReplicas{Topic: "t", Segment: 1, Replicas: ids(1, 2, 1)}, err: ErrInvalid},
		{name: "unknown topic", setup: four, cmd: SetReplicas{Topic: "u", Segment: 1, Replicas: ids(1)}, err: ErrUnknownTopic},
		{name: "unknown segment", setup: four, cmd: SetReplicas{Topic: "t", Segment: 3, Replicas: ids(1)}, err: ErrUnknownSegment},
		{name: "unknown node", setup: four, cmd: SetReplicas{Topic: "t", Segment: 1, Replicas: ids(1, 9)}, err: ErrUnknownNode},
		{name: "active leader dropped", setup: four, cmd: SetReplicas{Topic: "t", Segment: 2, Replicas: ids(3, 4)}, err: ErrInvalid},
		{name: "sealed segment may drop its old leader", setup: four, cmd: SetReplicas{Topic: "t", Segment: 1, Replicas: ids(4, 2, 3)}, check: func(t *testing.T, h *harness, v any) {
			g := h.topic("t").Segments[0]
			eq(t, "replicas", g.Replicas, ids(4, 2, 3))
			eq(t, "leader kept as history", g.Leader, NodeID(1))
			eq(t, "value", v.(*Segment), g)
		}},
		{name: "active segment", setup: four, cmd: SetReplicas{Topic: "t", Segment: 2, Replicas: ids(4, 2)}, check: func(t *testing.T, h *harness, v any) {
			eq(t, "replicas", h.topic("t").Active().Replicas, ids(4, 2))
			eq(t, "epoch unchanged", h.topic("t").Active().Epoch, uint64(1))
		}},
	})
}

func TestDeleteSegments(t *testing.T) {
	five := func(h *harness) {
		defaultSetup(h)
		for _, c := range []uint64{10, 20, 30, 40} {
			h.seal("t", c) // bases 0 10 30 60 100
		}
		h.ok(CommitCursor{Topic: "t", Offset: 12})
		h.ok(CommitCursor{Topic: "t", Group: "g", Offset: 1})
	}
	run(t, []tc{
		{name: "unknown topic", setup: five, cmd: DeleteSegments{Topic: "u", Below: 3}, err: ErrUnknownTopic},
		{name: "nothing below first", setup: five, cmd: DeleteSegments{Topic: "t", Below: 1}, check: func(t *testing.T, h *harness, v any) {
			eq(t, "value", v.(int), 0)
			eq(t, "segments", len(h.topic("t").Segments), 5)
		}},
		{name: "drop two", setup: five, cmd: DeleteSegments{Topic: "t", Below: 3}, check: func(t *testing.T, h *harness, v any) {
			tp := h.topic("t")
			eq(t, "value", v.(int), 2)
			eq(t, "first id", tp.Segments[0].ID, uint64(3))
			eq(t, "first offset", tp.FirstOffset(), uint64(30))
			eq(t, "sealed total", tp.SealedTotal(), uint64(100))
			eq(t, "cursor untouched", tp.Cursor, uint64(12))
			eq(t, "groups untouched", tp.Groups, map[string]uint64{"g": 1})
			if _, _, ok := tp.Locate(29); ok {
				t.Fatal("Locate found a deleted offset")
			}
			if g, i, ok := tp.Locate(30); !ok || g.ID != 3 || i != 0 {
				t.Fatalf("Locate(30) = %v %d %v", g, i, ok)
			}
			eq(t, "by id", tp.SegmentByID(2) == nil, true)
			eq(t, "by id", tp.SegmentByID(5).Base, uint64(100))
			c := CompatState(tp)
			eq(t, "compat sealed", c.SealedSegments, map[string]uint64{"3": 30, "4": 40})
			eq(t, "compat last sealed", c.LastSealedEntryOffset, uint64(100))
		}},
		{name: "never the active one", setup: five, cmd: DeleteSegments{Topic: "t", Below: math.MaxUint64}, check: func(t *testing.T, h *harness, v any) {
			tp := h.topic("t")
			eq(t, "value", v.(int), 4)
			eq(t, "segments", len(tp.Segments), 1)
			eq(t, "active", tp.Active().ID, uint64(5))
			eq(t, "first offset", tp.FirstOffset(), uint64(100))
			// The chain continues after everything sealed was dropped.
			eq(t, "next", h.seal("t", 1).Base, uint64(101))
		}},
	})
}

func TestSetRetention(t *testing.T) {
	run(t, []tc{
		{name: "negative", cmd: SetRetention{Topic: "t", Retention: Retention{MaxSegments: -1}}, err: ErrInvalid},
		{name: "unknown topic", cmd: SetRetention{Topic: "u"}, err: ErrUnknownTopic},
		{name: "set", cmd: SetRetention{Topic: "t", Retention: Retention{MaxAgeMs: 1, MaxBytes: 2, MaxSegments: 3}}, check: func(t *testing.T, h *harness, v any) {
			eq(t, "retention", h.topic("t").Retention, Retention{MaxAgeMs: 1, MaxBytes: 2, MaxSegments: 3})
		}},
	})
}

func TestSegmentsLedBy(t *testing.T) {
	h := cluster(t, 1, 2)
	h.ok(CreateTopic{Name: "b", RF: 2}) // leader 1
	h.ok(CreateTopic{Name: "a", RF: 1}) // leader 2
	h.seal("a", 1)                      // a/2 led by 1
	h.seal("b", 1)                      // b/2 led by 2
	var got []string
	for _, r := range h.f.State().SegmentsLedBy(1) {
		got = append(got, r.Topic+"/"+r.Segment.State.String())
	}
	eq(t, "led by 1", got, []string{"a/open", "b/sealed"})
	got = nil
	for _, r := range h.f.State().SegmentsReplicatedOn(2) {
		got = append(got, r.Topic+"/"+string(rune('0'+r.Segment.ID)))
	}
	eq(t, "held by 2", got, []string{"a/1", "b/1", "b/2"})
}

// A long replica list in a (buggy) entry is rejected quickly, not in
// quadratic time.
func TestSetReplicasLongList(t *testing.T) {
	h := cluster(t, 1, 2, 3)
	h.ok(CreateTopic{Name: "t", RF: 3})
	long := make([]NodeID, 200000)
	for i := range long {
		long[i] = NodeID(i + 1)
	}
	h.fails(SetReplicas{Topic: "t", Segment: 1, Replicas: long}, ErrUnknownNode)
	long[len(long)-1] = 1
	h.fails(SetReplicas{Topic: "t", Segment: 1, Replicas: long}, ErrInvalid)
}

func TestReplacementPicksLeastLoadedLiveNode(t *testing.T) {
	s := NewState()
	for id := NodeID(1); id <= 4; id++ {
		s.Nodes[id] = &NodeInfo{ID: id, RaftAddr: "x", Live: id != 4}
	}
	t1 := &Topic{Name: "a", RF: 3, Segments: []*Segment{
		{ID: 1, Leader: 9, Replicas: []NodeID{9, 1, 2}, Epoch: 1, State: SegSealed, Count: 5},
		{ID: 2, Leader: 1, Replicas: []NodeID{1, 2, 3}, Epoch: 1, State: SegOpen, Base: 5},
	}}
	s.Topics["a"] = t1
	if got := s.UnderReplicated(); len(got) != 1 || got[0].Segment.ID != 1 {
		t.Fatalf("under-replicated: %+v", got)
	}
	reps, ok := s.Repairs().Replacement(t1, t1.Segments[0])
	// node 3 holds one replica, nodes 1 and 2 two each; node 4 is not live
	if !ok || !slices.Equal(reps, []NodeID{3, 1, 2}) {
		t.Fatalf("replacement %v %v", reps, ok)
	}
	if _, ok := s.Repairs().Replacement(t1, t1.Segments[1]); ok {
		t.Fatal("a segment on members only needs no replacement")
	}
	// a segment sealed with two replicas while node 3 was down is topped up
	// to RF 3 once a node can take it, and not before
	t1.Segments = append([]*Segment{{ID: 0, Leader: 1, Replicas: []NodeID{1, 2}, Epoch: 1, State: SegSealed}}, t1.Segments...)
	s.Nodes[3].Live = false
	if got := s.UnderReplicated(); len(got) != 2 || got[0].Segment.ID != 0 {
		t.Fatalf("under-replicated: %+v", got)
	}
	if reps, ok := s.Repairs().Replacement(t1, t1.Segments[0]); ok {
		t.Fatalf("no live node can help yet, got %v", reps)
	}
	s.Nodes[3].Live = true
	if reps, ok := s.Repairs().Replacement(t1, t1.Segments[0]); !ok || !slices.Equal(reps, []NodeID{1, 2, 3}) {
		t.Fatalf("top-up: %v %v", reps, ok)
	}
}

// One Repairs plan serves a whole controller tick: each answer is a pure
// function of the state the plan was made from, whatever was asked before.
func TestRepairsPlanAnswersDoNotDependOnEarlierCalls(t *testing.T) {
	s := NewState()
	for id := NodeID(1); id <= 4; id++ {
		s.Nodes[id] = &NodeInfo{ID: id, Live: true}
	}
	tp := &Topic{Name: "a", RF: 2, Segments: []*Segment{
		{ID: 1, Leader: 1, Replicas: []NodeID{1}, Epoch: 1, State: SegSealed, Count: 1},
		{ID: 2, Leader: 1, Replicas: []NodeID{1}, Epoch: 1, State: SegSealed, Count: 1, Base: 1},
	}}
	s.Topics["a"] = tp
	plan := s.Repairs()
	for _, g := range tp.Segments {
		// nodes 2, 3 and 4 hold nothing: the lowest id wins the tie
		if reps, ok := plan.Replacement(tp, g); !ok || !slices.Equal(reps, []NodeID{1, 2}) {
			t.Fatalf("segment %d: %v %v, want [1 2]", g.ID, reps, ok)
		}
	}
}

func TestRetentionCut(t *testing.T) {
	seg := func(id uint64, at, bytes int64) *Segment {
		return &Segment{ID: id, State: SegSealed, SealedAtMs: at, Bytes: bytes, Count: 1, Base: id - 1}
	}
	mk := func(r Retention) *Topic {
		return &Topic{Name: "t", Retention: r, Segments: []*Segment{
			seg(3, 100, 10), seg(4, 200, 20), seg(5, 300, 30), {ID: 6, State: SegOpen, Base: 5},
		}}
	}
	cases := []struct {
		name  string
		r     Retention
		now   int64
		below uint64
		ok    bool
	}{
		{"no policy", Retention{}, 1000, 0, false},
		{"segments within limit", Retention{MaxSegments: 3}, 1000, 0, false},
		{"keep two sealed", Retention{MaxSegments: 2}, 1000, 4, true},
		{"age drops a prefix", Retention{MaxAgeMs: 150}, 400, 5, true},
		{"age keeps everything young", Retention{MaxAgeMs: 1000}, 400, 0, false},
		{"the largest age keeps everything (no overflow)", Retention{MaxAgeMs: math.MaxInt64}, 1_700_000_000_000, 0, false},
		{"bytes", Retention{MaxBytes: 50}, 0, 4, true},
		{"bytes can drop every sealed segment, never the active", Retention{MaxBytes: 1}, 0, 6, true},
		{"strictest rule wins", Retention{MaxSegments: 2, MaxAgeMs: 150}, 400, 5, true},
	}
	for _, c := range cases {
		below, ok := mk(c.r).RetentionCut(c.now)
		if below != c.below || ok != c.ok {
			t.Errorf("%s: got %d %v, want %d %v", c.name, below, ok, c.below, c.ok)
		}
	}
}
