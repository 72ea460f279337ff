package raftfsm

import (
	"bytes"
	"errors"
	"testing"
)

// fuzzBase is a small but varied state for fuzzed entries to act on: three
// nodes (one down), topic "t" with sealed, deleted and active segments and a
// group, topic "u" with a fenced active segment.
func fuzzBase(t testing.TB) []byte {
	h := cluster(t, 1, 2, 3)
	h.ok(CreateTopic{Name: "t", RF: 3})
	h.ok(CreateTopic{Name: "u", RF: 2})
	for _, c := range []uint64{10, 0, 7} {
		h.seal("t", c)
	}
	h.ok(DeleteSegments{Topic: "t", Below: 2})
	h.ok(CommitCursor{Topic: "t", Offset: 12})
	h.ok(CommitCursor{Topic: "t", Group: "g", Offset: 3})
	h.ok(FenceSegment{Topic: "u", Segment: 1, Epoch: 1})
	h.ok(SetLiveness{ID: 2})
	return mustSnapshot(t, h.f)
}

// applyOrUnknown applies e and returns normally unless Apply panics for any
// reason other than the documented one: an unknown, non-ignorable type byte.
func applyOrUnknown(t *testing.T, f *FSM, index uint64, e []byte) {
	t.Helper()
	before := f.State()
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		err, ok := r.(error)
		if !ok || !errors.Is(err, ErrUnknownCommand) {
			panic(r)
		}
		if len(e) == 0 || e[0]&FlagIgnorable != 0 || lookup(CmdType(e[0])) != nil {
			t.Fatalf("entry %x: unknown-command panic for a known or ignorable type", e)
		}
		if f.State() != before {
			t.Fatalf("entry %x: state changed before the panic", e)
		}
	}()
	f.Apply(index, e)
}

// FuzzApply feeds arbitrary bytes to Apply: first as one entry, then, split
// at every 0xC1 (a byte msgpack never uses), as a sequence of entries. Apply
// must never panic except for an unknown type, and every state it publishes
// must satisfy the invariants and survive a snapshot round trip.
func FuzzApply(f *testing.F) {
	base := fuzzBase(f)
	var seq [][]byte
	for _, c := range everyCommand {
		e := mustEncode(f, c)
		f.Add(e)
		seq = append(seq, e)
	}
	for _, c := range []Command{
		SealSegment{Topic: "t", Segment: 4, Epoch: 1, Count: 5},
		SealSegment{Topic: "u", Segment: 1, Epoch: 2, Count: 5},
		SetReplicas{Topic: "t", Segment: 3, Replicas: []NodeID{3, 1}},
		DeleteSegments{Topic: "t", Below: 9},
	} {
		seq = append(seq, mustEncode(f, c))
	}
	f.Add(bytes.Join(seq, []byte{0xC1}))
	f.Add([]byte{})
	f.Add([]byte{0x8C, 1, 2})
	f.Add([]byte{0x0C})
	f.Add([]byte{byte(CmdSetReplicas), 0x81, 0xA8, 'r', 'e', 'p', 'l', 'i', 'c', 'a', 's', 0xDD, 0xFF, 0xFF, 0xFF, 0xFF})

	f.Fuzz(func(t *testing.T, data []byte) {
		fsm := New()
		if err := fsm.Restore(base); err != nil {
			t.Fatal(err)
		}
		idx := fsm.State().LastApplied
		check := func(e []byte) {
			idx++
			applyOrUnknown(t, fsm, idx, e)
			s := fsm.State()
			if err := s.CheckInvariants(); err != nil {
				t.Fatalf("entry %x: %v", e, err)
			}
		}
		check(data)
		if bytes.IndexByte(data, 0xC1) >= 0 {
			for _, e := range bytes.Split(data, []byte{0xC1}) {
				check(e)
			}
		}
		snap := mustSnapshot(t, fsm)
		again := New()
		if err := again.Restore(snap); err != nil {
			t.Fatalf("restore: %v", err)
		}
		if !bytes.Equal(mustSnapshot(t, again), snap) {
			t.Fatal("snapshot round trip differs")
		}
	})
}
