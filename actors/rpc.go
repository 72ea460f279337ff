package actors

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/walrus-go/walrus/messages"
	"github.com/walrus-go/walrus/raftfsm"
	"github.com/walrus-go/walrus/wal"
	"github.com/walrus-go/walrus/wire"
)

// rpcHandler serves node-to-node requests arriving on the internal port
// (and calls a node makes to itself). Each request is decoded, handed to the
// actor that owns the state it touches, and answered when that actor
// replies or the caller's deadline passes.
type rpcHandler struct{ n *Node }

func (h rpcHandler) Handle(ctx context.Context, kind uint8, body []byte) (uint8, []byte, error) {
	n := h.n
	k := messages.Kind(kind)
	var resp any
	switch k {
	case messages.KindPropose:
		var req messages.ProposeReq
		if err := messages.Decode(k, body, &req); err != nil {
			return 0, nil, err
		}
		r := n.host.handlePropose(ctx, &req)
		resp = &r
	case messages.KindJoin:
		var req messages.JoinReq
		if err := messages.Decode(k, body, &req); err != nil {
			return 0, nil, err
		}
		r := n.host.handleJoin(ctx, &req)
		resp = &r
	case messages.KindRemove:
		var req messages.RemoveReq
		if err := messages.Decode(k, body, &req); err != nil {
			return 0, nil, err
		}
		resp = &messages.ProposeResp{Err: fsmErrToWire(n.host.RemoveNode(ctx, req.ID))}
	case messages.KindPing:
		var req messages.PingReq
		if err := messages.Decode(k, body, &req); err != nil {
			return 0, nil, err
		}
		resp = n.handlePing(&req)
	case messages.KindPut:
		var req messages.PutReq
		if err := messages.Decode(k, body, &req); err != nil {
			return 0, nil, err
		}
		resp = n.handlePut(ctx, &req)
	case messages.KindGet:
		var req messages.GetReq
		if err := messages.Decode(k, body, &req); err != nil {
			return 0, nil, err
		}
		resp = n.handleGet(ctx, &req)
	case messages.KindRead:
		var req messages.ReadReq
		if err := messages.Decode(k, body, &req); err != nil {
			return 0, nil, err
		}
		r := askSegment(ctx, n, req.Topic, req.Segment, func(reply func(messages.ReadResp)) any {
			return readMsg{req: &req, raw: req.Raw, reply: reply}
		}, func(e messages.Err) messages.ReadResp { return messages.ReadResp{Err: e} })
		resp = &r
	case messages.KindReplicate:
		var req messages.ReplicateReq
		if err := messages.Decode(k, body, &req); err != nil {
			return 0, nil, err
		}
		r := askSegment(ctx, n, req.Topic, req.Segment, func(reply func(messages.ReplicateResp)) any {
			return replicateMsg{req: &req, reply: reply}
		}, func(e messages.Err) messages.ReplicateResp { return messages.ReplicateResp{Err: e} })
		resp = &r
	case messages.KindFence:
		var req messages.FenceReq
		if err := messages.Decode(k, body, &req); err != nil {
			return 0, nil, err
		}
		r := askSegment(ctx, n, req.Topic, req.Segment, func(reply func(messages.FenceResp)) any {
			return fenceMsg{req: &req, reply: reply}
		}, func(e messages.Err) messages.FenceResp { return messages.FenceResp{Err: e} })
		resp = &r
	case messages.KindSync:
		var req messages.SyncReq
		if err := messages.Decode(k, body, &req); err != nil {
			return 0, nil, err
		}
		r := askSegment(ctx, n, req.Topic, req.Segment, func(reply func(messages.SyncResp)) any {
			return syncMsg{req: &req, reply: reply}
		}, func(e messages.Err) messages.SyncResp { return messages.SyncResp{Err: e} })
		resp = &r
	case messages.KindRollover:
		var req messages.RolloverReq
		if err := messages.Decode(k, body, &req); err != nil {
			return 0, nil, err
		}
		r := askSegment(ctx, n, req.Topic, req.Segment, func(reply func(messages.RolloverResp)) any {
			return rolloverMsg{reply: reply}
		}, func(e messages.Err) messages.RolloverResp { return messages.RolloverResp{Err: e} })
		resp = &r
	case messages.KindFlush:
		r := messages.FlushResp{}
		if !n.host.IsLeader() {
			r.Err = *errNotCursorOwner
		} else if err := n.flushCursors(ctx); err != nil {
			r.Err = errToWire(err)
		}
		resp = &r
	case messages.KindStatus:
		var req messages.StatusReq
		if err := messages.Decode(k, body, &req); err != nil {
			return 0, nil, err
		}
		r := messages.StatusResp{}
		r.HWM, r.Known = n.localHWM(req.Topic)
		resp = &r
	default:
		return 0, nil, fmt.Errorf("unknown rpc kind %d", kind)
	}
	out, err := messages.Encode(resp)
	return kind, out, err
}

