package segment

import (
	"errors"
	"slices"
	"time"
)

// NodeID names a node (a small positive integer, as in the reference).
type NodeID = uint64

// ErrFull means the segment holds its rollover threshold: the write belongs
// to the next segment, which opens once the seal commits through Raft.
var ErrFull = errors.New("segment full")

// ErrClosed means the leader has stopped taking writes (sealing, fenced, or
// its actor is going away).
var ErrClosed = errors.New("segment leader closed")

// LeaderConfig describes a freshly opened segment this node leads.
type LeaderConfig struct {
	Self     NodeID
	Replicas []NodeID // includes Self
	// Limit is the rollover threshold (WALRUS_MAX_SEGMENT_ENTRIES): offsets
	// at or above it are never assigned.
	Limit uint64
	// AckBeforeQuorum is a planted bug for the testkit's checker: release
	// writes once the leader alone holds them. Never set in production.
	AckBeforeQuorum bool
}

// Leader is the write side of one active segment. It assigns offsets, keeps
// each replica's durable count, derives the high-water mark (the largest
// count a quorum of the replica set holds durably) and releases waiting
// requests once the mark covers them.
//
// A Leader only ever starts on an empty segment it opened in this process
// lifetime (see docs/replication.md): a restarted leader seals its segment
// through recovery instead of resuming it, so every entry of a segment was
// assigned by exactly one Leader and replicas never diverge.
type Leader struct {
	self     NodeID
	replicas []NodeID
	quorum   int
	limit    uint64
	next     uint64
	durable  map[NodeID]uint64
	sent     map[NodeID]uint64
	hwm      uint64
	waiting  []waiter
	closed   bool
	unsafe   bool
}

type waiter struct {
	id  uint64
	end uint64
}

// NewLeader returns the leader state for an empty segment.
func NewLeader(cfg LeaderConfig) *Leader {
	reps := slices.Clone(cfg.Replicas)
	if !slices.Contains(reps, cfg.Self) {
		reps = append([]NodeID{cfg.Self}, reps...)
	}
	l := &Leader{
		self:     cfg.Self,
		replicas: reps,
		quorum:   Quorum(len(reps)),
		limit:    cfg.Limit,
		durable:  make(map[NodeID]uint64, len(reps)),
		sent:     make(map[NodeID]uint64, len(reps)),
		unsafe:   cfg.AckBeforeQuorum,
	}
	for _, r := range reps {
		l.durable[r] = 0
		l.sent[r] = 0
	}
	return l
}

// Quorum is the majority of n replicas.
func Quorum(n int) int { return n/2 + 1 }

// Assign reserves offsets for up to n entries. It accepts fewer than n when
// the threshold cuts the batch (the caller sends the rest to the next
// segment) and none, with ErrFull, when the segment is already full.
func (l *Leader) Assign(n int) (first uint64, accepted int, err error) {
	if l.closed {
		return 0, 0, ErrClosed
	}
	if l.next >= l.limit {
		return 0, 0, ErrFull
	}
	room := l.limit - l.next
	if uint64(n) > room {
		n = int(room)
	}
	first = l.next
	l.next += uint64(n)
	return first, n, nil
}

// Await registers request id to be released once the high-water mark
// reaches end. Requests must be registered in increasing end order (the
// order Assign handed out their offsets).
func (l *Leader) Await(id uint64, end uint64) (releasedNow bool) {
	if end <= l.hwm {
		return true
	}
	l.waiting = append(l.waiting, waiter{id: id, end: end})
	return false
}

// Durable records that replica node holds count entries durably and returns
// the ids of requests the new high-water mark releases, in order.
func (l *Leader) Durable(node NodeID, count uint64) []uint64 {
	old, ok := l.durable[node]
	if !ok || count <= old {
		return nil
	}
	if count > l.next {
		count = l.next // a replica cannot hold what was never assigned
	}
	l.durable[node] = count
	if count > l.sent[node] {
		l.sent[node] = count
	}
	l.recompute()
	return l.release()
}

func (l *Leader) recompute() {
	if l.unsafe {
		l.hwm = max(l.hwm, l.durable[l.self])
		return
	}
	counts := make([]uint64, 0, len(l.replicas))
	for _, r := range l.replicas {
		counts = append(counts, l.durable[r])
	}
	slices.Sort(counts)
	// the quorum-th largest count is held by at least quorum replicas
	q := counts[len(counts)-l.quorum]
	if q > l.hwm {
		l.hwm = q
	}
}

func (l *Leader) release() []uint64 {
	i := 0
	for i < len(l.waiting) && l.waiting[i].end <= l.hwm {
		i++
	}
	if i == 0 {
		return nil
	}
	ids := make([]uint64, i)
	for j := range i {
		ids[j] = l.waiting[j].id
	}
	l.waiting = l.waiting[i:]
	return ids
}

// HWM is the high-water mark: entries below it are held durably by a quorum
// and may be acknowledged and read.
func (l *Leader) HWM() uint64 { return l.hwm }

// Next is the next offset Assign would hand out.
func (l *Leader) Next() uint64 { return l.next }

// Full reports whether the threshold has been reached.
func (l *Leader) Full() bool { return l.next >= l.limit }

// SealCount reports the count to seal at once every assigned entry is held by
// a quorum and the segment is full; ok is false until then.
func (l *Leader) SealCount() (count uint64, ok bool) {
	if l.next >= l.limit && l.hwm == l.next {
		return l.next, true
	}
	return 0, false
}

// Followers returns the replica set without the leader, in replica order.
func (l *Leader) Followers() []NodeID {
	out := make([]NodeID, 0, len(l.replicas)-1)
	for _, r := range l.replicas {
		if r != l.self {
			out = append(out, r)
		}
	}
	return out
}

