package actors

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"
	"github.com/hashicorp/raft"

	"github.com/walrus-go/walrus/messages"
	"github.com/walrus-go/walrus/raftfsm"
	"github.com/walrus-go/walrus/segment"
)

type (
	leaderLostMsg struct{}
	stateMsg      struct{ state *raftfsm.State }
	ctrlTickMsg   struct{ term uint64 }
	ctrlDoneMsg   struct{ key string }
)

// controller runs the raft leader's duties: it tracks which nodes are alive
// from their pings (segment.Detector), records liveness in the metadata,
// fails over the open segments of dead nodes (recoverSegment), and promotes
// joined non-voters once they have caught up. It idles on followers.
type controller struct {
	n       *Node
	term    uint64
	det     *segment.Detector
	state   *raftfsm.State
	applied map[uint64]uint64 // each node's applied index from its pings
	busy    map[string]bool   // proposals in flight, by purpose
}

func newController(n *Node) *controller {
	return &controller{n: n, applied: map[uint64]uint64{}, busy: map[string]bool{}}
}

func (c *controller) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case leaderReadyMsg:
		c.term = m.term
		c.det = segment.NewDetector(c.n.cfg.FailureTimeout, c.n.now())
		c.arm(ctx)
	case leaderLostMsg:
		c.term = 0
		c.det = nil
	case stateMsg:
		c.state = m.state
	case pingSeenMsg:
		if c.det != nil {
			c.det.Seen(m.from, m.at)
		}
	case pingAppliedMsg:
		c.applied[m.from] = m.applied
		if c.det != nil {
			c.det.Seen(m.from, m.at)
		}
	case ctrlTickMsg:
		if m.term != c.term || c.det == nil {
			return
		}
		c.tick(ctx)
		c.arm(ctx)
	case ctrlDoneMsg:
		delete(c.busy, m.key)
	}
}

type pingAppliedMsg struct {
	from, applied uint64
	at            time.Time
}

func (c *controller) arm(ctx actor.Context) {
	self, term := ctx.Self(), c.term
	c.n.cfg.Clock.AfterFunc(2*c.n.cfg.PingInterval, func() { c.n.system.Root.Send(self, ctrlTickMsg{term: term}) })
}

func (c *controller) tick(ctx actor.Context) {
	st := c.n.host.State()
	now := c.n.now()
	self := c.n.cfg.NodeID
	c.det.Seen(self, now)
	ids := make([]uint64, 0, len(st.Nodes))
	for id := range st.Nodes {
		ids = append(ids, uint64(id))
	}
	slices.Sort(ids)
	dead := c.det.Dead(ids, now)
	for _, id := range ids {
		live := !slices.Contains(dead, id)
		if st.Nodes[raftfsm.NodeID(id)].Live != live {
			c.propose(ctx, "live", &raftfsm.SetLiveness{ID: raftfsm.NodeID(id), Live: live})
		}
	}
	// fail over the open segments of dead nodes (RF>=2: with one copy the
	// data is on the dead node alone and the topic waits for it, as the
	// reference does)
	names := make([]string, 0, len(st.Topics))
	for name := range st.Topics {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		a := st.Topics[name].Active()
		if a == nil || a.Sealed() {
			continue
		}
		if len(a.Replicas) >= 2 && slices.Contains(dead, uint64(a.Leader)) {
			c.n.startRecovery(name, a.ID)
		}
		// a replica on a removed node: seal the segment so the next one is
		// placed on members only (its data is re-replicated once sealed).
		// A live leader rolls it over gracefully; a removed one is fenced.
		if st.HasRemovedReplica(a) {
			if _, member := st.Nodes[a.Leader]; !member {
				c.n.startRecovery(name, a.ID)
			} else if a.State == raftfsm.SegOpen {
				c.rollover(ctx, name, a)
			}
		}
	}
	c.rereplicate(ctx, st)
	c.retention(ctx, st, names)
	c.promote(ctx, dead)
}

// retention drops the sealed segments a topic's policy no longer keeps
// (raftfsm.Topic.RetentionCut); every replica deletes their files when it
// sees them leave the metadata. One proposal in flight at a time.
func (c *controller) retention(ctx actor.Context, st *raftfsm.State, names []string) {
	now := c.n.now().UnixMilli()
	for _, name := range names {
		if below, ok := st.Topics[name].RetentionCut(now); ok {
			c.propose(ctx, "retention", &raftfsm.DeleteSegments{Topic: name, Below: below})
			return
		}
	}
}

// rollover asks a segment's leader to seal it early (one request in flight
// per segment; the next tick asks again if the segment is still open).
func (c *controller) rollover(ctx actor.Context, topic string, a *raftfsm.Segment) {
	key := fmt.Sprintf("rollover/%s/%d", topic, a.ID)
	if c.busy[key] {
		return
	}
	c.busy[key] = true
	self := ctx.Self()
	c.n.goCall(uint64(a.Leader), messages.KindRollover, &messages.RolloverReq{Topic: topic, Segment: a.ID}, 2*time.Second,
		func() any { return &messages.RolloverResp{} }, func(any, error) {
			c.n.system.Root.Send(self, ctrlDoneMsg{key: key})
		})
}

// rereplicate repairs sealed segments' replica sets: a replica on a removed
// node is replaced, and a segment with fewer replicas than its topic's RF
// allows is topped up (raftfsm.Repairs.Replacement); a new replica's segment
// actor copies the data from the others. One proposal in flight at a time.
func (c *controller) rereplicate(ctx actor.Context, st *raftfsm.State) {
	refs := st.UnderReplicated()
	if len(refs) == 0 {
		return
	}
	plan := st.Repairs()
	for _, ref := range refs {
		reps, ok := plan.Replacement(st.Topics[ref.Topic], ref.Segment)
		if !ok {
			continue
		}
		c.propose(ctx, "rereplicate", &raftfsm.SetReplicas{Topic: ref.Topic, Segment: ref.Segment.ID, Replicas: reps})
		return
	}
}

// promote turns caught-up non-voters into voters.
func (c *controller) promote(ctx actor.Context, dead []uint64) {
	r := c.n.host.r
	cf := r.GetConfiguration()
	if cf.Error() != nil {
		return
	}
	commit := r.CommitIndex()
	for _, s := range cf.Configuration().Servers {
		if s.Suffrage != raft.Nonvoter {
			continue
		}
		id := parseServerID(s.ID)
		if slices.Contains(dead, id) || c.applied[id]+64 < commit {
			continue
		}
		key := "promote"
		if c.busy[key] {
			return
		}
		c.busy[key] = true
		self := ctx.Self()
		go func(s raft.Server) {
			if err := r.AddVoter(s.ID, s.Address, 0, 10*time.Second).Error(); err != nil {
				c.n.log.Warn("promote to voter", "node", s.ID, "err", err)
			} else {
				c.n.log.Info("promoted to voter", "node", s.ID)
			}
			c.n.system.Root.Send(self, ctrlDoneMsg{key: key})
		}(s)
		return
	}
}

func (c *controller) propose(ctx actor.Context, key string, cmd raftfsm.Command) {
	if c.busy[key] {
		return
	}
	c.busy[key] = true
	self := ctx.Self()
	go func() {
		pctx, cancel := context.WithTimeout(c.n.ctx, 5*time.Second)
		defer cancel()
		if err := c.n.host.Propose(pctx, cmd); err != nil {
			c.n.log.Warn("controller proposal", "err", err)
		}
		c.n.system.Root.Send(self, ctrlDoneMsg{key: key})
	}()
}
