package actors

import (
	"testing"
	"time"
)

// A GET queued while its segment was between leaders waits for the segment
// (segWait), but that wait is not a long poll: once the leader serves, a
// plain GET on an empty segment is answered EMPTY at once. (Found by
// TestClusterConcurrentStopKeepsCursor: a plain GET after a full restart
// was parked at the new segment's leader for the rest of fencedWait.)
func TestCursorSegmentWaitIsNotALongPoll(t *testing.T) {
	now := time.Unix(1000, 0)
	plain := getMsg{segWait: now.Add(fencedWait)}
	if w := longPollMs(plain, now); w != 0 {
		t.Fatalf("a plain GET waiting for its segment asks the leader to park the read %d ms; want 0", w)
	}
	if u := holdUntil(plain, false); !u.IsZero() {
		t.Fatalf("a plain GET whose segment serves again is held until %v; want answered now", u)
	}
	if u := holdUntil(plain, true); !u.Equal(now.Add(fencedWait)) {
		t.Fatalf("a plain GET whose segment is between leaders is held until %v; want %v", u, now.Add(fencedWait))
	}

	poll := getMsg{deadline: now.Add(30 * time.Second), segWait: now.Add(fencedWait)}
	if w := longPollMs(poll, now); w != 30_000 {
		t.Fatalf("GET WAIT 30s parks the read %d ms; want 30000", w)
	}
	for _, between := range []bool{false, true} {
		if u := holdUntil(poll, between); !u.Equal(poll.deadline) {
			t.Fatalf("GET WAIT 30s (segment between leaders: %v) held until %v; want its own deadline", between, u)
		}
	}
	if w := longPollMs(poll, poll.deadline.Add(time.Second)); w != 0 {
		t.Fatalf("an expired long poll parks the read %d ms; want 0", w)
	}
}
