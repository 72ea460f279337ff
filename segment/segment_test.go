package segment

import (
	"errors"
	"math/rand"
	"slices"
	"testing"
	"time"
)

func TestLeaderReleasesOnlyAtQuorum(t *testing.T) {
	l := NewLeader(LeaderConfig{Self: 1, Replicas: []NodeID{1, 2, 3}, Limit: 100})
	first, n, err := l.Assign(5)
	if err != nil || first != 0 || n != 5 {
		t.Fatalf("assign: %d %d %v", first, n, err)
	}
	if l.Await(7, 5) {
		t.Fatal("released before anything durable")
	}
	if got := l.Durable(1, 5); got != nil {
		t.Fatalf("leader alone released %v (quorum is 2 of 3)", got)
	}
	if got := l.Durable(3, 5); !slices.Equal(got, []uint64{7}) {
		t.Fatalf("quorum reached, released %v", got)
	}
	if l.HWM() != 5 || l.Lag() != 5 {
		t.Fatalf("hwm %d lag %d (node 2 holds nothing)", l.HWM(), l.Lag())
	}
	l.Durable(2, 5)
	if l.Lag() != 0 {
		t.Fatalf("lag %d once every replica holds everything", l.Lag())
	}
}

func TestLeaderFollowersCanFormQuorumWithoutLeader(t *testing.T) {
	l := NewLeader(LeaderConfig{Self: 1, Replicas: []NodeID{1, 2, 3}, Limit: 100})
	l.Assign(3)
	l.Await(1, 3)
	l.Durable(2, 3)
	if got := l.Durable(3, 3); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("two followers are a quorum: got %v", got)
	}
}

func TestLeaderRF1AndRF5(t *testing.T) {
	l := NewLeader(LeaderConfig{Self: 4, Replicas: []NodeID{4}, Limit: 10})
	l.Assign(2)
	l.Await(9, 2)
	if got := l.Durable(4, 2); !slices.Equal(got, []uint64{9}) {
		t.Fatalf("rf1: %v", got)
	}
	l5 := NewLeader(LeaderConfig{Self: 1, Replicas: []NodeID{1, 2, 3, 4, 5}, Limit: 10})
	l5.Assign(1)
	l5.Await(1, 1)
	l5.Durable(1, 1)
	l5.Durable(2, 1)
	if l5.HWM() != 0 {
		t.Fatal("2 of 5 is no quorum")
	}
	if got := l5.Durable(5, 1); !slices.Equal(got, []uint64{1}) {
		t.Fatalf("3 of 5: %v", got)
	}
}

func TestLeaderReleasesInOrderAndIgnoresStaleAcks(t *testing.T) {
	l := NewLeader(LeaderConfig{Self: 1, Replicas: []NodeID{1, 2, 3}, Limit: 100})
	for i := uint64(1); i <= 4; i++ {
		l.Assign(1)
		l.Await(i, i)
	}
	l.Durable(1, 4)
	if got := l.Durable(2, 2); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("got %v", got)
	}
	if got := l.Durable(2, 1); got != nil {
		t.Fatalf("stale ack released %v", got)
	}
	if got := l.Durable(9, 4); got != nil {
		t.Fatalf("ack from a non-replica released %v", got)
	}
	if got := l.Durable(2, 50); !slices.Equal(got, []uint64{3, 4}) {
		t.Fatalf("got %v", got)
	}
	if l.HWM() != 4 {
		t.Fatalf("an ack beyond what was assigned must be capped: hwm %d", l.HWM())
	}
}

func TestLeaderThresholdCutsBatchesAndSeals(t *testing.T) {
	l := NewLeader(LeaderConfig{Self: 1, Replicas: []NodeID{1, 2}, Limit: 10})
	if _, n, _ := l.Assign(7); n != 7 {
		t.Fatal(n)
	}
	first, n, err := l.Assign(7)
	if err != nil || first != 7 || n != 3 {
		t.Fatalf("cut batch: %d %d %v", first, n, err)
	}
	if _, _, err := l.Assign(1); !errors.Is(err, ErrFull) {
		t.Fatalf("want ErrFull, got %v", err)
	}
	if _, ok := l.SealCount(); ok {
		t.Fatal("sealable before quorum holds everything")
	}
	l.Durable(1, 10)
	l.Durable(2, 10)
	if c, ok := l.SealCount(); !ok || c != 10 {
		t.Fatalf("seal count %d %v", c, ok)
	}
}

