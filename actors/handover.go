package actors

import (
	"context"
	"time"

	"github.com/walrus-go/walrus/messages"
	"github.com/walrus-go/walrus/raftfsm"
)

// handOverWait bounds how long a graceful stop waits for the seals of the
// segments the node leads (handOverSegments): one raft round each in a
// healthy cluster. A seal not applied by then (no raft quorum: the others
// are stopping too) is left to the failover the others run once the node
// is gone, as it was before hand-overs.
const handOverWait = time.Second

// handOverSegments seals, early in a graceful stop, every open segment
// this node leads, the way a full segment is sealed: the writes already
// accepted finish, and the next segment opens on the next node in ring
// order. Their writers go on there at once, instead of waiting out
// --failure-timeout and a recovery round for the others to fence the
// segment. Nothing is lost either way; this only spares the pause.
func (n *Node) handOverSegments() {
	st := n.host.State()
	self := raftfsm.NodeID(n.cfg.NodeID)
	if !hasOtherLiveNode(st, self) {
		return // the next segment would be placed here again
	}
	type ref struct {
		topic string
		seg   uint64
	}
	var led []ref
	for _, name := range st.TopicNames() {
		if a := st.Topics[name].Active(); a != nil && a.State == raftfsm.SegOpen && a.Leader == self {
			led = append(led, ref{name, a.ID})
		}
	}
	if len(led) == 0 {
		return
	}
	ctx, cancel := ctxTimeout(n, handOverWait)
	defer cancel()
	if reached := n.reachablePeers(ctx, st, self); 1+reached <= len(st.Nodes)/2 {
		// the seals need a raft quorum, and the others are gone or
		// going (the last nodes of a whole-cluster stop): waiting for
		// them would only hold the stop up
		n.log.Info("graceful stop: segments not handed over: too few other nodes answer", "answered", reached, "nodes", len(st.Nodes))
		return
	}
	for _, r := range led {
		resp := askSegment(ctx, n, r.topic, r.seg, func(reply func(messages.RolloverResp)) any {
			return rolloverMsg{reply: reply}
		}, func(e messages.Err) messages.RolloverResp { return messages.RolloverResp{Err: e} })
		if err := resp.Err.AsError(); err != nil {
			// not leading it after all (a failover under way): the
			// others seal it as they would have
			n.log.Info("graceful stop: segment not handed over", "topic", r.topic, "segment", r.seg, "err", err)
		}
	}
	for {
		applied := n.host.applied.wait() // taken before the look, as waitApplied does
		st = n.host.State()
		open := 0
		for _, r := range led {
			if t := st.Topics[r.topic]; t != nil {
				if a := t.Active(); a != nil && a.ID == r.seg {
					open++
				}
			}
		}
		if open == 0 {
			n.log.Info("graceful stop: handed over the segments this node led", "segments", len(led))
			return
		}
		select {
		case <-ctx.Done():
			// not a fault: the others stopping too (no quorum), or raft
			// slow; the writers wait for the failover, as without a
			// hand-over
			n.log.Info("graceful stop: segments this node leads were not sealed in time; the others fail them over once it is gone",
				"open", open, "of", len(led), "waited", handOverWait)
			return
		case <-applied:
		}
	}
}

// hasOtherLiveNode reports whether a node other than self may lead the
// next segment (raftfsm.State.Candidates).
func hasOtherLiveNode(st *raftfsm.State, self raftfsm.NodeID) bool {
	for id, nd := range st.Nodes {
		if id != self && nd.Live {
			return true
		}
	}
	return false
}

// reachablePeers counts the other members that answer a status call now
// (all asked at once, each given at most a fifth of handOverWait).
func (n *Node) reachablePeers(ctx context.Context, st *raftfsm.State, self raftfsm.NodeID) int {
	ctx, cancel := context.WithTimeout(ctx, handOverWait/5)
	defer cancel()
	answers := make(chan bool, len(st.Nodes))
	asked := 0
	for id := range st.Nodes {
		if id == self {
			continue
		}
		asked++
		go func() {
			var resp messages.StatusResp
			answers <- n.call(ctx, uint64(id), messages.KindStatus, &messages.StatusReq{}, &resp) == nil
		}()
	}
	reached := 0
	for range asked {
		if <-answers {
			reached++
		}
	}
	return reached
}
