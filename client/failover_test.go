package client

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/walrus-go/walrus/actors"
)

// TestClusterPutBatchThroughFailover writes 20 batches while the node
// leading the topic's active segment is stopped mid-way (after batch 4 is
// acknowledged, concurrently with the next ones). Small segments make
// batches cross segment boundaries, so replies carry several ranges.
//
// Every batch the client reports OK must be readable afterwards at the
// offsets it was given. By default the client does not retry writes whose
// outcome is unknown, so batches in flight at the stop may fail; after a
// failure the writer waits for the cluster to report a new, live segment
// leader before going on, and the last batch must succeed. With
// RetryUnknownWrites(true) the client retries through the failover and
// every batch must succeed, except for final server errors.
func TestClusterPutBatchThroughFailover(t *testing.T) {
	t.Run("safe", func(t *testing.T) { testPutBatchThroughFailover(t, false) })
	t.Run("retry-unknown-writes", func(t *testing.T) { testPutBatchThroughFailover(t, true) })
}

func testPutBatchThroughFailover(t *testing.T, retryUnknown bool) {
	cl := startCluster(t, 3, func(cfg *actors.Config) { cfg.MaxSegmentEntries = 25 })
	c := cl.dial(RetryUnknownWrites(retryUnknown),
		WithRetry(RetryPolicy{Attempts: 0, MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond}))
	ctx := testCtx(t, 180*time.Second)
	mustOK(t, "Register", c.Register(ctx, "fo"))

	const batches, size = 20, 7
	type result struct {
		payloads [][]byte
		ranges   []Range
		err      error
	}
	results := make([]result, batches)
	stopNow := make(chan struct{})
	var stopped uint64
	stopDone := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for b := range batches {
			p := make([][]byte, size)
			for i := range p {
				p[i] = fmt.Appendf(nil, "b%02d-e%d", b, i)
			}
			rs, err := c.PutBatch(testCtx(t, 60*time.Second), "fo", p)
			results[b] = result{p, rs, err}
			if b == 4 {
				close(stopNow) // the stop overlaps the next batches
			}
			if err != nil && b > 4 {
				<-stopDone
				waitForNewLeader(t, c, "fo", stopped)
			}
		}
	}()
	<-stopNow
	_, leader, _, err := c.Leader(ctx, "fo")
	mustOK(t, "Leader", err)
	stopped = leader
	cl.Stop(leader)
	close(stopDone)
	<-done
	t.Logf("stopped node %d (segment leader) after batch 4", stopped)

	// segment boundaries, to tell which acknowledged batches crossed one
	// (a batch split by a rollover is still one range when no other
	// writer's entries came between its parts)
	st, err := c.State(testCtx(t, 10*time.Second), "fo")
	if err != nil {
		t.Fatal(err)
	}
	var bases []uint64
	var base uint64
	for id := uint64(1); id < st.CurrentSegment; id++ {
		base += st.SealedSegments[id]
		bases = append(bases, base)
	}
	ok, multi := 0, 0
	for b, r := range results {
		if r.err != nil {
			var se *ServerError
			if retryUnknown && (IsOutcomeUnknown(r.err) || !errors.As(r.err, &se)) {
				// RetryUnknownWrites retries these; only a final server
				// error may end a batch ("segment actor stopping": see
				// TestServerBugStoppingSegmentErrorHidesUnknownOutcome)
				t.Errorf("batch %d failed with RetryUnknownWrites: %v", b, r.err)
			} else {
				t.Logf("batch %d failed (allowed; outcome unknown=%v): %v", b, IsOutcomeUnknown(r.err), r.err)
			}
			continue
		}
		ok++
		for _, rg := range r.ranges {
			if crossesBoundary(bases, rg.First, uint64(rg.Count)) {
				multi++
				break
			}
		}
		i := 0
		for _, rg := range r.ranges {
			for _, e := range readExactly(t, c, "fo", rg.First, rg.Count) {
				if i >= size || !bytes.Equal(e, r.payloads[i]) {
					t.Fatalf("batch %d (ranges %v): entry %d is %q", b, r.ranges, i, e)
				}
				i++
			}
		}
		if i != size {
			t.Fatalf("batch %d: ranges %v cover %d entries, want %d", b, r.ranges, i, size)
		}
	}
	if results[batches-1].err != nil {
		t.Fatalf("the last batch failed after the failover: %v", results[batches-1].err)
	}
	if multi == 0 {
		t.Fatal("no batch crossed a segment boundary: the test lost its point")
	}
	t.Logf("%d of %d batches acknowledged, %d split across segments", ok, batches, multi)
}

// waitForNewLeader waits until the topic's active segment is led by a node
// other than old.
func waitForNewLeader(t *testing.T, c *Client, topic string, old uint64) {
	t.Helper()
	waitFor(t, fmt.Sprintf("a segment leader other than stopped node %d", old), 30*time.Second, func() bool {
		_, node, _, err := c.Leader(testCtx(t, 5*time.Second), topic)
		return err == nil && node != old
	})
}

// crossesBoundary reports whether [first, first+n) spans a segment start.
func crossesBoundary(bases []uint64, first, n uint64) bool {
	for _, b := range bases {
		if first < b && b < first+n {
			return true
		}
	}
	return false
}
