package actors

import (
	"context"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/walrus-go/walrus/raftfsm"
)

// Messages of the root actor. Actor-internal messages carry callbacks and
// pointers, so they stay unexported here; package messages holds what
// crosses a node boundary.
type (
	metaChangedMsg   struct{}
	leaderChangedMsg struct{}
	caughtUpMsg      struct{}
	// leaderReadyMsg: this node leads raft and its FSM has applied every
	// earlier term's entries (a barrier committed), term identifies the reign.
	leaderReadyMsg struct{ term uint64 }
	pingSeenMsg    struct {
		from uint64
		at   time.Time
	}
	// topicMetaMsg carries a topic's latest metadata to its actor.
	topicMetaMsg struct {
		topic    *raftfsm.Topic
		state    *raftfsm.State
		caughtUp bool
		// leading: this node leads raft and may own cursors (0 = no).
		leaderTerm uint64
	}
)

// rootActor is the node's root: it fans metadata changes out to one topic
// actor per topic and tracks whether this node leads raft (cursor owner and
// controller). It supervises its children one for one.
type rootActor struct {
	n          *Node
	seen       map[string]*raftfsm.Topic
	state      *raftfsm.State
	leaderTerm uint64
	wantTerm   uint64
	controller *actor.PID
	caughtUp   bool
	stopping   bool // see topicActor.stopping
	// heldAll: a fan-out of every topic was skipped while the testkit held
	// the metadata (Node.HoldMetadata)
	heldAll bool
}

// onCaughtUp runs once this node's metadata has caught up with the leader.
// A node that rejoined without its raft state (its data directory was
// lost) may be named leader of open segments it led in an earlier life: it
// cannot tell from its (empty) disk whether it assigned offsets there, so
// those segments are sealed by recovery rather than led. A node that is new
// to the cluster led nothing before.
func (r *rootActor) onCaughtUp() {
	r.caughtUp = true
	if r.n.host.hadState || !r.n.rejoined.Load() {
		return
	}
	self := raftfsm.NodeID(r.n.cfg.NodeID)
	r.n.inheritMu.Lock()
	defer r.n.inheritMu.Unlock()
	for name, t := range r.n.host.State().Topics {
		if a := t.Active(); a != nil && a.Leader == self && !a.Sealed() {
			r.n.inheritedSegs[topicSeg{name, a.ID}] = true
		}
	}
}

func newRootActor(n *Node) *rootActor {
	return &rootActor{n: n, seen: map[string]*raftfsm.Topic{}}
}

func (r *rootActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		r.controller = ctx.SpawnPrefix(actor.PropsFromProducer(func() actor.Actor { return newController(r.n) }), "controller")
	case metaChangedMsg:
		r.n.metaPending.Store(false)
		all := r.heldAll
		r.heldAll = false
		r.fanOut(ctx, all)
	case caughtUpMsg:
		r.onCaughtUp()
		r.fanOut(ctx, true)
	case leaderChangedMsg:
		r.onLeaderChanged(ctx)
	case leaderReadyMsg:
		if m.term == r.wantTerm && r.n.host.IsLeader() {
			r.leaderTerm = m.term
			r.n.readyTerm.Store(m.term)
			ctx.Send(r.controller, m)
			r.fanOut(ctx, true)
		}
	case pingSeenMsg:
		ctx.Send(r.controller, m)
	case pingAppliedMsg:
		ctx.Send(r.controller, m)
	case *actor.Stopping:
		r.stopping = true
	}
}

func (r *rootActor) onLeaderChanged(ctx actor.Context) {
	h := r.n.host
	if !h.IsLeader() {
		if r.leaderTerm != 0 || r.wantTerm != 0 {
			r.leaderTerm, r.wantTerm = 0, 0
			ctx.Send(r.controller, leaderLostMsg{})
			r.fanOut(ctx, true)
		}
		return
	}
	term := h.r.CurrentTerm()
	if r.wantTerm == term {
		return
	}
	r.wantTerm = term
	self := ctx.Self()
	go func() {
		// a new leader applies every committed entry of earlier terms
		// before it hands out cursor positions
		if err := h.r.Barrier(10 * time.Second).Error(); err != nil {
			r.n.log.Warn("leader barrier failed", "err", err)
			return
		}
		r.n.system.Root.Send(self, leaderReadyMsg{term: term})
	}()
}

// fanOut sends every changed topic (or every topic, when all is set) to its
// actor, spawning actors for new topics.
func (r *rootActor) fanOut(ctx actor.Context, all bool) {
	if r.stopping {
		return
	}
	if r.n.holdMeta.Load() {
		r.heldAll = r.heldAll || all
		return
	}
	st := r.n.host.State()
	r.state = st
	caught := r.caughtUp
	for name, t := range st.Topics {
		if !all && r.seen[name] == t {
			continue
		}
		r.seen[name] = t
		pid, ok := r.n.topics.Load(name)
		if !ok {
			p, err := ctx.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return newTopicActor(r.n, name) },
				actor.WithSupervisor(actor.NewOneForOneStrategy(10, 10*time.Second, actor.DefaultDecider))), "topic/"+name)
			if err != nil {
				r.n.log.Error("spawn topic actor", "topic", name, "err", err)
				continue
			}
			r.n.topics.Store(name, p)
			pid = p
		}
		ctx.Send(pid.(*actor.PID), topicMetaMsg{topic: t, state: st, caughtUp: caught, leaderTerm: r.leaderTerm})
	}
	ctx.Send(r.controller, stateMsg{state: st})
}

// propose runs a raft proposal off the calling actor and delivers its result
// to pid as whatever wrap returns.
func (n *Node) proposeAsync(pid *actor.PID, cmd raftfsm.Command, timeout time.Duration, wrap func(error) any) {
	go func() {
		ctx, cancel := context.WithTimeout(n.ctx, timeout)
		defer cancel()
		err := n.host.Propose(ctx, cmd)
		n.system.Root.Send(pid, wrap(err))
	}()
}