// Dispatch takes, on the connection's reader goroutine, the requests whose
// order matters and hands them to their actor without blocking: replication
// batches (a follower appends them in the order the leader pipelined them)
// and forwarded writes (a connection's pipelined PUTs keep their order).
// Everything else runs concurrently through Handle.
func (h rpcHandler) Dispatch(kind uint8, body []byte, reply func(uint8, []byte, error)) bool {
	n := h.n
	k := messages.Kind(kind)
	respond := func(v any) {
		out, err := messages.Encode(v)
		reply(kind, out, err)
	}
	switch k {
	case messages.KindReplicate:
		var req messages.ReplicateReq
		if err := messages.Decode(k, body, &req); err != nil {
			reply(0, nil, err)
			return true
		}
		msg := replicateMsg{req: &req, reply: func(r messages.ReplicateResp) { respond(&r) }}
		if pid, ok := n.segments.Load(wal.SegmentKey{Topic: req.Topic, Segment: req.Segment}); ok {
			// straight to the segment's actor. Batches sent through the
			// topic actor while this one was starting may arrive after
			// this one: the follower answers CodeGap and the leader resends.
			n.system.Root.Send(pid.(*actor.PID), msg)
			return true
		}
		pid, ok := n.topics.Load(req.Topic)
		if !ok {
			respond(&messages.ReplicateResp{Err: messages.Err{Code: messages.CodeUnavailable, Msg: "topic " + req.Topic + " not known here yet"}})
			return true
		}
		n.system.Root.Send(pid.(*actor.PID), segReq{seg: req.Segment, msg: msg,
			fail: func(err error) { respond(&messages.ReplicateResp{Err: errToWire(err)}) }})
		return true
	case messages.KindPut:
		var req messages.PutReq
		if err := messages.Decode(k, body, &req); err != nil {
			reply(0, nil, err)
			return true
		}
		n.routePut(&req, func(r messages.PutResp) { respond(&r) })
		return true
	case messages.KindGet:
		// Only noted here, in arrival order, and served by Handle: a
		// CancelGetReq read after it on this connection then always finds
		// it, even before Handle has run.
		var req messages.GetReq
		if err := messages.Decode(k, body, &req); err == nil && req.ID != 0 {
			n.remoteGets.open(remoteGetKey{from: req.From, id: req.ID})
		}
		return false
	case messages.KindCancelGet:
		var req messages.CancelGetReq
		if err := messages.Decode(k, body, &req); err != nil {
			reply(0, nil, err)
			return true
		}
		n.remoteGets.cancel(remoteGetKey{from: req.From, id: req.ID})
		respond(&messages.CancelGetResp{})
		return true
	}
	return false
}

// writeTarget is the actor that takes writes for topic t here: the leader
// of its active segment, or, while that segment's actor is still taking up
// the leadership metadata gave this node (creating its file), that actor:
// the write waits in its mailbox instead of bouncing back to a retry with
// back-off. An actor that does not lead answers CodeNotLeader as before.
func (n *Node) writeTarget(topic string, t *raftfsm.Topic) (*actor.PID, bool) {
	if pid, ok := n.leaders.Load(topic); ok {
		return pid.(*actor.PID), true
	}
	act := t.Active()
	if act.State != raftfsm.SegOpen || uint64(act.Leader) != n.cfg.NodeID {
		return nil, false
	}
	if pid, ok := n.segments.Load(wal.SegmentKey{Topic: topic, Segment: act.ID}); ok {
		return pid.(*actor.PID), true
	}
	return nil, false
}

