package e2e

import (
	"fmt"
	"slices"
	"testing"
	"time"
)

// BenchmarkLeaderKillToFirstWrite measures what a writer sees when the
// active segment's leader dies: on a 3-node cluster of real processes,
// two producers (one per surviving node, one PUT in flight each) write to
// a topic; the segment's leader gets SIGKILL; the time reported is from
// the kill to the first OK of a write sent after it (the node holding the
// write retries it internally until the next segment opens). Each
// iteration uses a new topic and restarts the killed node afterwards.
// Sub-benchmarks: the default timings (--lease 1s --failure-timeout 2s)
// and the tests' short ones (--lease 500ms --failure-timeout 1s), each
// with a victim that is also the raft leader (an election comes first,
// and the new raft leader gives every node a full failure timeout before
// it suspects anyone) and one that is not (topics are registered until
// the round-robin places the first segment as wanted).
//
// Reports min, median and max over the b.N kills in ms, and the same for
// the longest gap between acknowledged writes around the kill (gap-*; see
// leaderLossBench). The testing package runs one kill first with b.N=1;
// use -benchtime 5x:
//
//	go test -run '^$' -bench LeaderKillToFirstWrite -benchtime 5x ./e2e/
//
// (about 3 minutes: 4 settings, 6 kills each.)
func BenchmarkLeaderKillToFirstWrite(b *testing.B) {
	type benchCase struct {
		name          string
		opts          clusterOpts
		raftLeaderToo bool
	}
	var cases []benchCase
	for _, t := range []struct {
		name string
		opts clusterOpts
	}{{"defaults", clusterOpts{}}, {"lease500ms-timeout1s", failoverOpts()}} {
		cases = append(cases, benchCase{t.name + "/raft-leader", t.opts, true}, benchCase{t.name + "/not-raft-leader", t.opts, false})
	}
	for _, bc := range cases {
		b.Run(bc.name, func(b *testing.B) {
			leaderLossBench(b, bc.opts, bc.raftLeaderToo, func(c *cluster, v int) func() {
				c.kill(v)
				return func() {}
			})
		})
	}
}

// BenchmarkLeaderStopToFirstWrite is BenchmarkLeaderKillToFirstWrite with
// SIGTERM instead of SIGKILL: a rolling restart's stop. The stopping node
// seals the segments it leads before it goes (the next segment opens on
// another node), so the writers need not wait for a failover. Besides the
// time from the signal to the first OK of a write sent after it, it
// reports the longest time without any acknowledged write around the stop
// (gap-ms: the pause the writers saw), for the default timings:
//
//	go test -run '^$' -bench LeaderStopToFirstWrite -benchtime 5x ./e2e/
func BenchmarkLeaderStopToFirstWrite(b *testing.B) {
	for _, raftLeaderToo := range []bool{true, false} {
		name := map[bool]string{true: "defaults/raft-leader", false: "defaults/not-raft-leader"}[raftLeaderToo]
		b.Run(name, func(b *testing.B) {
			leaderLossBench(b, clusterOpts{}, raftLeaderToo, func(c *cluster, v int) func() {
				done := make(chan struct{})
				go func() {
					defer close(done)
					c.stop(v)
				}()
				return func() { <-done }
			})
		})
	}
}

// leaderLossBench runs b.N rounds of: a new topic whose active segment is
// led by a node that is (or is not) the raft leader, two producers on the
// other nodes, then lose(c, leader) takes that node away (it returns a
// wait for the loss to be complete); the node is restarted after each
// round. Reports the time from the loss to the first OK of a write sent
// after it and the longest gap between acknowledged writes from the loss
// to a second after that first OK (min, median, max).
func leaderLossBench(b *testing.B, opts clusterOpts, raftLeaderToo bool, lose func(c *cluster, v int) (wait func())) {
	c := startCluster(b, 3, opts)
	var took, gaps []time.Duration
	for i := 0; i < b.N; i++ {
		c.waitReady()
		c.waitAllLive(1)
		var topic string
		var seg int64
		var v int
		for k := 0; ; k++ {
			if k == 6 {
				b.Fatalf("6 new topics, and none had its first segment led by %s", map[bool]string{true: "the raft leader", false: "a node other than the raft leader"}[raftLeaderToo])
			}
			topic = fmt.Sprintf("bench%d-%d", i, k)
			c.dial(1).mustDo("REGISTER "+topic, "OK")
			if seg, v = c.openLeader(topic, 1); (c.raftLeader(1) == v) == raftLeaderToo {
				break
			}
		}
		o := c.others(v)
		wasRaftLeader := c.raftLeader(o[0]) == v
		h := &history{}
		start := time.Now()
		ps := startProducers(c, h, topic, "", o[0], o[1])
		ps.waitAcks(20, start, failoverWait)
		lostAt := time.Now()
		wait := lose(c, v)
		first := c.waitAnyAck(h, lostAt, 60*time.Second)
		wait()
		time.Sleep(time.Second) // the window closes a second after the first OK
		ps.stop()
		d := first.Sub(lostAt)
		gap := longestAckGap(h.snapshot(), lostAt, first.Add(time.Second))
		took = append(took, d)
		gaps = append(gaps, gap)
		b.Logf("round %d: node %d (leader of segment %d, raft leader: %v): first write acknowledged after %v, longest gap between acknowledged writes %v",
			i+1, v, seg, wasRaftLeader, d.Round(time.Millisecond), gap.Round(time.Millisecond))
		c.start(v)
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(0, "ns/op")
	for _, m := range []struct {
		unit string
		ds   []time.Duration
	}{{"", took}, {"gap-", gaps}} {
		slices.Sort(m.ds)
		b.ReportMetric(ms(m.ds[0]), m.unit+"min-ms")
		b.ReportMetric(ms(m.ds[len(m.ds)/2]), m.unit+"median-ms")
		b.ReportMetric(ms(m.ds[len(m.ds)-1]), m.unit+"max-ms")
	}
}

// longestAckGap is the longest stretch inside [from, to] with no write
// acknowledged (the answer times of acked ops; the window's ends count).
func longestAckGap(ops []op, from, to time.Time) time.Duration {
	var at []time.Time
	for _, o := range ops {
		if o.outcome() == acked && o.answered.After(from) && o.answered.Before(to) {
			at = append(at, o.answered)
		}
	}
	slices.SortFunc(at, time.Time.Compare)
	at = append(append([]time.Time{from}, at...), to)
	var longest time.Duration
	for i := 1; i < len(at); i++ {
		longest = max(longest, at[i].Sub(at[i-1]))
	}
	return longest
}
