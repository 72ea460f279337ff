// Package segment holds the decisions a segment's replicas make, as plain
// structs stepped by the actors (etcd-raft style: facts in, decisions out):
//
//   - Leader: offset assignment, the rollover threshold, per-follower
//     progress, the quorum high-water mark and which client requests it
//     releases.
//   - Follower: epoch fencing and gap/overlap checks for replicated appends.
//   - Lease: whether this node may act as a segment leader right now.
//   - Detector: which nodes the Raft leader considers dead.
//   - RecoveryEnd: the end offset a fenced segment is sealed at.
//
// Nothing here does I/O, reads a clock, draws randomness or starts a
// goroutine: time arrives as a time.Time argument. The lint test in this
// package enforces that.
package segment
