package e2e

import (
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"
)

// Issue 5: failover with real node processes and concurrent producers.
// Every scenario runs failoverRounds times, each round on a new topic of
// the same cluster, and ends with checkHistory over everything the
// producers sent and the whole topic read back from offset 0 (see
// checker_test.go for the rules), plus a READ through every node that must
// give the same log. docs/replication.md "How this is tested" summarises.

// failoverOpts are short failover timings: a node silent for 1 s is failed
// over (the lease, 500 ms, must be shorter).
func failoverOpts() clusterOpts {
	return clusterOpts{args: []string{"--lease", "500ms", "--failure-timeout", "1s"}}
}

// failoverRounds is how often each scenario repeats in one run
// (E2E_FAILOVER_ROUNDS, default 3).
func failoverRounds(t *testing.T) int {
	if v := os.Getenv("E2E_FAILOVER_ROUNDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("E2E_FAILOVER_ROUNDS=%q: want a positive integer", v)
		}
		return n
	}
	return 3
}

// failoverWait bounds each wait for a failover to complete: detection
// (1 s), a raft election when the raft leader was the victim, recovery,
// and slack for two shared cores.
const failoverWait = 30 * time.Second

// kill -9 the active segment's leader while producers on the other two
// nodes write, wait until writes succeed again, restart it; then kill -9
// the leader of the segment that replaced it (the restarted node now holds
// producers too), wait, restart. Every acknowledged write survives both.
func TestFailoverKillLeaderTwice(t *testing.T) {
	c := startCluster(t, 3, failoverOpts())
	for round := 1; round <= failoverRounds(t); round++ {
		topic := fmt.Sprintf("kill%d", round)
		c.dial(1).mustDo("REGISTER "+topic, "OK")
		h := &history{}
		var victims []int
		for phase, name := range []string{"a", "b"} {
			tag := fmt.Sprintf("r%d%s", round, name)
			seg, v := c.openLeader(topic, c.others()[0])
			victims = append(victims, v)
			o := c.others(v)
			wasRaftLeader := c.raftLeader(o[0]) == v
			start := time.Now()
			ps := startProducers(c, h, topic, tag, o[0], o[1], o[0], o[1])
			ps.waitAcks(20, start, failoverWait)

			killedAt := time.Now()
			c.kill(v)
			first := c.waitAnyAck(h, killedAt, failoverWait)
			ps.waitAcks(5, killedAt, failoverWait) // every producer writes again
			ps.stop()
			t.Logf("round %d, kill %d: killed node %d (leader of segment %d, raft leader: %v); first write acknowledged %v after the kill",
				round, phase+1, v, seg, wasRaftLeader, first.Sub(killedAt).Round(time.Millisecond))

			// restart it, so the next kill leaves a quorum, and wait until
			// the raft leader counts it live again, so the segment after
			// the next failover gets three replicas
			c.start(v)
			c.waitReady()
			c.waitAllLive(o[0])
		}

		log := c.waitReadAll(victims[1], topic)
		checkLog(t, h, log)
		c.sameLog(topic, log, c.ids()...)
		if t.Failed() {
			return
		}
	}
}

// SIGSTOP the active segment's leader (one producer writes straight to
// it, three through the others) until its segment is sealed and writes
// flow through the others, then SIGCONT it. It rejoins, and acknowledged
// nothing after the seal that is not in the log.
func TestFailoverPausedLeader(t *testing.T) {
	c := startCluster(t, 3, failoverOpts())
	for round := 1; round <= failoverRounds(t); round++ {
		sealOutLeader(t, c, fmt.Sprintf("pause%d", round), "paused", c.pause, c.resume)
		if t.Failed() {
			return
		}
	}
}

// Cut the active segment's leader off from both peers (blackhole routes
// between network namespaces; the test process still reaches every node)
// until its segment is sealed and writes flow through the others, then
// heal. It rejoins, and acknowledged nothing after the seal that is not in
// the log.
func TestFailoverPartitionedLeader(t *testing.T) {
	net := newPrivateNet(t, 3) // before the cluster: torn down after its nodes die
	c := startCluster(t, 3, net.opts(failoverOpts()))
	for round := 1; round <= failoverRounds(t); round++ {
		sealOutLeader(t, c, fmt.Sprintf("cut%d", round), "cut off", net.isolate, func(int) { net.heal() })
		if t.Failed() {
			return
		}
	}
}

