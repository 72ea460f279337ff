package actors

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/walrus-go/walrus/messages"
	"github.com/walrus-go/walrus/raftfsm"
	"github.com/walrus-go/walrus/segment"
)

// leaseKeeper guards the node's write lease (segment.Lease). Lock order: it
// is a leaf; nothing is called while mu is held. Writers: the ping loop and
// the FSM-apply hook. Readers: segment leader actors, before each write.
type leaseKeeper struct {
	mu sync.Mutex
	l  *segment.Lease
}

func (k *leaseKeeper) init(window time.Duration) { k.l = segment.NewLease(window) }

func (k *leaseKeeper) valid(now time.Time) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.l.Valid(now)
}

func (k *leaseKeeper) answered(sentAt time.Time, leaderIndex, localApplied uint64) {
	k.mu.Lock()
	k.l.Answered(sentAt, leaderIndex, localApplied)
	k.mu.Unlock()
}

func (k *leaseKeeper) applied(index uint64) {
	k.mu.Lock()
	k.l.Applied(index)
	k.mu.Unlock()
}

func (h *raftHost) appliedIndex() uint64 { return h.State().LastApplied }

// observe forwards raft leadership changes to the root actor.
func (h *raftHost) observe() {
	ch := make(chan raft.Observation, 16)
	h.r.RegisterObserver(raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	}))
	h.n.goBackground(func() {
		for {
			select {
			case <-h.n.ctx.Done():
				return
			case <-ch:
				h.n.system.Root.Send(h.n.root, leaderChangedMsg{})
			}
		}
	})
}

// pingLoop renews this node's lease and tells the raft leader it is alive.
// Each tick sends at most one ping (never more than one in flight). The
// leader renews its own lease by verifying its leadership with a quorum.
// The first renewal also marks the node caught up: its metadata has applied
// what the leader had committed, so it may decide which segments it leads.
func (n *Node) pingLoop() {
	t := n.cfg.Clock.NewTicker(n.cfg.PingInterval)
	defer t.Stop()
	var inflight atomic.Bool
	var announcing atomic.Bool
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-t.C():
		}
		if !inflight.CompareAndSwap(false, true) {
			continue
		}
		sentAt := n.now()
		if n.host.IsLeader() {
			go func() {
				defer inflight.Store(false)
				// a new leader renews only once its barrier ran (its
				// metadata holds every earlier term's entries)
				if n.readyTerm.Load() != n.host.r.CurrentTerm() {
					return
				}
				if err := n.host.r.VerifyLeader().Error(); err != nil {
					return
				}
				n.lease.answered(sentAt, n.host.appliedIndex(), n.host.appliedIndex())
				n.system.Root.Send(n.root, pingSeenMsg{from: n.cfg.NodeID, at: n.now()})
				n.afterRenewal(&announcing)
			}()
			continue
		}
		leader, _ := n.host.Leader()
		if leader == 0 {
			inflight.Store(false)
			continue
		}
		req := &messages.PingReq{From: n.cfg.NodeID, Applied: n.host.appliedIndex(), LastLogIndex: n.host.r.LastIndex()}
		n.goCall(leader, messages.KindPing, req, n.cfg.LeaseWindow, func() any { return &messages.PingResp{} },
			func(resp any, err error) {
				defer inflight.Store(false)
				if err != nil {
					return
				}
				r := resp.(*messages.PingResp)
				if r.Err.Code != messages.CodeOK {
					return
				}
				n.lease.answered(sentAt, r.LeaderApplied, n.host.appliedIndex())
				n.afterRenewal(&announcing)
			})
	}
}

// afterRenewal marks the node caught up on its first valid lease, and
// (re)announces the node's addresses in the metadata when they are missing
// or stale.
func (n *Node) afterRenewal(announcing *atomic.Bool) {
	if n.lease.valid(n.now()) && !n.joining.Load() && n.caughtUp.CompareAndSwap(false, true) {
		n.log.Info("caught up with the cluster metadata")
		n.system.Root.Send(n.root, caughtUpMsg{})
	}
	self := n.selfAddrs()
	st := n.host.State()
	if cur, ok := st.Nodes[raftfsm.NodeID(self.ID)]; ok && cur.RaftAddr == self.RaftAddr &&
		cur.ClientAddr == self.ClientAddr && cur.HTTPAddr == self.HTTPAddr {
		return
	}
	if !announcing.CompareAndSwap(false, true) {
		return
	}
	go func() {
		defer announcing.Store(false)
		ctx, cancel := context.WithTimeout(n.ctx, 5*time.Second)
		defer cancel()
		live := true
		if cur, ok := st.Nodes[raftfsm.NodeID(self.ID)]; ok {
			live = cur.Live
		}
		err := n.host.Propose(ctx, &raftfsm.UpsertNode{Node: raftfsm.NodeInfo{ID: raftfsm.NodeID(self.ID),
			RaftAddr: self.RaftAddr, ClientAddr: self.ClientAddr, HTTPAddr: self.HTTPAddr, Live: live}})
		if err != nil {
			n.log.Warn("announce addresses", "err", err)
		}
	}()
}
