package raftfsm

import (
	"errors"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// One example of every command; the test below fails if a command is added
// to the dispatch table without being listed here.
var everyCommand = []Command{
	UpsertNode{Node: NodeInfo{ID: 1, RaftAddr: "a:1", ClientAddr: "a:2", HTTPAddr: "a:3", Live: true}},
	RemoveNode{ID: 1},
	SetLiveness{ID: 1, Live: true},
	CreateTopic{Name: "t", RF: 3, Retention: Retention{MaxAgeMs: 1, MaxBytes: 2, MaxSegments: 3}},
	SealSegment{Topic: "t", Segment: 1, Epoch: 1, Count: 10, AtMs: 99},
	FenceSegment{Topic: "t", Segment: 1, Epoch: 1},
	CommitCursor{Topic: "t", Group: "g", Offset: 4},
	DeleteGroup{Topic: "t", Group: "g"},
	SetReplicas{Topic: "t", Segment: 1, Replicas: []NodeID{1, 2}},
	DeleteSegments{Topic: "t", Below: 2},
	SetRetention{Topic: "t", Retention: Retention{MaxSegments: 2}},
}

func TestDispatchTableMatchesCommands(t *testing.T) {
	seen := map[CmdType]bool{}
	for _, c := range everyCommand {
		b := mustEncode(t, c)
		if b[0] != byte(c.Type()) || b[0]&FlagIgnorable != 0 {
			t.Fatalf("%T encodes with type byte %#x", c, b[0])
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("decode %T: %v", c, err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Fatalf("round trip: got %#v, want %#v", got, c)
		}
		if seen[c.Type()] {
			t.Fatalf("type %v listed twice", c.Type())
		}
		seen[c.Type()] = true
		if c.Type().String() != reflect.TypeOf(c).Name() {
			t.Fatalf("type %d is named %q, struct is %s", c.Type(), c.Type(), reflect.TypeOf(c).Name())
		}
	}
	for i := range handlers {
		if lookup(CmdType(i)) != nil && !seen[CmdType(i)] {
			t.Fatalf("handler %v has no example in everyCommand", CmdType(i))
		}
	}
	// The codes are a persistence format: pin them.
	want := []CmdType{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11}
	for i, c := range everyCommand {
		if c.Type() != want[i] {
			t.Fatalf("%T has code %d, shipped as %d", c, c.Type(), want[i])
		}
	}
}

func TestEncodeErrors(t *testing.T) {
	if _, err := Encode(nil); err == nil {
		t.Fatal("Encode(nil) succeeded")
	}
	if _, err := Encode(fakeCommand{}); !errors.Is(err, ErrUnknownCommand) {
		t.Fatalf("Encode(unknown) = %v", err)
	}
}

type fakeCommand struct{}

func (fakeCommand) Type() CmdType { return 99 }

func mustPanicUnknown(t *testing.T, data []byte) {
	t.Helper()
	h := cluster(t, 1)
	before := h.f.State()
	defer func() {
		t.Helper()
		r := recover()
		err, ok := r.(error)
		if !ok || !errors.Is(err, ErrUnknownCommand) {
			t.Fatalf("entry %x: recovered %v, want a panic with ErrUnknownCommand", data, r)
		}
		if h.f.State() != before {
			t.Fatalf("entry %x: state changed before the panic", data)
		}
	}()
	h.raw(data)
}

func TestUnknownCommandPanics(t *testing.T) {
	for _, data := range [][]byte{{0x00}, {0x0C}, {0x7F, 1, 2}, {0x00, 0x80}} {
		mustPanicUnknown(t, data)
	}
}

func TestIgnorableUnknownIsSkipped(t *testing.T) {
	h := cluster(t, 1)
	h.ok(CreateTopic{Name: "t", RF: 1})
	for _, data := range [][]byte{{0x80}, {0x8C, 0xC1, 0xFF}, {0xFF}} {
		before := h.f.State()
		r := h.raw(data)
		if r.Err != nil || r.Value != nil {
			t.Fatalf("entry %x: %+v", data, r)
		}
		assertOnlyLastApplied(t, before, h.f.State(), h.idx)
	}
}

// A known type with the ignorable bit set is applied, not skipped: the bit
// only matters to replicas that do not know the type.
func TestIgnorableKnownIsApplied(t *testing.T) {
	h := newHarness(t)
	b := mustEncode(t, UpsertNode{Node: node(7, true)})
	b[0] |= FlagIgnorable
	if r := h.raw(b); r.Err != nil {
		t.Fatal(r.Err)
	}
	eq(t, "ids", h.f.State().NodeIDs(), ids(7))
}

func TestUndecodableBodies(t *testing.T) {
	valid := mustEncode(t, CommitCursor{Topic: "t", Offset: 5})
	wrongShape, _ := msgpack.Marshal(map[string]any{"topic": 5, "offset": "x"})
	cases := map[string][]byte{
		"empty entry":    {},
		"no body":        {byte(CmdCommitCursor)},
		"truncated":      valid[:len(valid)-1],
		"trailing bytes": append(append([]byte{}, valid...), 0x00),
		"wrong types":    append([]byte{byte(CmdCommitCursor)}, wrongShape...),
		"never-used":     {byte(CmdSealSegment), 0xC1},
		"huge array":     {byte(CmdSetReplicas), 0x81, 0xA8, 'r', 'e', 'p', 'l', 'i', 'c', 'a', 's', 0xDD, 0xFF, 0xFF, 0xFF, 0xFF},
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			h := cluster(t, 1)
			h.ok(CreateTopic{Name: "t", RF: 1})
			before := h.f.State()
			r := h.raw(data)
			if !errors.Is(r.Err, ErrInvalid) {
				t.Fatalf("err %v, want ErrInvalid", r.Err)
			}
			assertOnlyLastApplied(t, before, h.f.State(), h.idx)
			if _, err := Decode(data); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Decode err %v, want ErrInvalid", err)
			}
		})
	}
}

// Fields a newer proposer adds are skipped by this version's decoder.
func TestUnknownFieldsAreSkipped(t *testing.T) {
	body, _ := msgpack.Marshal(map[string]any{"topic": "t", "offset": 7, "future": []int{1, 2}})
	h := cluster(t, 1)
	h.ok(CreateTopic{Name: "t", RF: 1})
	if r := h.raw(append([]byte{byte(CmdCommitCursor)}, body...)); r.Err != nil {
		t.Fatal(r.Err)
	}
	eq(t, "cursor", h.topic("t").Cursor, uint64(7))
}