// askSegment delivers a request to the local actor of (topic, segment) and
// waits for its answer or ctx's end.
func askSegment[R any](ctx context.Context, n *Node, topic string, seg uint64, build func(func(R)) any, fail func(messages.Err) R) R {
	pid, ok := n.topics.Load(topic)
	if !ok {
		return fail(messages.Err{Code: messages.CodeUnavailable, Msg: "topic " + topic + " not known here yet"})
	}
	ch := make(chan R, 1)
	msg := build(func(r R) { ch <- r })
	n.system.Root.Send(pid.(*actor.PID), segReq{seg: seg, msg: msg, fail: func(err error) { ch <- fail(errToWire(err)) }})
	select {
	case r := <-ch:
		return r
	case <-ctx.Done():
		return fail(messages.Err{Code: messages.CodeTimeout, Msg: ctx.Err().Error()})
	}
}

func errNoReplica(topic string, seg uint64) error {
	return &messages.Err{Code: messages.CodeUnavailable, Msg: fmt.Sprintf("no replica of %s/%d on this node", topic, seg)}
}

// handlePing runs on the raft leader: it feeds the failure detector and
// answers with the commit index the pinger must apply before renewing.
func (n *Node) handlePing(req *messages.PingReq) *messages.PingResp {
	if !n.host.IsLeader() {
		l, _ := n.host.Leader()
		return &messages.PingResp{Err: messages.Err{Code: messages.CodeNotLeader, Msg: "not the raft leader", Leader: l}}
	}
	if n.readyTerm.Load() != n.host.r.CurrentTerm() {
		// newly elected: its metadata may still miss earlier terms' entries
		return &messages.PingResp{Err: messages.Err{Code: messages.CodeUnavailable, Msg: "raft leader not ready yet"}}
	}
	n.host.recordReported(req.From, req.LastLogIndex)
	n.system.Root.Send(n.root, pingAppliedMsg{from: req.From, applied: req.Applied, at: n.now()})
	// the index of the last command the leader's metadata applied (raft's
	// own commit index also counts entries the FSM never sees)
	return &messages.PingResp{LeaderApplied: n.host.appliedIndex()}
}

// handlePut serves a write forwarded by another node: only the local
// leader of the topic's active segment takes it (one hop, no chains).
func (n *Node) handlePut(ctx context.Context, req *messages.PutReq) *messages.PutResp {
	ch := make(chan messages.PutResp, 1)
	n.routePut(req, func(r messages.PutResp) { ch <- r })
	select {
	case r := <-ch:
		return &r
	case <-ctx.Done():
		return &messages.PutResp{Err: messages.Err{Code: messages.CodeTimeout, Msg: "write timed out (outcome unknown)"}}
	}
}

// routePut hands a forwarded write to the actor that takes the topic's
// writes here, or answers at once that there is none (unknown topic, not
// the leader). Used by Dispatch (on the connection's reader, in order) and
// by handlePut.
func (n *Node) routePut(req *messages.PutReq, reply func(messages.PutResp)) {
	// The node that took the request checked its entries against its own
	// limit (connActor.onFrame); one with a larger --max-frame must not
	// make this node store what its clients could not read back.
	limit := n.maxEntry()
	for i, e := range req.Entries {
		if len(e) > limit {
			reply(messages.PutResp{Err: messages.Err{Code: messages.CodeInvalid,
				Msg: wire.MPutEntryTooLarge(i+1, len(req.Entries), len(e), limit).Msg}})
			return
		}
	}
	t := n.host.State().Topics[req.Topic]
	if t == nil {
		reply(messages.PutResp{Err: messages.Err{Code: messages.CodeUnknownTopic, Msg: wire.UnknownTopic(req.Topic).Msg}})
		return
	}
	pid, ok := n.writeTarget(req.Topic, t)
	if !ok {
		reply(messages.PutResp{Err: messages.Err{Code: messages.CodeNotLeader, Msg: wire.NotLeader(req.Topic, t.Active().ID).Msg}})
		return
	}
	n.system.Root.Send(pid, putMsg{entries: req.Entries, reply: reply})
}

