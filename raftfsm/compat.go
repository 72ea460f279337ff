package raftfsm

import "strconv"

// CompatStateJSON is the reply to the client protocol's `STATE <topic>`
// (COMPAT.md). The first five fields are the keys the reference's clients
// read, in the reference's order; the rest are our additions. Map keys are
// segment ids in decimal; encoding/json sorts them, so json.Marshal output is
// deterministic.
type CompatStateJSON struct {
	// CurrentSegment is the active segment's id.
	CurrentSegment uint64 `json:"current_segment"`
	// LeaderNode leads CurrentSegment.
	LeaderNode NodeID `json:"leader_node"`
	// LastSealedEntryOffset is the number of entries in all sealed segments,
	// deleted ones included (Topic.SealedTotal): the active segment's Base.
	LastSealedEntryOffset uint64 `json:"last_sealed_entry_offset"`
	// SealedSegments maps each retained sealed segment to its final count.
	SealedSegments map[string]uint64 `json:"sealed_segments"`
	// SegmentLeaders maps every retained segment (sealed and active) to its
	// leader.
	SegmentLeaders map[string]NodeID `json:"segment_leaders"`

	// Additions (COMPAT allows more keys).

	// Replicas maps every retained segment to its replica set.
	Replicas map[string][]NodeID `json:"replicas"`
	// Epoch is the active segment's epoch.
	Epoch uint64 `json:"epoch"`
	// SegmentState is the active segment's state: "open" or "fenced".
	SegmentState string `json:"segment_state"`
	// RF is the topic's replication factor as requested.
	RF int `json:"rf"`
	// Cursor is the shared cursor: the next offset GET hands out.
	Cursor uint64 `json:"cursor"`
	// FirstOffset is the lowest retained offset (Topic.FirstOffset).
	FirstOffset uint64 `json:"first_offset"`
}

// CompatState derives the STATE reply for t. All maps are non-nil, so they
// encode as {} rather than null.
func CompatState(t *Topic) CompatStateJSON {
	c := CompatStateJSON{
		SealedSegments: map[string]uint64{},
		SegmentLeaders: map[string]NodeID{},
		Replicas:       map[string][]NodeID{},
		RF:             t.RF,
		Cursor:         t.Cursor,
		FirstOffset:    t.FirstOffset(),
	}
	for _, g := range t.Segments {
		id := strconv.FormatUint(g.ID, 10)
		c.SegmentLeaders[id] = g.Leader
		reps := make([]NodeID, len(g.Replicas))
		copy(reps, g.Replicas)
		c.Replicas[id] = reps
		if g.Sealed() {
			c.SealedSegments[id] = g.Count
		}
	}
	if a := t.Active(); a != nil {
		c.CurrentSegment = a.ID
		c.LeaderNode = a.Leader
		c.LastSealedEntryOffset = a.Base
		c.Epoch = a.Epoch
		c.SegmentState = a.State.String()
	}
	return c
}
