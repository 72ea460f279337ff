package transport

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/walrus-go/walrus/messages"
)

// replicaHandler plays a follower without a disk: it decodes each
// ReplicateReq on the connection's reader goroutine (Dispatch, as the node
// does) and answers an encoded ReplicateResp.
type replicaHandler struct{}

func (replicaHandler) Handle(context.Context, uint8, []byte) (uint8, []byte, error) {
	return 0, nil, fmt.Errorf("unexpected")
}

func (replicaHandler) Dispatch(kind uint8, body []byte, reply func(uint8, []byte, error)) bool {
	var req messages.ReplicateReq
	if err := messages.Decode(messages.Kind(kind), body, &req); err != nil {
		reply(0, nil, err)
		return true
	}
	out, err := messages.Encode(&messages.ReplicateResp{Durable: req.First + uint64(len(req.Entries))})
	reply(kind, out, err)
	return true
}

// BenchmarkReplicationRound measures the node-to-node part of a replication
// round on loopback: encode a ReplicateReq of N entries of 128 B, send it,
// decode it on the follower's reader goroutine, encode and send the
// ReplicateResp, decode it in the caller's callback. No WAL: the fsync is
// the rest of a real round (see wal's benchmarks). inflight is the window
// of batches in flight (the segment leader keeps up to 8 per follower).
func BenchmarkReplicationRound(b *testing.B) {
	for _, entries := range []int{1, 100} {
		for _, inflight := range []int{1, 8} {
			b.Run(fmt.Sprintf("entries=%d/inflight=%d", entries, inflight), func(b *testing.B) {
				m := startMux(b, "127.0.0.1:0", replicaHandler{})
				c := newClient(b, m.addr)
				ents := make([][]byte, entries)
				for i := range ents {
					ents[i] = bytes.Repeat([]byte{'x'}, 128)
				}
				sem := make(chan struct{}, inflight)
				var wg sync.WaitGroup
				b.SetBytes(int64(entries * 128))
				b.ReportAllocs()
				b.ResetTimer()
				for i := range b.N {
					sem <- struct{}{}
					wg.Add(1)
					req := &messages.ReplicateReq{Topic: "bench", Segment: 1, Epoch: 1, Leader: 1,
						Replicas: []uint64{1, 2, 3}, First: uint64(i * entries), Entries: ents, HWM: uint64(i * entries)}
					body, err := messages.Encode(req)
					if err != nil {
						b.Fatal(err)
					}
					c.Go(uint8(messages.KindReplicate), body, time.Time{}, func(k uint8, rb []byte, err error) {
						defer wg.Done()
						defer func() { <-sem }()
						if err != nil {
							b.Error(err)
							return
						}
						var resp messages.ReplicateResp
						if err := messages.Decode(messages.Kind(k), rb, &resp); err != nil {
							b.Error(err)
						}
					})
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rounds/s")
			})
		}
	}
}