// handleGet serves a cursor read forwarded to this node, the cursor owner.
// The GET's client is gone, and the cursor must not serve it, once ctx
// ends (the connection from the forwarding node broke) or that node
// withdraws it (CancelGetReq: its client went away).
func (n *Node) handleGet(ctx context.Context, req *messages.GetReq) *messages.GetResp {
	client := ctx
	if req.ID != 0 {
		key := remoteGetKey{from: req.From, id: req.ID}
		g := n.remoteGets.lookup(key)
		defer n.remoteGets.close(key, g)
		stop := context.AfterFunc(ctx, g.cancel)
		defer stop()
		client = g.ctx
	}
	if req.BudgetMs > 0 {
		// past the caller's budget its answer would be dropped: give the
		// GET no entry from then on (less a margin for the way back)
		var stop context.CancelFunc
		client, stop = context.WithCancel(client)
		defer stop()
		t := n.cfg.Clock.AfterFunc(time.Duration(req.BudgetMs)*time.Millisecond-getBudgetMargin, stop)
		defer t.Stop()
	}
	if !n.host.IsLeader() {
		return &messages.GetResp{Err: *errNotCursorOwner}
	}
	var deadline time.Time
	if req.WaitMs > 0 {
		deadline = n.now().Add(time.Duration(req.WaitMs) * time.Millisecond)
	}
	ch := make(chan messages.GetResp, 1)
	n.askCursor(req.Topic, req.Group, getMsg{max: req.Max, deadline: deadline, client: client,
		reply: func(r messages.GetResp) { ch <- r }},
		func(err error) { ch <- messages.GetResp{Err: errToWire(err)} })
	select {
	case r := <-ch:
		return &r
	case <-ctx.Done():
		return &messages.GetResp{Err: messages.Err{Code: messages.CodeTimeout, Msg: "read timed out"}}
	}
}

// getBudgetMargin: a forwarded GET is given no entry this long before its
// caller stops waiting (GetReq.BudgetMs), so that an entry handed out
// still reaches it.
const getBudgetMargin = time.Second

// remoteGets are the GETs forwarded to this node that their entry node may
// withdraw (GetReq.ID, CancelGetReq). An entry is opened when the GET is
// read off its connection (Dispatch, in arrival order), so a withdrawal
// read after it finds it, and closed when the GET is answered; a
// withdrawal that finds nothing came after the answer and does nothing.
type remoteGets struct {
	mu sync.Mutex
	m  map[remoteGetKey]*remoteGet
}

type remoteGetKey struct{ from, id uint64 }

type remoteGet struct {
	ctx    context.Context // ends when the GET is withdrawn
	cancel context.CancelFunc
}

// open notes a GET as it arrives.
func (r *remoteGets) open(k remoteGetKey) *remoteGet {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[remoteGetKey]*remoteGet{}
	}
	g := &remoteGet{}
	g.ctx, g.cancel = context.WithCancel(context.Background())
	if old := r.m[k]; old != nil {
		// the same id from a node's earlier life (it restarted, and
		// this node has not yet seen their connection break): that GET's
		// client is gone
		old.cancel()
	}
	r.m[k] = g
	return g
}

// lookup is the GET opened for k (opening it if Dispatch did not).
func (r *remoteGets) lookup(k remoteGetKey) *remoteGet {
	r.mu.Lock()
	g := r.m[k]
	r.mu.Unlock()
	if g == nil {
		g = r.open(k)
	}
	return g
}

// cancel withdraws the GET k if it is still open.
func (r *remoteGets) cancel(k remoteGetKey) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if g := r.m[k]; g != nil {
		g.cancel()
	}
}

// close forgets GET k once answered.
func (r *remoteGets) close(k remoteGetKey, g *remoteGet) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m[k] == g {
		delete(r.m, k)
	}
	g.cancel()
}

// inherited reports whether this node led (topic, seg) before it lost its
// state: see rootActor.onCaughtUp.
func (n *Node) inherited(topic string, seg uint64) bool {
	n.inheritMu.Lock()
	defer n.inheritMu.Unlock()
	return n.inheritedSegs[topicSeg{topic, seg}]
}

type topicSeg struct {
	topic string
	seg   uint64
}

var _ = raftfsm.SegOpen
