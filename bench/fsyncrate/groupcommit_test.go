package main

import (
	"testing"
	"time"
)

// TestGroupCommitAcknowledgesEveryMessage: every scheduled message is
// acknowledged once, no latency is negative, the writers in the quorum
// take rounds as messages arrive, and the trailing writer only once its
// oldest missing message is trailing old.
func TestGroupCommitAcknowledgesEveryMessage(t *testing.T) {
	c := groupCommitConfig{dir: t.TempDir(), writers: 3, ack: 2, rate: 2000, entry: 148,
		trailing: 50 * time.Millisecond, dur: 500 * time.Millisecond, slowOver: 3 * time.Millisecond}
	r := groupCommit(c)
	if r.total != 1000 || len(r.lat) != r.total {
		t.Fatalf("acknowledged %d of %d messages, want all 1000", len(r.lat), r.total)
	}
	if r.lat[0] < 0 {
		t.Fatalf("a latency is negative: %v", r.lat[0])
	}
	if len(r.syncs) != r.rounds[0]+r.rounds[1]+r.rounds[2] {
		t.Fatalf("%d syncs for rounds %v", len(r.syncs), r.rounds)
	}
	// 0.5 s at one round per 50 ms, and one for the tail
	if r.rounds[2] > 12 || r.rounds[2] < 1 {
		t.Fatalf("trailing writer took %d rounds, want 1-12 (one per 50 ms)", r.rounds[2])
	}
	if r.rounds[0] <= r.rounds[2] {
		t.Fatalf("quorum writer took %d rounds, the trailing one %d: the quorum should sync as messages come", r.rounds[0], r.rounds[2])
	}
}

// TestGroupCommitMinRound: with minRound each writer starts a round at
// most once per minRound, and every message is still acknowledged.
func TestGroupCommitMinRound(t *testing.T) {
	c := groupCommitConfig{dir: t.TempDir(), writers: 2, ack: 2, rate: 2000, entry: 148,
		minRound: 20 * time.Millisecond, dur: 400 * time.Millisecond, slowOver: 3 * time.Millisecond}
	r := groupCommit(c)
	if len(r.lat) != r.total {
		t.Fatalf("acknowledged %d of %d messages", len(r.lat), r.total)
	}
	for w, n := range r.rounds {
		if n > 22 { // 0.4 s / 20 ms, the first round and the tail's
			t.Fatalf("writer %d took %d rounds in 0.4 s at most one per 20 ms", w, n)
		}
	}
	// a message waits for the next round: up to minRound, not its own sync alone
	if r.lat[len(r.lat)/2] < time.Millisecond {
		t.Fatalf("median latency %v with rounds 20 ms apart", r.lat[len(r.lat)/2])
	}
}

// TestGroupCommitAnyAck: with anyAck every writer takes rounds as messages
// come (none trails), and every message is acknowledged.
func TestGroupCommitAnyAck(t *testing.T) {
	c := groupCommitConfig{dir: t.TempDir(), writers: 3, ack: 2, anyAck: true, rate: 2000, entry: 148,
		trailing: 50 * time.Millisecond, dur: 400 * time.Millisecond, slowOver: 3 * time.Millisecond}
	r := groupCommit(c)
	if len(r.lat) != r.total {
		t.Fatalf("acknowledged %d of %d messages", len(r.lat), r.total)
	}
	if r.rounds[2] <= 12 {
		t.Fatalf("third writer took %d rounds in 0.4 s: it trailed (one per 50 ms) instead of syncing as messages came", r.rounds[2])
	}
}

// TestQuorumEnd: a message is done on the first ack writers, or with
// anyAck on whichever ack writers synced it.
func TestQuorumEnd(t *testing.T) {
	for _, c := range []struct {
		durable []int
		ack     int
		anyAck  bool
		want    int
	}{
		{[]int{5, 9, 20}, 2, false, 5},   // the leader (5) holds it back
		{[]int{5, 9, 20}, 2, true, 9},    // any two: 9 and 20
		{[]int{20, 9, 5}, 2, true, 9},    // in any order
		{[]int{7, 3, 1}, 1, false, 7},    // the first alone
		{[]int{4, 4, 4}, 3, true, 4},     // all three
		{[]int{10, 12, 0}, 2, false, 10}, // the trailing third does not count
	} {
		if got := quorumEnd(c.durable, c.ack, c.anyAck); got != c.want {
			t.Errorf("quorumEnd(%v, %d, %v) = %d, want %d", c.durable, c.ack, c.anyAck, got, c.want)
		}
	}
}
