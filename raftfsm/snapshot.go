package raftfsm

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/vmihailenco/msgpack/v5"
)

// Snapshot format. The State's maps are encoded as slices sorted by key, so
// equal states encode to equal bytes on every replica. Every field has a
// short msgpack tag: these tags, and snapshotVersion's meaning, are a
// persistence format and must never change once shipped. Add fields with new
// tags (decoders skip unknown ones); bump snapshotVersion only for changes an
// old decoder must refuse.

const snapshotVersion = 1

type snapState struct {
	Version         uint8       `msgpack:"v"`
	Nodes           []NodeInfo  `msgpack:"nodes"`  // ascending id
	Topics          []snapTopic `msgpack:"topics"` // ascending name
	NextFirstLeader uint64      `msgpack:"next_first_leader"`
	LastApplied     uint64      `msgpack:"last_applied"`
}

type snapTopic struct {
	Name      string      `msgpack:"name"`
	RF        int         `msgpack:"rf"`
	Segments  []Segment   `msgpack:"segments"`
	Cursor    uint64      `msgpack:"cursor"`
	Groups    []snapGroup `msgpack:"groups"` // ascending name
	Retention Retention   `msgpack:"retention"`
}

type snapGroup struct {
	Name   string `msgpack:"name"`
	Offset uint64 `msgpack:"offset"`
}

// EncodeState returns the snapshot bytes of s. Because a published State
// never changes, the raft glue may take f.State() in FSMSnapshot creation
// (cheap) and call EncodeState later in Persist, off the apply goroutine.
func EncodeState(s *State) ([]byte, error) {
	ss := snapState{
		Version:         snapshotVersion,
		Nodes:           make([]NodeInfo, 0, len(s.Nodes)),
		Topics:          make([]snapTopic, 0, len(s.Topics)),
		NextFirstLeader: s.NextFirstLeader,
		LastApplied:     s.LastApplied,
	}
	for _, id := range s.NodeIDs() {
		ss.Nodes = append(ss.Nodes, *s.Nodes[id])
	}
	for _, name := range s.TopicNames() {
		t := s.Topics[name]
		st := snapTopic{
			Name:      t.Name,
			RF:        t.RF,
			Segments:  make([]Segment, 0, len(t.Segments)),
			Cursor:    t.Cursor,
			Groups:    make([]snapGroup, 0, len(t.Groups)),
			Retention: t.Retention,
		}
		for _, g := range t.Segments {
			c := *g
			c.Replicas = slices.Clone(g.Replicas)
			if c.Replicas == nil {
				c.Replicas = []NodeID{}
			}
			st.Segments = append(st.Segments, c)
		}
		for _, g := range slices.Sorted(maps.Keys(t.Groups)) {
			st.Groups = append(st.Groups, snapGroup{Name: g, Offset: t.Groups[g]})
		}
		ss.Topics = append(ss.Topics, st)
	}
	b, err := msgpack.Marshal(&ss)
	if err != nil {
		return nil, fmt.Errorf("raftfsm: encode snapshot: %w", err)
	}
	return b, nil
}

// DecodeState parses snapshot bytes into a fresh State and checks its
// invariants (CheckInvariants), so that Apply can rely on them.
func DecodeState(b []byte) (*State, error) {
	var ss snapState
	if err := decodeBody(b, &ss); err != nil {
		return nil, fmt.Errorf("raftfsm: decode snapshot: %w", err)
	}
	if ss.Version != snapshotVersion {
		return nil, fmt.Errorf("raftfsm: snapshot version %d, want %d", ss.Version, snapshotVersion)
	}
	s := NewState()
	s.NextFirstLeader = ss.NextFirstLeader
	s.LastApplied = ss.LastApplied
	for i := range ss.Nodes {
		n := ss.Nodes[i]
		if _, dup := s.Nodes[n.ID]; dup {
			return nil, fmt.Errorf("raftfsm: snapshot: node %d twice", n.ID)
		}
		s.Nodes[n.ID] = &n
	}
	for _, st := range ss.Topics {
		if _, dup := s.Topics[st.Name]; dup {
			return nil, fmt.Errorf("raftfsm: snapshot: topic %q twice", st.Name)
		}
		t := &Topic{
			Name:      st.Name,
			RF:        st.RF,
			Segments:  make([]*Segment, len(st.Segments)),
			Cursor:    st.Cursor,
			Groups:    make(map[string]uint64, len(st.Groups)),
			Retention: st.Retention,
		}
		for i := range st.Segments {
			g := st.Segments[i]
			t.Segments[i] = &g
		}
		for _, g := range st.Groups {
			if _, dup := t.Groups[g.Name]; dup || g.Name == "" {
				return nil, fmt.Errorf("raftfsm: snapshot: topic %q: bad or repeated group %q", st.Name, g.Name)
			}
			t.Groups[g.Name] = g.Offset
		}
		s.Topics[t.Name] = t
	}
	if err := s.CheckInvariants(); err != nil {
		return nil, fmt.Errorf("raftfsm: snapshot: %w", err)
	}
	return s, nil
}