func TestLeaderSendRewind(t *testing.T) {
	l := NewLeader(LeaderConfig{Self: 1, Replicas: []NodeID{1, 2, 3}, Limit: 100})
	l.Assign(10)
	if f, to := l.ToSend(2, 4); f != 0 || to != 4 {
		t.Fatalf("%d %d", f, to)
	}
	l.Sent(2, 4)
	if f, to := l.ToSend(2, 100); f != 4 || to != 10 {
		t.Fatalf("%d %d", f, to)
	}
	l.Sent(2, 10)
	l.Durable(2, 2)
	l.Rewind(2, 1) // a follower cannot lose durable entries: rewind no lower than them
	if f, _ := l.ToSend(2, 100); f != 2 {
		t.Fatalf("rewind to %d", f)
	}
	if got := l.Followers(); !slices.Equal(got, []NodeID{2, 3}) {
		t.Fatal(got)
	}
}

// A follower that answers a gap below what it acknowledged lost entries it
// had synced (its disk restored from a backup, or wiped): the leader sends
// it everything from what it holds, counts what it lacks in Lag, and keeps
// the high-water mark. Sending from what it acknowledged would meet the
// same gap forever.
func TestLeaderRewindGapBelowDurable(t *testing.T) {
	l := NewLeader(LeaderConfig{Self: 1, Replicas: []NodeID{1, 2, 3}, Limit: 100})
	l.Assign(10)
	l.Durable(1, 10)
	l.Durable(2, 10)
	l.Sent(2, 10)
	if l.HWM() != 10 || l.Lag() != 10 { // node 3 holds nothing yet
		t.Fatalf("hwm %d lag %d", l.HWM(), l.Lag())
	}
	l.Durable(3, 10)
	if lost := l.RewindGap(2, 3); !lost {
		t.Fatal("a gap at 3 after 10 acknowledged is not reported as lost entries")
	}
	if f, to := l.ToSend(2, 100); f != 3 || to != 10 {
		t.Fatalf("next send to the follower that lost entries: [%d, %d), want [3, 10)", f, to)
	}
	if l.HWM() != 10 || l.Lag() != 7 {
		t.Fatalf("after the loss: hwm %d (want 10, kept) lag %d (want 7)", l.HWM(), l.Lag())
	}
	l.Durable(2, 10)
	if l.Lag() != 0 {
		t.Fatalf("lag %d once it holds everything again", l.Lag())
	}
	// a gap at or above what it acknowledged is an ordinary one
	l.Assign(5)
	l.Sent(2, 15)
	if lost := l.RewindGap(2, 12); lost {
		t.Fatal("a gap above what it acknowledged reported as lost entries")
	}
	if f, _ := l.ToSend(2, 100); f != 12 {
		t.Fatalf("rewind to %d, want 12", f)
	}
}

func TestSendNowHoldsPartialBatchesBehindOneInFlight(t *testing.T) {
	for _, c := range []struct {
		inflight int
		full     bool
		want     bool
	}{
		{0, false, true}, // idle follower: the first write goes at once
		{0, true, true},
		{1, false, false}, // a partial batch waits for the answer
		{1, true, true},   // a full one pipelines
		{7, true, true},
		{8, true, false}, // up to the pipeline's depth
		{8, false, false},
	} {
		if got := SendNow(c.inflight, 8, c.full); got != c.want {
			t.Errorf("SendNow(%d, 8, %v) = %v, want %v", c.inflight, c.full, got, c.want)
		}
	}
}