// sealOutLeader is one round of the paused and the partitioned leader:
//
//  1. producers write to a new topic: three through the two nodes that do
//     not lead its active segment, one straight to the leader (the
//     victim);
//  2. fault(victim); wait until a majority node's STATE shows the
//     victim's segment sealed (sealedAt: the first poll that saw it) and a
//     write through a majority node is acknowledged;
//  3. restore(victim); wait until all three nodes' STATE agree and every
//     producer, the victim's included, has written again;
//  4. check the history against the log; check what the victim
//     acknowledged after sealedAt (checkExLeader); READ through every node,
//     the victim included, gives the same log.
//
// Why that shows the victim "acknowledged nothing after its segment was
// sealed": the victim acknowledges a write only once a quorum of the
// segment's replicas (itself and at least one follower, RF 3) holds it.
// Recovery fences the replicas it asks before it reads their ends
// (rf - quorum + 1 = 2 of them: the two followers, as the victim cannot
// answer), and a fenced follower refuses appends from then on. So an
// entry the victim can still acknowledge was held by a follower before
// that follower answered recovery, recovery's end covers it, and it is in
// the sealed segment: readable, at an offset below base + sealed count.
// An acknowledgement of anything else (an entry beyond the sealed count,
// which only the victim's own disk could hold) names an entry the log
// does not have, and checkHistory (rule 3) and checkExLeader report it.
// The sealed count itself is what the log holds between the segment's
// base and the next segment's: the READ through every node shows each
// serves exactly that, so the victim cut its own longer copy, if it had
// one, to the sealed count.
func sealOutLeader(t *testing.T, c *cluster, topic, what string, fault, restore func(id int)) {
	t.Helper()
	c.waitReady()
	c.waitAllLive(1)
	c.dial(1).mustDo("REGISTER "+topic, "OK")
	seg, v := c.openLeader(topic, 1)
	maj := c.others(v)
	wasRaftLeader := c.raftLeader(maj[0]) == v
	h := &history{}
	start := time.Now()
	ps := startProducers(c, h, topic, topic, maj[0], maj[1], maj[0], v)
	ps.waitAcks(20, start, failoverWait)

	faultAt := time.Now()
	fault(v)
	// when recovery fenced the segment (a moment before the seal, unless
	// recovery outran the 20 ms polls)
	fenced := "not seen"
	c.waitFor(fmt.Sprintf("node %d's STATE %s to show segment %d fenced or sealed", maj[0], topic, seg), failoverWait, func() error {
		s, err := c.topicState(maj[0], topic)
		if err != nil {
			return err
		}
		if s.current == seg && s.segmentState == "fenced" {
			fenced = time.Since(faultAt).Round(time.Millisecond).String()
			return nil
		}
		if _, ok := s.sealed[fmt.Sprint(seg)]; ok {
			return nil
		}
		return fmt.Errorf("%s", s)
	})
	count, sealedAt := c.waitSealed(topic, seg, maj[0], failoverWait)
	tries := c.probe(h, topic, topic+"probe", maj[1], failoverWait)
	flowing := time.Now()
	restore(v)
	restoredAt := time.Now()
	c.waitAgree(topic, failoverWait, c.ids()...)
	ps.waitAcks(3, restoredAt, failoverWait)
	ps.stop()

	log := c.waitReadAll(maj[0], topic)
	checkLog(t, h, log)
	st := c.waitAgree(topic, failoverWait, maj...)
	first := int(st.lastSealedOff)
	for id, n := range st.sealed {
		if s, _ := strconv.ParseInt(id, 10, 64); s >= seg {
			first -= int(n)
		}
	}
	problems, inSeg, after := checkExLeader(h.snapshot(), log, v, sealedAt, first, first+int(count))
	for _, p := range problems {
		t.Error(p)
	}
	c.sameLog(topic, log, c.ids()...)
	for _, o := range h.snapshot() {
		if o.outcome() != acked {
			t.Logf("%s: not acknowledged: %s", topic, o)
		}
	}
	t.Logf("%s: node %d (leader of segment %d, raft leader: %v) %s; segment %d fenced %s later, sealed at %d entries %v later; "+
		"a write through node %d acknowledged %v after the fault (%d attempts); node %d restored after %v; "+
		"after the seal it acknowledged %d writes of segment %d (offsets %d..%d) and %d of later segments, all in the log",
		topic, v, seg, wasRaftLeader, what, seg, fenced, count, sealedAt.Sub(faultAt).Round(time.Millisecond),
		maj[1], flowing.Sub(faultAt).Round(time.Millisecond), tries, v, restoredAt.Sub(faultAt).Round(time.Millisecond),
		inSeg, seg, first, first+int(count)-1, after)
}
