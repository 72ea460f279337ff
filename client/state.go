package client

import "encoding/json"

// State is a topic's STATE reply (COMPAT.md "STATE JSON"). Segment ids and
// node ids are the JSON object keys and values, as integers.
type State struct {
	// CurrentSegment is the active segment's id.
	CurrentSegment uint64 `json:"current_segment"`
	// LeaderNode leads CurrentSegment.
	LeaderNode uint64 `json:"leader_node"`
	// LastSealedEntryOffset is the number of entries in all sealed
	// segments: the offset of the active segment's first entry.
	LastSealedEntryOffset uint64 `json:"last_sealed_entry_offset"`
	// SealedSegments maps each sealed segment to its final entry count.
	SealedSegments map[uint64]uint64 `json:"sealed_segments"`
	// SegmentLeaders maps every segment, sealed and active, to its leader.
	SegmentLeaders map[uint64]uint64 `json:"segment_leaders"`

	// Our server's additions; zero when talking to a reference server.

	// Replicas maps every segment to the nodes holding a copy.
	Replicas map[uint64][]uint64 `json:"replicas"`
	// Epoch is the active segment's epoch (it grows at each failover).
	Epoch uint64 `json:"epoch"`
	// SegmentState is the active segment's state: "open" or "fenced".
	SegmentState string `json:"segment_state"`
	// RF is the topic's replication factor as requested.
	RF int `json:"rf"`
	// Cursor is the next offset GET hands out.
	Cursor uint64 `json:"cursor"`
	// FirstOffset is the lowest offset still retained.
	FirstOffset uint64 `json:"first_offset"`
	// HighWaterMark is the offset below which entries are held by a quorum
	// and readable; nil when the node could not ask the segment's leader,
	// or it had not opened the segment yet.
	HighWaterMark *uint64 `json:"high_water_mark"`
	// Groups are the consumer groups' committed positions.
	Groups map[string]uint64 `json:"groups"`
	// Retention is the topic's policy as RETENTION set it (0: no limit).
	Retention Retention `json:"retention"`

	// Raw is the whole reply, as received (more keys may appear).
	Raw json.RawMessage `json:"-"`
}

// Retention is a topic's retention policy in STATE: RETENTION's options,
// 0 for no limit.
type Retention struct {
	MaxAgeMs    int64 `json:"max_age_ms"`
	MaxBytes    int64 `json:"max_bytes"`
	MaxSegments int   `json:"max_segments"`
}
