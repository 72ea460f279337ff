package client

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// Server bugs found while writing the client, each fixed in the server;
// these tests state the documented behaviour and keep it that way. (The
// comments describe the bug as it was.)

// docs/protocol.md, GROUPREAD: "It does **not** move the position: commit with
// COMMIT after processing (at-least-once)." The server's cursor actor
// serves a group's GROUPREAD exactly like GET on the shared cursor
// (actors/cursor.go, serve: pos += k, then commit), so every GROUPREAD
// moves and commits the group's position: a consumer that crashes before
// COMMIT loses the entries it read (at-most-once), and re-reading without
// a COMMIT skips ahead.
func TestRegressionGroupReadAdvances(t *testing.T) {
	cl := startCluster(t, 3, nil)
	c := cl.dial()
	ctx := testCtx(t, 30*time.Second)
	mustOK(t, "Register", c.Register(ctx, "g"))
	_, err := c.PutBatch(ctx, "g", [][]byte{[]byte("a"), []byte("b"), []byte("c")})
	mustOK(t, "PutBatch", err)
	readExactly(t, c, "g", 0, 3)
	first, entries, err := c.GroupRead(ctx, "g", "billing", 2, 0)
	if err != nil || first != 0 || len(entries) != 2 {
		t.Fatalf("first GroupRead = %d %q %v, want 0 [a b]", first, entries, err)
	}
	first, entries, err = c.GroupRead(ctx, "g", "billing", 2, 0)
	if err != nil || first != 0 || len(entries) != 2 || string(entries[0]) != "a" {
		t.Fatalf("second GroupRead without COMMIT = %d %q %v, want 0 [a b] again", first, entries, err)
	}
}

// docs/protocol.md, COMMIT: "Sets the group's position to offset: the next
// offset GROUPREAD returns". A COMMIT that reaches a node other than the
// raft leader is proposed straight to raft (actors/conn.go,
// dispatchCommit), but the group's cursor actor on the raft leader, once
// it exists (after the group's first GROUPREAD), keeps serving from its
// in-memory position and never learns of the commit (cursorMetaMsg only
// replaces its topic); its own next commit even overwrites the value.
// Through the raft leader the same COMMIT works (seekMsg).
func TestRegressionCommitViaFollowerIgnored(t *testing.T) {
	cl := startCluster(t, 3, nil)
	var follower string
	for id := uint64(1); id <= 3; id++ {
		if !cl.Node(id).IsRaftLeader() {
			follower = cl.Addr(id)
			break
		}
	}
	c, err := Dial(testCtx(t, 10*time.Second), []string{follower}, WithSmartRouting(false))
	mustOK(t, "Dial follower", err)
	defer c.Close()
	ctx := testCtx(t, 30*time.Second)
	mustOK(t, "Register", c.Register(ctx, "g"))
	_, err = c.PutBatch(ctx, "g", [][]byte{[]byte("a"), []byte("b"), []byte("c"), []byte("d")})
	mustOK(t, "PutBatch", err)
	readExactly(t, c, "g", 0, 4)
	if _, _, err := c.GroupRead(ctx, "g", "billing", 1, 0); err != nil {
		t.Fatal(err)
	}
	mustOK(t, "Commit(3) via a follower", c.Commit(ctx, "g", "billing", 3))
	first, entries, err := c.GroupRead(ctx, "g", "billing", 10, 0)
	if err != nil || first != 3 || len(entries) != 1 || string(entries[0]) != "d" {
		t.Fatalf("GroupRead after Commit(3) = %d %q %v, want 3 [d]", first, entries, err)
	}
}

// A PUT that reaches a node whose segment leader is down is forwarded over
// the internal RPC; when that forward cannot even connect (connection
// refused, or the transport is backing off after such failures), nothing
// was sent, yet the node answers at once "ERR unavailable: transport: peer
// unavailable: ... connection refused (outcome unknown)" (actors/conn.go,
// onPutResult treats every forward error as outcome unknown; transport
// does not tell "never sent" apart). So for the whole failover window
// (about FailureTimeout, 2 s) every write fails fast with an error no
// careful client may retry, and the node's own routing retry (which waits
// for the next segment leader up to RequestTimeout) never runs. Expected:
// the node retries a forward that was never sent, as it does for
// NotLeaderForPartition, and the PUT succeeds once the segment fails over.
func TestRegressionUnsentForwardReportedOutcomeUnknown(t *testing.T) {
	cl := startCluster(t, 3, nil)
	c := cl.dial()
	ctx := testCtx(t, 30*time.Second)
	mustOK(t, "Register", c.Register(ctx, "u"))
	_, leader, _, err := c.Leader(ctx, "u")
	mustOK(t, "Leader", err)
	other := uint64(1 + leader%3)
	direct, err := Dial(ctx, []string{cl.Addr(other)}, WithSmartRouting(false), WithRetry(NoRetry))
	mustOK(t, "Dial", err)
	defer direct.Close()
	mustOK(t, "Put before the stop", direct.Put(ctx, "u", []byte("before")))
	cl.Stop(leader)
	// The first forward may go out on the connection the stopped node had
	// (it then fails with EOF: a genuinely unknown outcome). The next ones
	// must dial, are refused, and were never sent.
	for i := range 3 {
		err := direct.Put(ctx, "u", fmt.Appendf(nil, "after-%d", i))
		if err != nil && strings.Contains(err.Error(), "connection refused") {
			t.Fatalf("Put %d through node %d right after segment leader %d stopped: %v", i, other, leader, err)
		}
		t.Logf("Put %d: %v", i, err)
	}
}

