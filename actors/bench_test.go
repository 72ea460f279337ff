package actors

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/walrus-go/walrus/raftfsm"
	"github.com/walrus-go/walrus/wal"
)

// benchCluster starts a 3-node in-process cluster (real TCP on loopback,
// real raft and WAL files, fsync on every batch) with one topic.
// walMode picks how segment files are written: "append" (no zeros written
// ahead) or "prealloc" (a node's default, --wal-prealloc).
func benchCluster(b *testing.B, topic, walMode string) *testCluster {
	c := newTestCluster(b, 3, func(cfg *Config) {
		cfg.MaxSegmentEntries = 1 << 40
		if walMode != "append" {
			cfg.WALPrealloc = wal.DefaultPrealloc
		}
	})
	c.client(1).must("REGISTER "+topic, "OK")
	return c
}

// BenchmarkClusterPut measures acknowledged PUTs (RF 3, fsync always) with
// 16 connections, one request in flight each, spread over the 3 nodes.
func BenchmarkClusterPut(b *testing.B) { benchWALModes(b, 16, 1, 128) }

// BenchmarkClusterMPut100 is the same with MPUT batches of 100 entries.
func BenchmarkClusterMPut100(b *testing.B) { benchWALModes(b, 16, 100, 128) }

// benchWALModes runs benchPut once for each way of writing segment files
// (benchCluster's walMode).
func benchWALModes(b *testing.B, conns, batchN, size int) {
	for _, mode := range []string{"append", "prealloc"} {
		b.Run("wal="+mode, func(b *testing.B) { benchPut(b, mode, conns, batchN, size) })
	}
}

func benchPut(b *testing.B, walMode string, conns, batchN, size int) {
	c := benchCluster(b, "bench", walMode)
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
	cpu0 := cpuTime()
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
	cpu := cpuTime() - cpu0
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
	// CPU of the whole process (3 nodes and the clients) per message: far
	// less noisy than msgs/s on a shared machine
	b.ReportMetric(float64(cpu.Microseconds())/msgs, "cpu-µs/msg")
	b.ReportMetric(msgs*float64(size)/el.Seconds()/1e6, "MB/s")
}

// cpuTime is the user + system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkClusterPutSerial is one connection, one request at a time: the
// latency of one acknowledged PUT.
func BenchmarkClusterPutSerial(b *testing.B) { benchWALModes(b, 1, 1, 128) }

// BenchmarkProposeOnLeader measures metadata proposals/s committed through
// raft on the leader (16 proposers, CommitCursor commands).
func BenchmarkProposeOnLeader(b *testing.B) { benchPropose(b, true) }

// BenchmarkProposeForwarded is the same from a follower: each proposal is
// forwarded to the leader over the internal port.
func BenchmarkProposeForwarded(b *testing.B) { benchPropose(b, false) }

func benchPropose(b *testing.B, onLeader bool) {
	c := benchCluster(b, "meta", "append")
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
