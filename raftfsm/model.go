package raftfsm

import (
	"maps"
	"slices"
	"sort"
	"strconv"
)

// Persisted field tags: NodeInfo, Segment and Retention are stored as-is in
// command bodies and snapshots, so their msgpack tags are part of the on-disk
// and on-wire format. Never rename or reuse a tag once it has shipped; add new
// fields with new tags (old replicas ignore unknown fields when decoding).

// NodeID identifies a cluster node. Node ids are small positive integers
// (COMPAT.md); 0 means "no node" and is rejected by every command.
type NodeID uint64

// NodeInfo is what the cluster knows about one node.
type NodeInfo struct {
	ID         NodeID `msgpack:"id"`
	RaftAddr   string `msgpack:"raft"`   // internal port: raft transport and node-to-node RPC
	ClientAddr string `msgpack:"client"` // client protocol (COMPAT.md)
	HTTPAddr   string `msgpack:"http"`   // metrics and health
	// Live is the node's liveness as the raft leader last recorded it
	// (SetLiveness). New segments are placed on live nodes only, while any
	// node is live.
	Live bool `msgpack:"live"`
}

// SegState is the lifecycle state of a segment. The zero value is invalid so
// that a forgotten field is caught by validation.
type SegState uint8

const (
	// SegOpen: the leader accepts writes at the segment's epoch.
	SegOpen SegState = 1
	// SegFenced: the epoch was bumped for recovery; nobody may write. The
	// segment leaves this state only by being sealed at the new epoch.
	SegFenced SegState = 2
	// SegSealed: final; Count is the number of entries. Never changes again.
	SegSealed SegState = 3
)

func (s SegState) String() string {
	switch s {
	case SegOpen:
		return "open"
	case SegFenced:
		return "fenced"
	case SegSealed:
		return "sealed"
	}
	return "SegState(" + strconv.Itoa(int(s)) + ")"
}

func (s SegState) valid() bool { return s >= SegOpen && s <= SegSealed }

// Segment is one link of a topic's chain.
type Segment struct {
	ID     uint64 `msgpack:"id"`
	Leader NodeID `msgpack:"leader"`
	// Replicas holds the nodes that store the segment. Replicas[0] == Leader
	// when the segment is opened; SetReplicas may reorder or replace them
	// (the active segment's leader always stays in the set).
	Replicas []NodeID `msgpack:"replicas"`
	// Epoch starts at 1 and is bumped by FenceSegment.
	Epoch uint64   `msgpack:"epoch"`
	State SegState `msgpack:"state"`
	// Count is the final number of entries; 0 and meaningless until sealed.
	Count uint64 `msgpack:"count"`
	// Base is the topic-global offset of the segment's first entry: the
	// entries occupy [Base, Base+Count).
	Base uint64 `msgpack:"base"`
	// SealedAtMs is the proposer's wall clock (Unix ms) at sealing, carried
	// in the SealSegment command; used for age-based retention.
	SealedAtMs int64 `msgpack:"sealed_at"`
	// Bytes is the sealed segment's payload size (SealSegment.Bytes).
	Bytes int64 `msgpack:"bytes,omitempty"`
}

// Sealed reports whether the segment is sealed.
func (s *Segment) Sealed() bool { return s.State == SegSealed }

// End is the topic-global offset just past a sealed segment's last entry
// (Base+Count). For an unsealed segment it equals Base.
func (s *Segment) End() uint64 { return s.Base + s.Count }

func (s *Segment) clone() *Segment {
	c := *s
	c.Replicas = slices.Clone(s.Replicas)
	return &c
}

// Retention limits how much of a topic is kept. Zero means unlimited. The
// FSM only stores the policy; whoever enforces it proposes DeleteSegments.
// STATE shows it as it is (its json names).
type Retention struct {
	MaxAgeMs    int64 `msgpack:"max_age_ms" json:"max_age_ms"`
	MaxBytes    int64 `msgpack:"max_bytes" json:"max_bytes"`
	MaxSegments int   `msgpack:"max_segments" json:"max_segments"`
}

func (r Retention) valid() bool { return r.MaxAgeMs >= 0 && r.MaxBytes >= 0 && r.MaxSegments >= 0 }

