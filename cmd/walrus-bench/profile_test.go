package main

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// The benchmarks below run the load generator against an in-process 3-node
// cluster (RF 3, fsync always, real TCP on loopback, WAL files under a temp
// dir), so that `go test -cpuprofile` can profile the node, which has no
// pprof endpoint. b.N is the number of messages. Client and nodes share
// the process: in pprof, `-ignore 'cmd/walrus-bench\.'` leaves the nodes' samples only
// (in a test binary package main is named by its import path, and
// every client goroutine runs under such a frame; no node goroutine
// does). bench/profile.sh runs them.
//
//	go test -run '^$' -bench ClusterMPut -benchtime 1000000x -cpuprofile cpu.prof ./cmd/walrus-bench

func benchCluster(b *testing.B, tune func(*Config)) {
	c := startCluster(b, 3, nil)
	cfg := Config{Addrs: c.Addrs(), Producers: 16, Topics: 1, Size: 128, Batch: 1, Inflight: 1,
		Messages: int64(b.N), Consume: "read", ReadMax: 1000, Register: true, Prefix: fmt.Sprintf("%s-%d", b.Name(), b.N),
		DrainTimeout: time.Minute, Settle: 5 * time.Second}
	tune(&cfg)
	b.ResetTimer()
	rep, err := Run(context.Background(), cfg)
	b.StopTimer()
	if err != nil {
		b.Fatal(err)
	}
	if p := rep.Produce; p != nil {
		if p.Errors > 0 {
			b.Fatalf("produce errors: %v %v", p.ErrorsByKind, p.ErrorExample)
		}
		b.ReportMetric(p.MsgsPerSec, "put-msgs/s")
		b.ReportMetric(p.Latency.P99, "put-p99-ms")
	}
	if k := rep.Consume; k != nil {
		if k.CaughtUp != k.Consumers {
			b.Fatalf("%d of %d consumers read to the end", k.CaughtUp, k.Consumers)
		}
		b.ReportMetric(k.MsgsPerSec, "read-msgs/s")
	}
	b.ReportMetric(0, "ns/op") // wall time per message is not the point here
}

// BenchmarkClusterMPut: 16 producers, MPUT batches of 100 x 128 B, one in
// flight each.
func BenchmarkClusterMPut(b *testing.B) {
	benchCluster(b, func(c *Config) { c.Batch = 100 })
}

// BenchmarkClusterPut: 16 producers, PUT of 128 B, one in flight each.
func BenchmarkClusterPut(b *testing.B) {
	benchCluster(b, func(c *Config) {})
}

// BenchmarkClusterMPutRead: BenchmarkClusterMPut with 4 READ consumers
// (batches of 1000) tailing the topic.
func BenchmarkClusterMPutRead(b *testing.B) {
	benchCluster(b, func(c *Config) { c.Batch, c.Consumers = 100, 4 })
}