// Snapshot returns the current state's snapshot bytes (EncodeState).
// Byte-equal for equal states.
func (f *FSM) Snapshot() ([]byte, error) { return EncodeState(f.State()) }

// Restore replaces the whole state with the one decoded from b, discarding
// the previous one. On error the previous state is kept.
func (f *FSM) Restore(b []byte) error {
	s, err := DecodeState(b)
	if err != nil {
		return err
	}
	f.state.Store(s)
	return nil
}

// CheckInvariants returns an error describing the first broken invariant of
// s, or nil. Every State that Apply or Restore publishes satisfies them:
//
//   - nodes: keyed by their non-zero ID;
//   - topics: keyed by their valid name, RF >= 1, retention >= 0, Groups
//     non-nil with non-empty names, at least one segment;
//   - segments: contiguous ids from >= 1, epoch >= 1, leader != 0, a
//     non-empty replica set without 0 or repeats, SealedAtMs >= 0; all but
//     the last sealed and tiling offsets (next Base = Base + Count, no
//     overflow); the last open or fenced, Count 0, its leader a replica.
func (s *State) CheckInvariants() error {
	if s.Nodes == nil || s.Topics == nil {
		return errors.New("nil map")
	}
	for id, n := range s.Nodes {
		if n == nil || n.ID != id || id == 0 {
			return fmt.Errorf("node %d: bad record", id)
		}
	}
	for name, t := range s.Topics {
		if err := t.checkInvariants(name); err != nil {
			return fmt.Errorf("topic %q: %w", name, err)
		}
	}
	return nil
}

func (t *Topic) checkInvariants(name string) error {
	switch {
	case t == nil || t.Name != name || !ValidTopicName(name):
		return errors.New("bad name")
	case t.RF < 1:
		return fmt.Errorf("rf %d", t.RF)
	case !t.Retention.valid():
		return fmt.Errorf("retention %+v", t.Retention)
	case t.Groups == nil:
		return errors.New("nil groups")
	case len(t.Segments) == 0:
		return errors.New("no segments")
	}
	if _, ok := t.Groups[""]; ok {
		return errors.New("group with empty name")
	}
	last := len(t.Segments) - 1
	for i, g := range t.Segments {
		if g == nil {
			return fmt.Errorf("segment #%d nil", i)
		}
		if err := g.checkInvariants(i == last); err != nil {
			return fmt.Errorf("segment %d: %w", g.ID, err)
		}
		if i == 0 {
			if g.ID == 0 {
				return errors.New("segment id 0")
			}
			continue
		}
		p := t.Segments[i-1]
		if g.ID != p.ID+1 || g.ID == 0 {
			return fmt.Errorf("segment %d follows %d", g.ID, p.ID)
		}
		if p.End() < p.Base || g.Base != p.End() {
			return fmt.Errorf("segment %d: base %d, previous ends at %d", g.ID, g.Base, p.End())
		}
	}
	return nil
}

func (g *Segment) checkInvariants(active bool) error {
	switch {
	case g.Epoch == 0:
		return errors.New("epoch 0")
	case !g.State.valid():
		return fmt.Errorf("state %v", g.State)
	case g.Leader == 0:
		return errors.New("leader 0")
	case len(g.Replicas) == 0:
		return errors.New("no replicas")
	case g.SealedAtMs < 0:
		return errors.New("negative seal time")
	case active && g.State == SegSealed:
		return errors.New("active segment sealed")
	case active && g.Count != 0:
		return fmt.Errorf("active segment count %d", g.Count)
	case active && !slices.Contains(g.Replicas, g.Leader):
		return fmt.Errorf("active leader %d not a replica", g.Leader)
	case !active && g.State != SegSealed:
		return fmt.Errorf("older segment %v", g.State)
	}
	if !distinctNodes(g.Replicas) {
		return fmt.Errorf("replicas %v", g.Replicas)
	}
	return nil
}
