package raftfsm

import (
	"bytes"
	"fmt"
	"math"
	"math/rand"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// gen writes a random raft log: mostly plausible commands aimed at the
// current state (so guards pass often enough to build long chains), plus
// invalid, stale and garbage entries and ignorable unknown types. It never
// writes an unknown non-ignorable type (that panics by design).
type gen struct {
	r *rand.Rand
}

var genTopics = []string{"a", "b", "c", "d", "", "x y"}

func (g *gen) pick(n int) int { return g.r.Intn(n) }
func (g *gen) chance(p float64) bool {
	return g.r.Float64() < p
}

func (g *gen) nodeID() NodeID { return NodeID(g.pick(8)) } // 0..7: 0 and 7 rarely/never exist

func (g *gen) topic(s *State) (string, *Topic) {
	name := genTopics[g.pick(len(genTopics))]
	return name, s.Topics[name]
}

// near returns v, sometimes nudged by one in either direction.
func (g *gen) near(v uint64) uint64 {
	switch g.pick(10) {
	case 0:
		return v + 1
	case 1:
		return v - 1 // may wrap at 0: that is a fine invalid value
	}
	return v
}

func (g *gen) retention() Retention {
	r := Retention{MaxAgeMs: int64(g.pick(3)) * 1000, MaxBytes: int64(g.pick(3)) << 20, MaxSegments: g.pick(4)}
	if g.chance(0.1) {
		r.MaxSegments = -1
	}
	return r
}

func (g *gen) command(s *State) Command {
	name, t := g.topic(s)
	var a *Segment
	if t != nil {
		a = t.Active()
	}
	seg := func() (uint64, uint64) {
		if a == nil {
			return uint64(g.pick(3)), uint64(g.pick(3))
		}
		return g.near(a.ID), g.near(a.Epoch)
	}
	switch k := g.pick(100); {
	case k < 8:
		n := node(g.nodeID(), g.chance(0.7))
		if g.chance(0.05) {
			n.RaftAddr = ""
		}
		return UpsertNode{Node: n}
	case k < 11:
		return RemoveNode{ID: g.nodeID()}
	case k < 20:
		return SetLiveness{ID: g.nodeID(), Live: g.chance(0.6)}
	case k < 27:
		return CreateTopic{Name: name, RF: g.pick(6) - 1, Retention: g.retention()}
	case k < 50:
		id, ep := seg()
		at := int64(g.pick(1 << 20))
		if g.chance(0.03) {
			at = -at - 1
		}
		count := uint64(g.pick(1000))
		if g.chance(0.02) {
			count = math.MaxUint64 - uint64(g.pick(10))
		}
		return SealSegment{Topic: name, Segment: id, Epoch: ep, Count: count, AtMs: at}
	case k < 58:
		id, ep := seg()
		return FenceSegment{Topic: name, Segment: id, Epoch: ep}
	case k < 72:
		c := CommitCursor{Topic: name, Offset: uint64(g.pick(5000))}
		if g.chance(0.4) {
			c.Group = []string{"g1", "g2", "g3"}[g.pick(3)]
		}
		return c
	case k < 76:
		return DeleteGroup{Topic: name, Group: []string{"", "g1", "g2", "g3"}[g.pick(4)]}
	case k < 84:
		id, _ := seg()
		if t != nil && g.chance(0.5) {
			id = t.Segments[0].ID + uint64(g.pick(len(t.Segments)))
		}
		reps := make([]NodeID, 0, 4)
		for range 1 + g.pick(4) {
			reps = append(reps, g.nodeID())
		}
		if a != nil && g.chance(0.5) {
			reps[0] = a.Leader
		}
		return SetReplicas{Topic: name, Segment: id, Replicas: reps}
	case k < 92:
		below := uint64(g.pick(4))
		if t != nil {
			below += t.Segments[0].ID
		}
		return DeleteSegments{Topic: name, Below: below}
	default:
		return SetRetention{Topic: name, Retention: g.retention()}
	}
}

// entry returns the next raft log entry for state s.
func (g *gen) entry(t testing.TB, s *State) []byte {
	switch k := g.pick(100); {
	case k < 3: // an ignorable command from the future
		b := make([]byte, 1+g.pick(8))
		g.r.Read(b)
		b[0] = FlagIgnorable | byte(12+g.pick(116))
		return b
	case k < 6: // garbage body for a known type
		b := make([]byte, 1+g.pick(24))
		g.r.Read(b)
		b[0] = byte(1 + g.pick(11))
		return b
	case k < 9: // a valid command with one body byte flipped
		b := mustEncode(t, g.command(s))
		if len(b) > 1 {
			b[1+g.pick(len(b)-1)] ^= byte(1 + g.pick(255))
		}
		return b
	}
	return mustEncode(t, g.command(s))
}

// randomLog applies n generated entries to f at indexes after f's
// LastApplied, checking invariants after each, and returns the log and the
// results.
func randomLog(t testing.TB, seed int64, f *FSM, n int, each func(i int)) ([][]byte, []Result) {
	start := f.State().LastApplied
	g := &gen{r: rand.New(rand.NewSource(seed))}
	var log [][]byte
	var results []Result
	for i := range n {
		e := g.entry(t, f.State())
		log = append(log, e)
		results = append(results, f.Apply(start+uint64(i+1), e))
		if err := f.State().CheckInvariants(); err != nil {
			t.Fatalf("seed %d entry %d (%x): %v\n%s", seed, start+uint64(i+1), e, err, dump(f.State()))
		}
		if each != nil {
			each(i)
		}
	}
	return log, results
}

func mustSnapshot(t testing.TB, f *FSM) []byte {
	t.Helper()
	b, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Two replicas fed the same log agree on every result and end byte-equal;
// a snapshot restored into a fresh FSM is the same state.
func TestDeterminism(t *testing.T) {
	const entries = 3000
	okByType := map[CmdType]int{}
	for seed := int64(1); seed <= 6; seed++ {
		a := New()
		log, resA := randomLog(t, seed, a, entries, nil)
		b := New()
		for i, e := range log {
			rb := b.Apply(uint64(i+1), e)
			if fmt.Sprint(rb.Err) != fmt.Sprint(resA[i].Err) || !reflect.DeepEqual(rb.Value, resA[i].Value) {
				t.Fatalf("seed %d entry %d: replica results differ: %+v vs %+v", seed, i+1, resA[i], rb)
			}
			if resA[i].Err == nil && len(e) > 0 && lookup(CmdType(e[0]&^FlagIgnorable)) != nil {
				okByType[CmdType(e[0]&^FlagIgnorable)]++
			}
		}
		snapA, snapB := mustSnapshot(t, a), mustSnapshot(t, b)
		if !bytes.Equal(snapA, snapB) {
			t.Fatalf("seed %d: snapshots differ", seed)
		}
		if !reflect.DeepEqual(a.State(), b.State()) {
			t.Fatalf("seed %d: states differ", seed)
		}

		c := New()
		if err := c.Restore(snapA); err != nil {
			t.Fatalf("seed %d: restore: %v", seed, err)
		}
		if !bytes.Equal(mustSnapshot(t, c), snapA) {
			t.Fatalf("seed %d: snapshot after restore differs", seed)
		}
		if !reflect.DeepEqual(c.State(), a.State()) {
			t.Fatalf("seed %d: restored state differs:\n%s\n%s", seed, dump(a.State()), dump(c.State()))
		}
		for _, name := range a.State().TopicNames() {
			if !reflect.DeepEqual(CompatState(a.State().Topics[name]), CompatState(c.State().Topics[name])) {
				t.Fatalf("seed %d: topic %q: STATE differs after restore", seed, name)
			}
		}
		// The restored replica keeps agreeing with the original.
		more, _ := randomLog(t, seed+1000, a, 500, nil)
		for i, e := range more {
			c.Apply(uint64(len(log)+i+1), e)
		}
		if !bytes.Equal(mustSnapshot(t, a), mustSnapshot(t, c)) {
			t.Fatalf("seed %d: restored replica diverged", seed)
		}
	}
	// The log must exercise every command's success path, or this test
	// proves little.
	for _, c := range everyCommand {
		if okByType[c.Type()] == 0 {
			t.Errorf("no %v ever succeeded: tune the generator", c.Type())
		}
	}
	t.Logf("successful commands by type: %v", okByType)
}

// A published State never changes: states taken along a long random run
// still equal the deep copies made when they were taken, and a reader
// walking states concurrently with Apply is race-free (run with -race).
func TestPublishedStatesAreImmutable(t *testing.T) {
	f := New()
	type taken struct {
		at   int
		s    *State
		copy *State
	}
	var kept []taken
	var results []Result
	take := func(i int) {
		s := f.State()
		kept = append(kept, taken{i, s, s.Clone()})
	}
	take(-1)

	var stop atomic.Bool
	var wg sync.WaitGroup
	wg.Go(func() {
		for !stop.Load() {
			s := f.State()
			for _, name := range s.TopicNames() {
				_ = CompatState(s.Topics[name])
			}
			_ = s.SegmentsLedBy(1)
			if _, err := EncodeState(s); err != nil {
				panic(err)
			}
		}
	})
	rnd := rand.New(rand.NewSource(42))
	_, results = randomLog(t, 7, f, 4000, func(i int) {
		if rnd.Intn(100) == 0 {
			take(i)
		}
	})
	stop.Store(true)
	wg.Wait()
	for _, k := range kept {
		if !reflect.DeepEqual(k.s, k.copy) {
			t.Fatalf("state published after entry %d was modified later:\nnow  %s\nthen %s", k.at+1, dump(k.s), dump(k.copy))
		}
	}
	// Values handed out in results point into published states: also frozen.
	frozen := make([]string, len(results))
	for i, r := range results {
		frozen[i] = fmt.Sprintf("%+v", deref(r.Value))
	}
	randomLog(t, 8, f, 1000, nil)
	for i, r := range results {
		if got := fmt.Sprintf("%+v", deref(r.Value)); got != frozen[i] {
			t.Fatalf("result %d changed: %s -> %s", i, frozen[i], got)
		}
	}
	if len(kept) < 10 {
		t.Fatalf("only %d states taken", len(kept))
	}
}

func deref(v any) any {
	switch x := v.(type) {
	case *Topic:
		return dumpTopic(x)
	case *Segment:
		return *x
	case *NodeInfo:
		return *x
	}
	return v
}

func dumpTopic(t *Topic) string {
	s := NewState()
	s.Topics[t.Name] = t
	return dump(s)
}

func TestSnapshotEmptyAndOrderIndependent(t *testing.T) {
	// Same state reached in different orders encodes to the same bytes.
	a := cluster(t, 1, 2, 3, 4, 5)
	b := cluster(t, 5, 4, 3, 2, 1)
	for _, h := range []*harness{a, b} {
		h.ok(CreateTopic{Name: "t", RF: 2})
	}
	for _, g := range []string{"z", "y", "x", "w"} {
		a.ok(CommitCursor{Topic: "t", Group: g, Offset: 1})
	}
	for _, g := range []string{"w", "x", "y", "z"} {
		b.ok(CommitCursor{Topic: "t", Group: g, Offset: 1})
	}
	if !bytes.Equal(mustSnapshot(t, a.f), mustSnapshot(t, b.f)) {
		t.Fatal("equal states encode differently")
	}

	e := New()
	snap := mustSnapshot(t, e)
	r := cluster(t, 1)
	if err := r.f.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.f.State(), NewState()) {
		t.Fatalf("restore of an empty snapshot left %s", dump(r.f.State()))
	}
}

func TestRestoreRejectsBadSnapshots(t *testing.T) {
	h := cluster(t, 1, 2)
	h.ok(CreateTopic{Name: "t", RF: 2})
	h.seal("t", 5)
	good := mustSnapshot(t, h.f)

	var ss snapState
	if err := msgpack.Unmarshal(good, &ss); err != nil {
		t.Fatal(err)
	}
	mutate := func(change func(s *snapState)) []byte {
		var c snapState
		if err := msgpack.Unmarshal(good, &c); err != nil {
			t.Fatal(err)
		}
		change(&c)
		b, err := msgpack.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	bad := map[string][]byte{
		"garbage":          []byte("not a snapshot"),
		"empty":            nil,
		"truncated":        good[:len(good)-3],
		"version":          mutate(func(s *snapState) { s.Version = 2 }),
		"duplicate node":   mutate(func(s *snapState) { s.Nodes = append(s.Nodes, s.Nodes[0]) }),
		"node 0":           mutate(func(s *snapState) { s.Nodes[0].ID = 0 }),
		"duplicate topic":  mutate(func(s *snapState) { s.Topics = append(s.Topics, s.Topics[0]) }),
		"no segments":      mutate(func(s *snapState) { s.Topics[0].Segments = nil }),
		"active sealed":    mutate(func(s *snapState) { s.Topics[0].Segments[1].State = SegSealed }),
		"gap in ids":       mutate(func(s *snapState) { s.Topics[0].Segments[1].ID = 3 }),
		"wrong base":       mutate(func(s *snapState) { s.Topics[0].Segments[1].Base = 4 }),
		"bad state":        mutate(func(s *snapState) { s.Topics[0].Segments[0].State = 0 }),
		"empty group name": mutate(func(s *snapState) { s.Topics[0].Groups = []snapGroup{{Name: ""}} }),
		"rf 0":             mutate(func(s *snapState) { s.Topics[0].RF = 0 }),
		"leader not a replica": mutate(func(s *snapState) {
			s.Topics[0].Segments[1].Replicas = []NodeID{9}
		}),
	}
	for name, b := range bad {
		before := h.f.State()
		if err := h.f.Restore(b); err == nil {
			t.Errorf("%s: restore succeeded", name)
		}
		if h.f.State() != before {
			t.Errorf("%s: failed restore replaced the state", name)
		}
	}
	if err := h.f.Restore(mutate(func(*snapState) {})); err != nil {
		t.Fatalf("re-encoded good snapshot: %v", err)
	}
}

// Garbage entries never panic except for the documented unknown-type panic.
func TestRandomGarbageEntries(t *testing.T) {
	r := rand.New(rand.NewSource(3))
	h := cluster(t, 1, 2, 3)
	h.ok(CreateTopic{Name: "t", RF: 3})
	for range 20000 {
		b := make([]byte, r.Intn(40))
		r.Read(b)
		if len(b) > 0 && lookup(CmdType(b[0]&^FlagIgnorable)) == nil && b[0]&FlagIgnorable == 0 {
			b[0] = byte(1 + r.Intn(11))
		}
		h.raw(b)
		if err := h.f.State().CheckInvariants(); err != nil {
			t.Fatalf("entry %x: %v", b, err)
		}
	}
}