func TestEagerFollowersMakeTheWriteQuorum(t *testing.T) {
	none := func(NodeID) bool { return false }
	slowSet := func(ids ...NodeID) func(NodeID) bool {
		return func(r NodeID) bool { return slices.Contains(ids, r) }
	}
	eager := func(l *Leader, slow func(NodeID) bool) []NodeID {
		var out []NodeID
		for _, f := range l.Followers() {
			if l.Eager(f, slow) {
				out = append(out, f)
			}
		}
		return out
	}
	l3 := NewLeader(LeaderConfig{Self: 2, Replicas: []NodeID{2, 3, 1}, Limit: 10})
	for _, c := range []struct {
		slow func(NodeID) bool
		want []NodeID
	}{
		{none, []NodeID{3}},             // the first follower in replica order
		{slowSet(3), []NodeID{1}},       // one that leaves a batch unanswered gives way
		{slowSet(1), []NodeID{3}},       // a slow trailing one changes nothing
		{slowSet(3, 1), []NodeID{3}},    // all slow: replica order again
		{slowSet(2), []NodeID{3}},       // the leader is no follower
		{slowSet(2, 3), []NodeID{1}},    // ...
		{slowSet(1, 2, 3), []NodeID{3}}, // ...
	} {
		if got := eager(l3, c.slow); !slices.Equal(got, c.want) {
			t.Errorf("rf3: eager %v, want %v", got, c.want)
		}
	}
	l5 := NewLeader(LeaderConfig{Self: 1, Replicas: []NodeID{1, 2, 3, 4, 5}, Limit: 10})
	if got := eager(l5, slowSet(2)); !slices.Equal(got, []NodeID{3, 4}) {
		t.Errorf("rf5: eager %v, want two (quorum 3 with the leader): [3 4]", got)
	}
	l2 := NewLeader(LeaderConfig{Self: 1, Replicas: []NodeID{1, 2}, Limit: 10})
	if got := eager(l2, slowSet(2)); !slices.Equal(got, []NodeID{2}) {
		t.Errorf("rf2: eager %v, want the one follower, slow or not", got)
	}
	// a full segment seals once a quorum holds it: every follower gets
	// the rest at once, so that none is left to copy it after the seal
	l3.Assign(10)
	if got := eager(l3, none); !slices.Equal(got, []NodeID{3, 1}) {
		t.Errorf("full segment: eager %v, want every follower", got)
	}
}

func TestHoldTrailing(t *testing.T) {
	const wait = 5 * time.Millisecond
	for _, c := range []struct {
		eager   bool
		pending uint64
		waited  time.Duration
		wait    time.Duration
		want    bool
	}{
		{false, 1, 0, wait, true},               // a trailing follower's small round waits
		{false, 255, wait - 1, wait, true},      // ... until the wait runs out
		{false, 255, wait, wait, false},         // ...
		{false, 256, 0, wait, false},            // ... or a batch's worth is there
		{true, 1, 0, wait, false},               // eager followers get every round at once
		{false, 1, 0, 0, false},                 // holding switched off
		{false, 1, 0, -time.Millisecond, false}, // ...
	} {
		if got := HoldTrailing(c.eager, c.pending, 256, c.waited, c.wait); got != c.want {
			t.Errorf("HoldTrailing(eager %v, pending %d, waited %v, wait %v) = %v, want %v",
				c.eager, c.pending, c.waited, c.wait, got, c.want)
		}
	}
}

