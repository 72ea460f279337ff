package segment

import (
	"slices"
	"time"
)

// Detector is the Raft leader's view of which nodes are alive, fed by the
// pings every node sends it. A node is suspected once nothing was heard from
// it for Timeout. A Raft leader that has just been elected knows nothing of
// anyone's pings, so it gives every node a full Timeout from its election.
type Detector struct {
	timeout time.Duration
	seen    map[NodeID]time.Time
	since   time.Time
}

// NewDetector starts a detector at now (the moment this node became the
// Raft leader).
func NewDetector(timeout time.Duration, now time.Time) *Detector {
	return &Detector{timeout: timeout, seen: map[NodeID]time.Time{}, since: now}
}

// Seen records a ping from node received at now.
func (d *Detector) Seen(node NodeID, now time.Time) {
	if now.After(d.seen[node]) {
		d.seen[node] = now
	}
}

// LastSeen is when node was last heard from (or when the detector started).
func (d *Detector) LastSeen(node NodeID) time.Time {
	if t, ok := d.seen[node]; ok && t.After(d.since) {
		return t
	}
	return d.since
}

// Dead returns, in ascending order, those of nodes heard from last more than
// Timeout before now.
func (d *Detector) Dead(nodes []NodeID, now time.Time) []NodeID {
	var out []NodeID
	for _, n := range nodes {
		if now.Sub(d.LastSeen(n)) > d.timeout {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// Alive reports whether node was heard from within Timeout of now.
func (d *Detector) Alive(node NodeID, now time.Time) bool {
	return now.Sub(d.LastSeen(node)) <= d.timeout
}
