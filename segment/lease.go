package segment

import "time"

// Lease decides whether this node may act as a segment leader now. A node
// holds the lease while (a) it heard from the Raft leader within the window,
// measured from when it *sent* the ping the leader answered, and (b) its own
// metadata has applied at least what the Raft leader had applied when it
// answered, so a node that slept through a fence cannot renew on stale
// metadata. The Raft leader fences a node's segments only after hearing
// nothing from it for longer than the window (Detector), so by then the
// node's lease has run out on any clock that runs at a sane rate.
type Lease struct {
	window  time.Duration
	until   time.Time
	pending []pendingGrant
}

type pendingGrant struct {
	until time.Time
	index uint64
}

// NewLease returns a lease that has not been granted yet.
func NewLease(window time.Duration) *Lease { return &Lease{window: window} }

// Window is the lease length.
func (l *Lease) Window() time.Duration { return l.window }

// Answered records a ping sent at sentAt that the Raft leader answered while
// it had applied leaderApplied; localApplied is this node's applied index now.
func (l *Lease) Answered(sentAt time.Time, leaderApplied, localApplied uint64) {
	g := pendingGrant{until: sentAt.Add(l.window), index: leaderApplied}
	if localApplied >= g.index {
		l.extend(g.until)
		return
	}
	l.pending = append(l.pending, g)
}

// Applied records that local metadata reached index, granting any pending
// renewal that waited for it.
func (l *Lease) Applied(index uint64) {
	kept := l.pending[:0]
	for _, g := range l.pending {
		if index >= g.index {
			l.extend(g.until)
		} else {
			kept = append(kept, g)
		}
	}
	l.pending = kept
}

func (l *Lease) extend(until time.Time) {
	if until.After(l.until) {
		l.until = until
	}
}

// Revoke drops the lease at once (the node learned it lost leadership, or is
// shutting down).
func (l *Lease) Revoke() { l.until = time.Time{}; l.pending = nil }

// Valid reports whether the lease holds at now.
func (l *Lease) Valid(now time.Time) bool { return now.Before(l.until) }

// Until is when the lease runs out.
func (l *Lease) Until() time.Time { return l.until }