// Writes in flight on a segment leader that stops are answered "ERR
// segment actor stopping" (actors/segment.go, stopLeading on Stopping,
// passed through verbatim by actors/conn.go onPutResult). Their outcome is
// unknown: the entries may already be on a quorum and survive the
// failover. But the text says neither "unavailable:" nor "outcome
// unknown", so a client cannot tell it from a final rejection
// (IsOutcomeUnknown is false). Expected: "unavailable: segment leader
// stopping (outcome unknown)" or similar. The stop has to catch writes in
// flight, so this test is timing dependent (it catches some most runs):
// it reports what it saw and skips when no write was caught.
func TestRegressionStoppingSegmentErrorHidesUnknownOutcome(t *testing.T) {
	cl := startCluster(t, 3, nil)
	ctx := testCtx(t, 60*time.Second)
	admin := cl.dial()
	mustOK(t, "Register", admin.Register(ctx, "s"))
	_, leader, _, err := admin.Leader(ctx, "s")
	mustOK(t, "Leader", err)
	// write through another node: it forwards to the leader and relays the
	// leader's answer (a client of the stopping node itself mostly sees
	// its connection close instead)
	other := uint64(1 + leader%3)
	c, err := Dial(ctx, []string{cl.Addr(other)}, WithSmartRouting(false), WithRetry(NoRetry))
	mustOK(t, "Dial", err)
	defer c.Close()
	type res struct {
		payload string
		err     error
	}
	results := make(chan res, 1<<16)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p := fmt.Sprintf("w%d-%d", w, i)
				results <- res{p, c.Put(ctx, "s", []byte(p))}
			}
		}()
	}
	waitFor(t, "some writes acknowledged", 10*time.Second, func() bool { return len(results) > 100 })
	cl.Stop(leader)
	close(stop)
	wg.Wait()
	close(results)
	var stopping []string
	for r := range results {
		if r.err != nil && r.err.Error() == "segment actor stopping" {
			stopping = append(stopping, r.payload)
		}
	}
	if len(stopping) == 0 {
		t.Skip("no write was in flight at the stop this time")
	}
	waitForNewLeader(t, c, "s", leader)
	present := map[string]bool{}
	for next := uint64(0); ; {
		_, entries, err := c.Read(ctx, "s", next, 1000)
		mustOK(t, "Read", err)
		if len(entries) == 0 {
			break
		}
		for _, e := range entries {
			present[string(e)] = true
		}
		next += uint64(len(entries))
	}
	applied := 0
	for _, p := range stopping {
		if present[p] {
			applied++
		}
	}
	t.Errorf("%d writes answered \"segment actor stopping\" (IsOutcomeUnknown false); %d of them were appended anyway",
		len(stopping), applied)
}

// A segment leader acknowledges a write once a quorum of its replicas hold
// it durably, and the quorum may be the two followers while the leader's
// own WAL append is still running (segment.Leader.recompute counts every
// replica alike). READ (and the GET cursor's fetch) of the active segment
// is answered by the leader from its local WAL, bounded by the high-water
// mark but not by what the WAL holds (actors/segment.go answerRead): a
// READ issued after the write was acknowledged can come back short or
// EMPTY, with no error. Seen on about 1 READ in 100 straight after an
// MPUT on loopback. Expected: entries acknowledged to a client are
// readable by its next request (answer from the WAL only up to its own
// durable end and wait, or read the rest from a follower).
func TestRegressionReadAfterAckMayBeShort(t *testing.T) {
	cl := startCluster(t, 3, nil)
	c := cl.dial()
	ctx := testCtx(t, 120*time.Second)
	mustOK(t, "Register", c.Register(ctx, "r"))
	short := 0
	for i := range 2000 {
		rs, err := c.PutBatch(ctx, "r", [][]byte{fmt.Appendf(nil, "e%d", i), []byte("x")})
		mustOK(t, "PutBatch", err)
		first, entries, err := c.Read(ctx, "r", rs[0].First, 2)
		if err != nil || first != rs[0].First || len(entries) != 2 {
			short++
			t.Logf("MPUT acknowledged %v; the next READ = %d %q %v", rs, first, entries, err)
		}
	}
	if short > 0 {
		t.Errorf("%d of 2000 READs right after an acknowledged MPUT were short", short)
	}
}

// actors/recovery.go, syncReplicas: the loop over the replicas' ends does
// "holding++" without the mutex while goroutines it started for earlier
// replicas do "holding++" under it: a data race (a lost increment makes
// recovery misjudge the quorum). The failover test trips the race
// detector on it about once in 20 runs. Run:
//
//	go test -race -count=20 -run TestRegressionRecoveryDataRace ./client/
func TestRegressionRecoveryDataRace(t *testing.T) {
	if !raceEnabled {
		t.Skip("shows only under the race detector: go test -race")
	}
	testPutBatchThroughFailover(t, false)
}