// Topic is a named chain of segments.
//
// Topics are not encoded directly (their map would make snapshot bytes
// depend on iteration order); see snapTopic for the persisted form.
type Topic struct {
	Name string
	// RF is the replication factor asked for at creation. Each new segment
	// gets min(RF, placement candidates) replicas, so a topic created while
	// the cluster was small grows to its RF as nodes join.
	RF int
	// Segments are in ascending, contiguous id order; the last one is the
	// active one (open, or fenced while it is recovered); all others are
	// sealed. The first may have an id > 1 after retention deleted older
	// ones. A topic always has at least one segment.
	Segments []*Segment
	// Cursor is the shared cursor: the next topic-global offset GET hands
	// out. It only moves forward. It may point below FirstOffset after
	// retention; readers skip forward.
	Cursor uint64
	// Groups maps a named consumer group to its committed next offset.
	// Never nil in a State produced by this package.
	Groups    map[string]uint64
	Retention Retention
}

// Active returns the active (last) segment, or nil for a topic without
// segments (which no command produces).
func (t *Topic) Active() *Segment {
	if len(t.Segments) == 0 {
		return nil
	}
	return t.Segments[len(t.Segments)-1]
}

// SegmentByID returns the retained segment with the given id, or nil.
func (t *Topic) SegmentByID(id uint64) *Segment {
	i, ok := t.segmentIndex(id)
	if !ok {
		return nil
	}
	return t.Segments[i]
}

func (t *Topic) segmentIndex(id uint64) (int, bool) {
	if len(t.Segments) == 0 || id < t.Segments[0].ID {
		return 0, false
	}
	d := id - t.Segments[0].ID
	if d >= uint64(len(t.Segments)) {
		return 0, false
	}
	return int(d), true
}

// SealedTotal is the number of entries in all segments ever sealed, deleted
// ones included: the active segment's Base. COMPAT.md's
// last_sealed_entry_offset.
func (t *Topic) SealedTotal() uint64 {
	if a := t.Active(); a != nil {
		return a.Base
	}
	return 0
}

// FirstOffset is the lowest topic-global offset still retained: the first
// retained segment's Base.
func (t *Topic) FirstOffset() uint64 {
	if len(t.Segments) == 0 {
		return 0
	}
	return t.Segments[0].Base
}

// Locate finds the segment holding a topic-global offset and the offset's
// index inside it. ok is false if the offset is below FirstOffset (deleted
// by retention). Any offset >= the active segment's Base is reported as in
// the active segment (the FSM does not know its current length: callers
// compare index with what the segment holds).
func (t *Topic) Locate(offset uint64) (seg *Segment, index uint64, ok bool) {
	n := len(t.Segments)
	if n == 0 || offset < t.Segments[0].Base {
		return nil, 0, false
	}
	if a := t.Segments[n-1]; offset >= a.Base {
		return a, offset - a.Base, true
	}
	// Sealed segments tile [FirstOffset, active.Base) contiguously, so the
	// last segment whose Base <= offset holds it (empty sealed segments share
	// their Base with the next one and are skipped by taking the last).
	i := sort.Search(n, func(i int) bool { return t.Segments[i].Base > offset }) - 1
	s := t.Segments[i]
	return s, offset - s.Base, true
}

// shallow returns a shallow copy: the Segments slice and Groups map are shared
// with t and must be replaced, not written, by whoever changes them.
func (t *Topic) shallow() *Topic {
	c := *t
	return &c
}

func (t *Topic) clone() *Topic {
	c := *t
	c.Segments = make([]*Segment, len(t.Segments))
	for i, s := range t.Segments {
		c.Segments[i] = s.clone()
	}
	c.Groups = maps.Clone(t.Groups)
	if c.Groups == nil {
		c.Groups = map[string]uint64{}
	}
	return &c
}

// State is the whole replicated metadata. A *State obtained from [FSM.State]
// (or any Result.Value pointing into it) is immutable: read it from any
// goroutine, never write it.
type State struct {
	Nodes  map[NodeID]*NodeInfo
	Topics map[string]*Topic
	// NextFirstLeader is the round-robin counter that picks the first
	// segment's leader of each new topic.
	NextFirstLeader uint64
	// LastApplied is the raft log index of the last entry applied (including
	// entries that failed or were skipped).
	LastApplied uint64
}

// NewState returns an empty state.
func NewState() *State {
	return &State{Nodes: map[NodeID]*NodeInfo{}, Topics: map[string]*Topic{}}
}