// ToSend returns the range [from, to) follower should be sent next, capped at
// max entries; from == to means it is up to date with what was assigned.
func (l *Leader) ToSend(follower NodeID, max uint64) (from, to uint64) {
	from = l.sent[follower]
	to = l.next
	if to-from > max {
		to = from + max
	}
	return from, to
}

// Sent records that [.., to) is on its way to follower.
func (l *Leader) Sent(follower NodeID, to uint64) {
	if to > l.sent[follower] {
		l.sent[follower] = to
	}
}

// Rewind is called when a send to follower failed, or it refused a batch
// for another reason than a gap, reporting have entries: the next send
// restarts at what it holds, and no lower than what it acknowledged
// durably (a failure says nothing about those).
func (l *Leader) Rewind(follower NodeID, have uint64) {
	if _, ok := l.sent[follower]; !ok {
		return
	}
	if have > l.next {
		have = l.next
	}
	l.sent[follower] = max(have, l.durable[follower])
}

// RewindGap is called when follower answered that a batch starts beyond
// the have entries it holds (a gap: a lost message, its restart): the
// next send restarts there. If it acknowledged more than have before, it
// lost entries it had synced: its disk was restored from a backup or
// wiped and it rejoined. Its durable count comes down to have, so that
// the leader sends it everything again (sending from what it acknowledged
// would meet the same gap forever) and Lag counts what it lacks; the
// high-water mark stays, as what a quorum held was acknowledged. lost
// reports that case.
func (l *Leader) RewindGap(follower NodeID, have uint64) (lost bool) {
	if _, ok := l.sent[follower]; !ok {
		return false
	}
	if have > l.next {
		have = l.next
	}
	l.sent[follower] = have
	if have < l.durable[follower] {
		l.durable[follower] = have
		return true
	}
	return false
}

// Close stops the leader taking writes and returns the ids of every request
// still waiting, which the caller fails (they may or may not have become
// durable: the client must treat them as unknown).
func (l *Leader) Close() []uint64 {
	l.closed = true
	ids := make([]uint64, len(l.waiting))
	for i, w := range l.waiting {
		ids[i] = w.id
	}
	l.waiting = nil
	return ids
}

// Closed reports whether Close was called.
func (l *Leader) Closed() bool { return l.closed }

// Lag is how many assigned entries the slowest replica does not yet hold
// durably.
func (l *Leader) Lag() uint64 {
	low := l.next
	for _, r := range l.replicas {
		low = min(low, l.durable[r])
	}
	return l.next - low
}

// SealHere stops the segment at what has been assigned so far: no further
// offsets are handed out (writers get ErrFull and go to the next segment)
// and SealCount reports ready once the quorum holds everything assigned.
// Used to roll over early, e.g. when a replica's node is removed.
func (l *Leader) SealHere() { l.limit = min(l.limit, l.next) }

// Eager reports whether follower f is among the Quorum-1 followers that
// get every write at once: with the leader they make a quorum, and the
// rest may take writes in bigger, later batches. They are the first in
// replica order that are not slow (slow: it has left a batch unanswered
// too long), then slow ones if too few are not. Every follower is eager
// once the segment is full, so that the seal finds every replica complete.
func (l *Leader) Eager(f NodeID, slow func(NodeID) bool) bool {
	if l.next >= l.limit {
		return true
	}
	need := l.quorum - 1
	for _, pass := range []bool{false, true} {
		for _, r := range l.replicas {
			if r == l.self || slow(r) != pass {
				continue
			}
			if r == f {
				return true
			}
			if need--; need == 0 {
				return false
			}
		}
	}
	return false
}

// FollowerSlow says whether a follower counts as slow when choosing the
// eager followers (Leader.Eager): a batch to it failed and none has
// succeeded since (failed), the leader holds off sending to it until
// backoffUntil (after a failure, or after a failed read of the entries it
// lacks, which counts no failure), or its oldest unanswered batch, sent at
// oldestSent (zero: none in flight), has waited wait or longer. Any of
// these means a write waiting on it would wait that long too, so another
// follower takes its place in the quorum.
func FollowerSlow(failed bool, backoffUntil, oldestSent, now time.Time, wait time.Duration) bool {
	switch {
	case failed, now.Before(backoffUntil):
		return true
	case oldestSent.IsZero():
		return false
	}
	return now.Sub(oldestSent) >= wait
}

// HoldTrailing says whether a partial batch of pending entries for a
// follower with nothing in flight waits. Only a follower outside the write
// quorum (not eager) is held, for at most wait since its first held
// entry, and only while fewer than batch entries wait for it. Writes are
// acknowledged by the leader and the eager followers meanwhile, so an
// acknowledged write is as durable as before (on a quorum, synced); what
// it saves is the held follower's send, fdatasync and answer for each
// small round of writes: it takes them in few bigger rounds. wait <= 0
// never holds.
func HoldTrailing(eager bool, pending, batch uint64, waited, wait time.Duration) bool {
	return wait > 0 && !eager && pending < batch && waited < wait
}

// SendNow says whether the leader sends a follower its next batch now.
// inflight is how many batches to it are unanswered, max the pipeline's
// depth, full whether the batch is as large as one may be (capped by count
// or bytes). With nothing in flight a batch goes at once; behind one in
// flight only a full batch does, and a partial one waits for the answer
// (which pumps again). The follower could only take it after its current
// fdatasync anyway, and waiting gathers every write that arrives meanwhile
// into one batch: one send, one fdatasync and one answer instead of one of
// each per write (measured in BENCHMARKS.md, "Replication batches wait
// for the answer"). Full batches still pipeline, so bulk throughput and a
// lagging follower's catch-up keep their depth.
func SendNow(inflight, max int, full bool) bool {
	return inflight == 0 || (full && inflight < max)
}
