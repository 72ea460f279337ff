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
// Reports min, median and max over the b.N kills in ms (the testing
// package runs one kill first with b.N=1; use -benchtime 5x):
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
			c := startCluster(b, 3, bc.opts)
			var took []time.Duration
			for i := 0; i < b.N; i++ {
				c.waitReady()
				c.waitAllLive(1)
				var topic string
				var seg int64
				var v int
				for k := 0; ; k++ {
					if k == 6 {
						b.Fatalf("6 new topics, and none had its first segment led by %s", map[bool]string{true: "the raft leader", false: "a node other than the raft leader"}[bc.raftLeaderToo])
					}
					topic = fmt.Sprintf("bench%d-%d", i, k)
					c.dial(1).mustDo("REGISTER "+topic, "OK")
					if seg, v = c.openLeader(topic, 1); (c.raftLeader(1) == v) == bc.raftLeaderToo {
						break
					}
				}
				o := c.others(v)
				wasRaftLeader := c.raftLeader(o[0]) == v
				h := &history{}
				start := time.Now()
				ps := startProducers(c, h, topic, "", o[0], o[1])
				ps.waitAcks(20, start, failoverWait)
				killedAt := time.Now()
				c.kill(v)
				first := c.waitAnyAck(h, killedAt, 60*time.Second)
				ps.stop()
				d := first.Sub(killedAt)
				took = append(took, d)
				b.Logf("kill %d: node %d (leader of segment %d, raft leader: %v): first write acknowledged after %v",
					i+1, v, seg, wasRaftLeader, d.Round(time.Millisecond))
				c.start(v)
			}
			b.StopTimer()
			slices.Sort(took)
			ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(ms(took[0]), "min-ms")
			b.ReportMetric(ms(took[len(took)/2]), "median-ms")
			b.ReportMetric(ms(took[len(took)-1]), "max-ms")
		})
	}
}