// Clone returns a deep copy that shares nothing with s.
func (s *State) Clone() *State {
	c := &State{
		Nodes:           make(map[NodeID]*NodeInfo, len(s.Nodes)),
		Topics:          make(map[string]*Topic, len(s.Topics)),
		NextFirstLeader: s.NextFirstLeader,
		LastApplied:     s.LastApplied,
	}
	for id, n := range s.Nodes {
		nn := *n
		c.Nodes[id] = &nn
	}
	for name, t := range s.Topics {
		c.Topics[name] = t.clone()
	}
	return c
}

// NodeIDs returns every node id in ascending order.
func (s *State) NodeIDs() []NodeID {
	return slices.Sorted(maps.Keys(s.Nodes))
}

// TopicNames returns every topic name in ascending order.
func (s *State) TopicNames() []string {
	return slices.Sorted(maps.Keys(s.Topics))
}

// Candidates returns the nodes new segments are placed on, ascending: the
// live nodes, or every node if none is live. Empty only for a cluster
// without nodes.
func (s *State) Candidates() []NodeID {
	ids := make([]NodeID, 0, len(s.Nodes))
	for id, n := range s.Nodes {
		if n.Live {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return s.NodeIDs()
	}
	slices.Sort(ids)
	return ids
}

// SegmentRef names one segment of one topic.
type SegmentRef struct {
	Topic   string
	Segment *Segment
}

// SegmentsLedBy returns every retained segment (sealed ones included) whose
// leader is id, ordered by topic name then segment id. Callers filter on
// Segment.State (e.g. the active segments a node must hold a lease for).
func (s *State) SegmentsLedBy(id NodeID) []SegmentRef {
	return s.segmentsWhere(func(g *Segment) bool { return g.Leader == id })
}

// SegmentsReplicatedOn returns every retained segment whose replica set
// contains id, ordered by topic name then segment id.
func (s *State) SegmentsReplicatedOn(id NodeID) []SegmentRef {
	return s.segmentsWhere(func(g *Segment) bool { return slices.Contains(g.Replicas, id) })
}

func (s *State) segmentsWhere(keep func(*Segment) bool) []SegmentRef {
	var out []SegmentRef
	for _, name := range s.TopicNames() {
		for _, g := range s.Topics[name].Segments {
			if keep(g) {
				out = append(out, SegmentRef{Topic: name, Segment: g})
			}
		}
	}
	return out
}

// placement picks a segment's leader and replicas from candidates (sorted
// ascending, non-empty): the leader is candidates[li], followed by the next
// min(rf, len)-1 candidates in ring order.
func placement(candidates []NodeID, li int, rf int) (NodeID, []NodeID) {
	n := len(candidates)
	r := min(max(rf, 1), n)
	reps := make([]NodeID, r)
	for k := range r {
		reps[k] = candidates[(li+k)%n]
	}
	return reps[0], reps
}

// nextAfter returns the index of the first candidate with an id greater than
// prev, wrapping to 0: round-robin that also works when prev itself is no
// longer a candidate.
func nextAfter(candidates []NodeID, prev NodeID) int {
	i, found := slices.BinarySearch(candidates, prev)
	if found {
		i++
	}
	if i >= len(candidates) {
		return 0
	}
	return i
}

// distinctNodes reports whether ids holds no 0 and no id twice. It sorts a
// copy (O(n log n)): a replica list in a raft entry or snapshot can be long.
func distinctNodes(ids []NodeID) bool {
	s := slices.Clone(ids)
	slices.Sort(s)
	for i, id := range s {
		if id == 0 || (i > 0 && s[i-1] == id) {
			return false
		}
	}
	return true
}

// UnderReplicated returns the retained sealed segments whose replica set
// needs repair, ordered by topic then segment id: those holding a replica
// on a node that is no longer a member, and those with fewer replicas than
// the topic's RF allows now (a segment opened while nodes were down, or
// while the cluster was smaller).
func (s *State) UnderReplicated() []SegmentRef {
	var out []SegmentRef
	for _, name := range s.TopicNames() {
		t := s.Topics[name]
		for _, g := range t.Segments {
			if g.Sealed() && s.needsRepair(t, g) {
				out = append(out, SegmentRef{Topic: name, Segment: g})
			}
		}
	}
	return out
}

// replicaTarget is how many replicas a segment of t should have: its RF,
// capped by the cluster's size.
func (s *State) replicaTarget(t *Topic) int { return min(max(t.RF, 1), len(s.Nodes)) }

func (s *State) needsRepair(t *Topic, g *Segment) bool {
	return s.HasRemovedReplica(g) || len(g.Replicas) < s.replicaTarget(t)
}

// HasRemovedReplica reports whether one of g's replicas is on a node that
// is no longer a member.
func (s *State) HasRemovedReplica(g *Segment) bool {
	for _, r := range g.Replicas {
		if _, ok := s.Nodes[r]; !ok {
			return true
		}
	}
	return false
}

// Repairs plans replica-set repairs over one metadata snapshot. The
// replicas each node holds are counted once, when it is made, so a
// controller tick that considers every under-replicated segment costs
// O(segments), not O(under-replicated x segments). Make a new one after
// the state changes.
type Repairs struct {
	s    *State
	ids  []NodeID
	load map[NodeID]int
}

// Repairs counts, for Replacement, the replicas each node holds.
func (s *State) Repairs() *Repairs {
	load := map[NodeID]int{}
	for _, tt := range s.Topics {
		for _, seg := range tt.Segments {
			for _, r := range seg.Replicas {
				load[r]++
			}
		}
	}
	return &Repairs{s: s, ids: s.NodeIDs(), load: load}
}

// Replacement repairs a sealed segment's replica set: replicas on removed
// nodes are replaced in place, then replicas are added up to the topic's
// target, each time by the live member holding the fewest replicas that is
// not already in the set (lowest id on ties). It returns the new set and
// whether it differs (false when no live node can help now). Deterministic:
// a pure function of the state.
func (p *Repairs) Replacement(t *Topic, g *Segment) ([]NodeID, bool) {
	s := p.s
	out := make([]NodeID, 0, len(g.Replicas))
	var added map[NodeID]int // picks of this call, on top of p.load
	pick := func() (NodeID, bool) {
		best, bestLoad, found := NodeID(0), 0, false
		for _, c := range p.ids {
			if slices.Contains(out, c) || slices.Contains(g.Replicas, c) || !s.Nodes[c].Live {
				continue
			}
			if l := p.load[c] + added[c]; !found || l < bestLoad {
				best, bestLoad, found = c, l, true
			}
		}
		if found {
			if added == nil {
				added = map[NodeID]int{}
			}
			added[best]++
		}
		return best, found
	}
	for _, r := range g.Replicas {
		if _, ok := s.Nodes[r]; ok {
			out = append(out, r)
			continue
		}
		if c, ok := pick(); ok {
			out = append(out, c)
		}
	}
	for len(out) < s.replicaTarget(t) {
		c, ok := pick()
		if !ok {
			break
		}
		out = append(out, c)
	}
	if len(out) == 0 || slices.Equal(out, g.Replicas) {
		return nil, false
	}
	return out, true
}

// RetentionCut decides which sealed segments the topic's retention policy
// drops at nowMs (the proposer's clock): every segment with an id below the
// returned one. ok is false when nothing is due. Only a prefix of the
// sealed segments is ever dropped, never the active segment:
//   - MaxSegments: keep at most that many sealed segments;
//   - MaxAgeMs: drop sealed segments sealed longer ago than that;
//   - MaxBytes: drop the oldest sealed segments until the sealed ones left
//     hold at most that many payload bytes.
func (t *Topic) RetentionCut(nowMs int64) (below uint64, ok bool) {
	r := t.Retention
	if len(t.Segments) < 2 || (r.MaxSegments <= 0 && r.MaxAgeMs <= 0 && r.MaxBytes <= 0) {
		return 0, false
	}
	sealed := t.Segments[:len(t.Segments)-1]
	k := 0
	if r.MaxSegments > 0 && len(sealed) > r.MaxSegments {
		k = len(sealed) - r.MaxSegments
	}
	if r.MaxAgeMs > 0 {
		i := 0
		// (a difference, not a sum: MaxAgeMs may be as large as MaxInt64,
		// "keep everything", and the sum would overflow)
		for i < len(sealed) && nowMs-sealed[i].SealedAtMs > r.MaxAgeMs {
			i++
		}
		k = max(k, i)
	}
	if r.MaxBytes > 0 {
		var total int64
		for _, g := range sealed {
			total += g.Bytes
		}
		i := 0
		for i < len(sealed) && total > r.MaxBytes {
			total -= sealed[i].Bytes
			i++
		}
		k = max(k, i)
	}
	if k == 0 {
		return 0, false
	}
	return t.Segments[k].ID, true
}
