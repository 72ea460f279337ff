package actors

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/walrus-go/walrus/raftfsm"
)

// benchCluster starts a 3-node in-process cluster (real TCP on loopback,
// real raft and WAL files, fsync on every batch) with one topic.
func benchCluster(b *testing.B, topic string) *testCluster {
	c := newTestCluster(b, 3, func(cfg *Config) { cfg.MaxSegmentEntries = 1 << 40 })
	c.client(1).must("REGISTER "+topic, "OK")
	return c
}

// BenchmarkClusterPut measures acknowledged PUTs (RF 3, fsync always) with
// 16 connections, one request in flight each, spread over the 3 nodes.
func BenchmarkClusterPut(b *testing.B) { benchPut(b, 16, 1, 128) }

// BenchmarkClusterMPut100 is the same with MPUT batches of 100 entries.
func BenchmarkClusterMPut100(b *testing.B) { benchPut(b, 16, 100, 128) }

func benchPut(b *testing.B, conns, batchN, size int) {
	c := benchCluster(b, "bench")
	payload := strings.Repeat("x", size)
	var req string
	if batchN == 1 {
		req = "PUT bench " + payload
	} else {
		entries := make([]string, batchN)
		for i := range entries {
			entries[i] = payload
		}
		req = mput("bench", entries...)
	}
	clients := make([]*client, conns)
	for i := range clients {
		clients[i] = c.client(uint64(i%3) + 1)
	}
	var next atomic.Int64
	var errs atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for _, cl := range clients {
		wg.Add(1)
		go func(cl *client) {
			defer wg.Done()
			for next.Add(1) <= int64(b.N) {
				cl.send(req)
				if r := cl.recv(); !strings.HasPrefix(r, "OK") {
					errs.Add(1)
				}
			}
		}(cl)
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	if errs.Load() > 0 {
		b.Fatalf("%d errors", errs.Load())
	}
	for id := uint64(1); id <= 3; id++ {
		st := c.nodes[id].wal.Stats()
		b.Logf("node %d: %d entries in %d batches, %d syncs", id, st.Entries, st.Batches, st.Syncs)
	}
	msgs := float64(b.N * batchN)
	b.ReportMetric(msgs/el.Seconds(), "msgs/s")
	b.ReportMetric(msgs*float64(size)/el.Seconds()/1e6, "MB/s")
}

// BenchmarkClusterPutSerial is one connection, one request at a time: the
// latency of one acknowledged PUT.
func BenchmarkClusterPutSerial(b *testing.B) { benchPut(b, 1, 1, 128) }

// BenchmarkProposeOnLeader measures metadata proposals/s committed through
// raft on the leader (16 proposers, CommitCursor commands).
func BenchmarkProposeOnLeader(b *testing.B) { benchPropose(b, true) }

// BenchmarkProposeForwarded is the same from a follower: each proposal is
// forwarded to the leader over the internal port.
func BenchmarkProposeForwarded(b *testing.B) { benchPropose(b, false) }

func benchPropose(b *testing.B, onLeader bool) {
	c := benchCluster(b, "meta")
	var n *Node
	for _, x := range c.nodes {
		if x.IsRaftLeader() == onLeader {
			n = x
		}
	}
	var next atomic.Int64
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for {
				i := next.Add(1)
				if i > int64(b.N) {
					return
				}
				ctx, cancel := ctxTimeout(n, 10*time.Second)
				err := n.host.Propose(ctx, &raftfsm.CommitCursor{Topic: "meta", Group: fmt.Sprintf("g%d", g), Offset: uint64(i)})
				cancel()
				if err != nil {
					b.Error(err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "proposals/s")
}