func TestFollowerSlow(t *testing.T) {
	const wait = 5 * time.Millisecond
	now := time.Unix(1000, 0)
	var none time.Time
	for _, c := range []struct {
		name         string
		failed       bool
		backoffUntil time.Time
		oldestSent   time.Time
		want         bool
	}{
		{"idle", false, none, none, false},
		{"answered so far within the wait", false, none, now.Add(-wait + 1), false},
		{"a batch unanswered for the wait", false, none, now.Add(-wait), true},
		{"its last batch failed, nothing in flight", true, none, none, true},
		{"backing off, nothing in flight, no failure counted (a failed read)", false, now.Add(time.Millisecond), none, true},
		{"back-off over", false, now, none, false},
		{"back-off over long ago, a fresh batch in flight", false, now.Add(-time.Second), now, false},
	} {
		if got := FollowerSlow(c.failed, c.backoffUntil, c.oldestSent, now, wait); got != c.want {
			t.Errorf("%s: FollowerSlow = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestLeaderCloseFailsWaiters(t *testing.T) {
	l := NewLeader(LeaderConfig{Self: 1, Replicas: []NodeID{1, 2, 3}, Limit: 100})
	l.Assign(2)
	l.Await(1, 1)
	l.Await(2, 2)
	if got := l.Close(); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatal(got)
	}
	if _, _, err := l.Assign(1); !errors.Is(err, ErrClosed) {
		t.Fatal(err)
	}
}

func TestPlantedBugAcksBeforeQuorum(t *testing.T) {
	l := NewLeader(LeaderConfig{Self: 1, Replicas: []NodeID{1, 2, 3}, Limit: 100, AckBeforeQuorum: true})
	l.Assign(1)
	l.Await(1, 1)
	if got := l.Durable(1, 1); !slices.Equal(got, []uint64{1}) {
		t.Fatal("the planted bug must release on the leader's copy alone")
	}
}

// Property: whatever order acks arrive in, a request is released only when a
// quorum of replicas reported durable counts covering it, and every request
// is released once all replicas hold everything.
func TestLeaderQuorumProperty(t *testing.T) {
	for seed := int64(1); seed <= 200; seed++ {
		rng := rand.New(rand.NewSource(seed))
		rf := 1 + rng.Intn(5)
		reps := make([]NodeID, rf)
		for i := range reps {
			reps[i] = NodeID(i + 1)
		}
		l := NewLeader(LeaderConfig{Self: 1, Replicas: reps, Limit: 1 << 20})
		held := map[NodeID]uint64{}
		ends := map[uint64]uint64{}
		released := map[uint64]bool{}
		var id uint64
		for step := 0; step < 300; step++ {
			if rng.Intn(3) == 0 {
				_, n, _ := l.Assign(1 + rng.Intn(4))
				id++
				ends[id] = l.Next()
				_ = n
				if l.Await(id, l.Next()) {
					released[id] = true
				}
				continue
			}
			r := reps[rng.Intn(rf)]
			c := held[r] + uint64(rng.Intn(3))
			if c > l.Next() {
				c = l.Next()
			}
			held[r] = max(held[r], c)
			for _, x := range l.Durable(r, c) {
				// count replicas covering ends[x]
				cover := 0
				for _, h := range held {
					if h >= ends[x] {
						cover++
					}
				}
				if cover < Quorum(rf) {
					t.Fatalf("seed %d: released %d (end %d) with only %d of %d", seed, x, ends[x], cover, rf)
				}
				released[x] = true
			}
		}
		for _, r := range reps {
			for _, x := range l.Durable(r, l.Next()) {
				released[x] = true
			}
		}
		if len(released) != len(ends) {
			t.Fatalf("seed %d: %d of %d released after full replication", seed, len(released), len(ends))
		}
	}
}

func TestCheckAppend(t *testing.T) {
	cases := []struct {
		name                      string
		fenced, epoch, end, first uint64
		n                         int
		skip                      int
		dup                       bool
		stale, gap                bool
	}{
		{name: "in order", fenced: 1, epoch: 1, end: 5, first: 5, n: 3},
		{name: "overlap", fenced: 1, epoch: 1, end: 6, first: 5, n: 3, skip: 1},
		{name: "duplicate", fenced: 1, epoch: 1, end: 9, first: 5, n: 3, dup: true},
		{name: "gap", fenced: 1, epoch: 1, end: 4, first: 5, n: 3, gap: true},
		{name: "stale epoch", fenced: 2, epoch: 1, end: 5, first: 5, n: 3, stale: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := CheckAppend(c.fenced, c.epoch, c.end, c.first, c.n)
			var se *ErrStaleEpoch
			var ge *ErrGap
			switch {
			case c.stale:
				if !errors.As(err, &se) {
					t.Fatalf("want stale, got %v", err)
				}
			case c.gap:
				if !errors.As(err, &ge) || ge.Have != c.end {
					t.Fatalf("want gap, got %v", err)
				}
			default:
				if err != nil || got.Skip != c.skip || got.Duplicate != c.dup {
					t.Fatalf("got %+v %v", got, err)
				}
			}
		})
	}
}

func TestLeaseNeedsFreshMetadata(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := NewLease(time.Second)
	if l.Valid(t0) {
		t.Fatal("new lease must not be valid")
	}
	l.Answered(t0, 10, 10)
	if !l.Valid(t0.Add(999*time.Millisecond)) || l.Valid(t0.Add(time.Second)) {
		t.Fatal("lease must run exactly the window from the ping's send time")
	}
	l.Answered(t0.Add(500*time.Millisecond), 20, 15) // behind the leader: pending
	if l.Valid(t0.Add(1200 * time.Millisecond)) {
		t.Fatal("renewal must wait until local metadata catches up")
	}
	l.Applied(20)
	if !l.Valid(t0.Add(1200 * time.Millisecond)) {
		t.Fatal("renewal granted once caught up")
	}
	l.Revoke()
	if l.Valid(t0.Add(1200 * time.Millisecond)) {
		t.Fatal("revoked")
	}
}

func TestDetector(t *testing.T) {
	t0 := time.Unix(0, 0)
	d := NewDetector(2*time.Second, t0)
	nodes := []NodeID{3, 1, 2}
	if got := d.Dead(nodes, t0.Add(2*time.Second)); got != nil {
		t.Fatalf("a new leader gives everyone a full timeout: %v", got)
	}
	d.Seen(1, t0.Add(1*time.Second))
	d.Seen(2, t0.Add(3*time.Second))
	if got := d.Dead(nodes, t0.Add(3500*time.Millisecond)); !slices.Equal(got, []NodeID{1, 3}) {
		t.Fatalf("dead: %v", got)
	}
	if !d.Alive(2, t0.Add(5*time.Second)) || d.Alive(2, t0.Add(5001*time.Millisecond)) {
		t.Fatal("alive boundary")
	}
}

func TestRecoveryEnd(t *testing.T) {
	if RecoveryQuorum(3) != 2 || RecoveryQuorum(1) != 1 || RecoveryQuorum(2) != 1 || RecoveryQuorum(5) != 3 {
		t.Fatal("recovery quorum")
	}
	if _, _, ok := RecoveryEnd(3, map[NodeID]uint64{2: 5}); ok {
		t.Fatal("one answer of three is not enough")
	}
	end, src, ok := RecoveryEnd(3, map[NodeID]uint64{3: 7, 2: 9, 4: 9})
	if !ok || end != 9 || src != 2 {
		t.Fatalf("%d %d %v", end, src, ok)
	}
}

// Property: for any acknowledged prefix held by a write quorum, any recovery
// quorum's RecoveryEnd covers it.
func TestRecoveryCoversAcknowledged(t *testing.T) {
	rng := rand.New(rand.NewSource(7))
	for i := 0; i < 2000; i++ {
		rf := 1 + rng.Intn(5)
		acked := uint64(rng.Intn(50))
		held := make([]uint64, rf)
		// a write quorum holds at least acked
		perm := rng.Perm(rf)
		for j, p := range perm {
			if j < Quorum(rf) {
				held[p] = acked + uint64(rng.Intn(5))
			} else {
				held[p] = uint64(rng.Intn(60))
			}
		}
		ans := map[NodeID]uint64{}
		for _, p := range rng.Perm(rf)[:RecoveryQuorum(rf)] {
			ans[NodeID(p+1)] = held[p]
		}
		end, _, ok := RecoveryEnd(rf, ans)
		if !ok || end < acked {
			t.Fatalf("rf %d held %v answers %v: end %d < acked %d", rf, held, ans, end, acked)
		}
	}
}

func TestLeaderSealHere(t *testing.T) {
	l := NewLeader(LeaderConfig{Self: 1, Replicas: []NodeID{1, 2, 3}, Limit: 100})
	l.Assign(4)
	l.SealHere()
	if _, _, err := l.Assign(1); !errors.Is(err, ErrFull) {
		t.Fatalf("after SealHere: %v", err)
	}
	if _, ok := l.SealCount(); ok {
		t.Fatal("sealable before the quorum holds what was assigned")
	}
	l.Durable(1, 4)
	l.Durable(3, 4)
	if c, ok := l.SealCount(); !ok || c != 4 {
		t.Fatalf("seal count %d %v", c, ok)
	}
}
