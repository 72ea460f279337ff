package actors

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/walrus-go/walrus/internal/backoff"
	"github.com/walrus-go/walrus/messages"
	"github.com/walrus-go/walrus/raftfsm"
	"github.com/walrus-go/walrus/segment"
	"github.com/walrus-go/walrus/wal"
)

func ctxTimeout(n *Node, d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(n.ctx, d)
}

// startRecovery seals a segment whose leader is gone (or is this node in an
// earlier life), once per segment at a time on this node.
func (n *Node) startRecovery(topic string, seg uint64) {
	key := wal.SegmentKey{Topic: topic, Segment: seg}
	if _, running := n.recovering.LoadOrStore(key, true); running {
		return
	}
	n.metrics.recoveries.Inc()
	n.goBackground(func() {
		defer n.recovering.Delete(key)
		n.recoverSegment(topic, seg)
	})
}

// recoverSegment is the BookKeeper-style recovery of docs/replication.md:
//  1. fence: bump the segment's epoch through raft (nobody may write it);
//  2. ask the replicas for their durable ends, fencing them at the new epoch
//     so a deposed leader's appends are refused from now on;
//  3. once enough answered (segment.RecoveryQuorum), pick the end
//     (segment.RecoveryEnd): it covers every acknowledged entry;
//  4. make the answering replicas hold it (they copy from the source);
//  5. seal at that count through raft: the next segment opens on a live node.
//
// Every step is guarded by the epoch, so two coordinators (the controller
// and the restarted leader itself) cannot disagree; it retries until the
// segment is sealed or the node stops.
func (n *Node) recoverSegment(topic string, segID uint64) {
	log := n.log.With("topic", topic, "segment", segID)
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			select {
			case <-n.ctx.Done():
				return
			case <-n.after(backoff.Exp(100*time.Millisecond, attempt, time.Second)):
			}
		}
		t := n.host.State().Topics[topic]
		if t == nil {
			return
		}
		sg := t.SegmentByID(segID)
		if sg == nil || sg.Sealed() {
			return
		}
		if sg.State == raftfsm.SegOpen {
			ctx, cancel := ctxTimeout(n, 5*time.Second)
			err := n.host.Propose(ctx, &raftfsm.FenceSegment{Topic: topic, Segment: segID, Epoch: sg.Epoch})
			cancel()
			if err != nil && !errors.Is(err, raftfsm.ErrStale) {
				log.Warn("recovery: fence proposal failed", "err", err)
			}
			attempt = 0
			continue
		}
		epoch := sg.Epoch
		ends, sizes := n.fenceReplicas(topic, sg)
		end, src, ok := segment.RecoveryEnd(len(sg.Replicas), ends)
		if !ok {
			if attempt%10 == 1 {
				log.Warn("recovery: waiting for replicas to answer", "answered", len(ends), "replicas", len(sg.Replicas))
			}
			continue
		}
		if !n.syncReplicas(topic, sg, ends, end, src) {
			continue
		}
		ctx, cancel := ctxTimeout(n, 5*time.Second)
		err := n.host.Propose(ctx, &raftfsm.SealSegment{Topic: topic, Segment: segID, Epoch: epoch, Count: end,
			AtMs: n.now().UnixMilli(), Bytes: sizes[src]})
		cancel()
		if err != nil && !errors.Is(err, raftfsm.ErrStale) {
			log.Warn("recovery: seal proposal failed", "err", err)
			continue
		}
		if err == nil {
			log.Info("recovered segment", "count", end, "source", src, "answered", len(ends))
		}
	}
}

// fenceReplicas sends Fence to every replica in parallel and returns the
// durable ends (and payload sizes) of those that answered.
func (n *Node) fenceReplicas(topic string, sg *raftfsm.Segment) (ends map[uint64]uint64, sizes map[uint64]int64) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	ends, sizes = map[uint64]uint64{}, map[uint64]int64{}
	for _, r := range sg.Replicas {
		wg.Add(1)
		go func(r uint64) {
			defer wg.Done()
			ctx, cancel := ctxTimeout(n, time.Second)
			defer cancel()
			var resp messages.FenceResp
			err := n.call(ctx, r, messages.KindFence, &messages.FenceReq{Topic: topic, Segment: sg.ID, Epoch: sg.Epoch}, &resp)
			if err == nil && resp.Err.Code == messages.CodeOK {
				mu.Lock()
				ends[r] = resp.End
				sizes[r] = resp.Bytes
				mu.Unlock()
			}
		}(uint64(r))
	}
	wg.Wait()
	return ends, sizes
}

// syncReplicas makes the replicas that answered and lack entries copy them
// from src; it reports whether enough of them hold end afterwards (a
// quorum of the replica set, or all that answered if fewer).
func (n *Node) syncReplicas(topic string, sg *raftfsm.Segment, ends map[uint64]uint64, end, src uint64) bool {
	var mu sync.Mutex
	var wg sync.WaitGroup
	holding := 0 // guarded by mu once the goroutines start
	for _, e := range ends {
		if e >= end {
			holding++
		}
	}
	for r, e := range ends {
		if e >= end {
			continue
		}
		wg.Add(1)
		go func(r uint64) {
			defer wg.Done()
			ctx, cancel := ctxTimeout(n, 10*time.Second)
			defer cancel()
			var resp messages.SyncResp
			err := n.call(ctx, r, messages.KindSync, &messages.SyncReq{Topic: topic, Segment: sg.ID, Epoch: sg.Epoch,
				Source: src, UpTo: end}, &resp)
			if err == nil && resp.Err.Code == messages.CodeOK && resp.End >= end {
				mu.Lock()
				holding++
				mu.Unlock()
				return
			}
			if err == nil {
				err = resp.Err.AsError()
			}
			n.log.Warn("recovery: a replica could not copy the chosen end", "topic", topic, "segment", sg.ID,
				"replica", r, "want", end, "has", resp.End, "err", err)
		}(r)
	}
	wg.Wait()
	return holding >= min(segment.Quorum(len(sg.Replicas)), len(ends))
}
