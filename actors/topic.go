package actors

import (
	"strconv"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/walrus-go/walrus/raftfsm"
)

// segReq routes a request to one of the topic's segment actors.
type segReq struct {
	seg uint64
	msg any
	// fail answers the request when no actor for the segment exists here.
	fail func(error)
}

// cursorReq routes a request to one of the topic's cursor actors.
type cursorReq struct {
	group string
	msg   any
	fail  func(error)
	// existing: deliver only to a cursor actor already running (flush);
	// otherwise answer fail(nil).
	existing bool
}

// topicActor supervises the segment actors of the segments this node
// replicates and, while this node leads raft, the topic's cursors.
type topicActor struct {
	n        *Node
	name     string
	meta     topicMetaMsg
	segments map[uint64]*actor.PID
	cursors  map[string]*actor.PID
	term     uint64
	// gcBelow: local files of segments below it were deleted
	gcBelow uint64
	// stopping: protoactor still delivers user messages to a stopping
	// actor; spawning a child then would keep the stop from completing.
	stopping bool
}

func newTopicActor(n *Node, name string) *topicActor {
	return &topicActor{n: n, name: name, segments: map[uint64]*actor.PID{}, cursors: map[string]*actor.PID{}}
}

func (t *topicActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Stopping:
		t.stopping = true
	case topicMetaMsg:
		if !t.stopping {
			t.onMeta(ctx, m)
		}
	case segReq:
		if pid, ok := t.segments[m.seg]; ok {
			ctx.Send(pid, m.msg)
			return
		}
		m.fail(errNoReplica(t.name, m.seg))
	case cursorReq:
		t.routeCursor(ctx, m)
	case *actor.Terminated:
		for id, pid := range t.segments {
			if pid.Equal(m.Who) {
				delete(t.segments, id)
			}
		}
		for g, pid := range t.cursors {
			if pid.Equal(m.Who) {
				delete(t.cursors, g)
			}
		}
	}
}

func (t *topicActor) onMeta(ctx actor.Context, m topicMetaMsg) {
	t.meta = m
	self := raftfsm.NodeID(t.n.cfg.NodeID)
	present := map[uint64]bool{}
	for _, s := range m.topic.Segments {
		present[s.ID] = true
		holds := false
		for _, r := range s.Replicas {
			if r == self {
				holds = true
			}
		}
		pid, running := t.segments[s.ID]
		if !holds {
			if running {
				// no longer a replica (re-replication moved it)
				ctx.Stop(pid)
			}
			continue
		}
		if !running {
			props := actor.PropsFromProducer(func() actor.Actor { return newSegmentActor(t.n, t.name, s.ID) },
				actor.WithSupervisor(actor.NewOneForOneStrategy(10, 10*time.Second, actor.DefaultDecider)), t.n.hotProps)
			p, err := ctx.SpawnNamed(props, "segment/"+strconv.FormatUint(s.ID, 10))
			if err != nil {
				t.n.log.Error("spawn segment actor", "topic", t.name, "segment", s.ID, "err", err)
				continue
			}
			ctx.Watch(p)
			t.segments[s.ID] = p
			pid = p
		}
		ctx.Send(pid, segMetaMsg{topic: m.topic, seg: s, caughtUp: m.caughtUp})
	}
	// segments deleted by retention: stop their actors and free the disk
	for id, pid := range t.segments {
		if !present[id] {
			ctx.Stop(pid)
			delete(t.segments, id)
		}
	}
	if m.caughtUp && len(m.topic.Segments) > 0 {
		t.collectGarbage(m.topic.Segments[0].ID)
	}
	if m.leaderTerm != t.term {
		// leadership changed: cursors of the old reign stop (their waiting
		// reads are told to retry at the new leader)
		for g, pid := range t.cursors {
			ctx.Stop(pid)
			delete(t.cursors, g)
		}
		t.term = m.leaderTerm
	}
	for _, pid := range t.cursors {
		ctx.Send(pid, cursorMetaMsg{topic: m.topic})
	}
}

// collectGarbage deletes local files of this topic's segments below first,
// the lowest retained id: retention removed them from the metadata, maybe
// while this node was down. Only once the node has caught up, so a lagging
// view never deletes data.
func (t *topicActor) collectGarbage(first uint64) {
	if first <= t.gcBelow {
		return
	}
	for _, info := range t.n.wal.Segments() {
		if info.Key.Topic != t.name || info.Key.Segment >= first {
			continue
		}
		if err := t.n.wal.Delete(info.Key); err != nil {
			t.n.log.Warn("delete a segment retention dropped", "topic", t.name, "segment", info.Key.Segment, "err", err)
			return
		}
		t.n.metrics.segmentsDeleted.Inc()
	}
	t.gcBelow = first
}

func (t *topicActor) routeCursor(ctx actor.Context, m cursorReq) {
	if t.term == 0 || t.stopping {
		m.fail(errNotCursorOwner)
		return
	}
	pid, ok := t.cursors[m.group]
	if !ok && m.existing {
		m.fail(nil)
		return
	}
	if !ok {
		name := "cursor/" + m.group
		if m.group == "" {
			name = "cursor-shared"
		}
		props := actor.PropsFromProducer(func() actor.Actor { return newCursorActor(t.n, t.name, m.group, t.meta.topic) })
		p, err := ctx.SpawnNamed(props, name)
		if err != nil {
			m.fail(err)
			return
		}
		ctx.Watch(p)
		t.cursors[m.group] = p
		pid = p
	}
	ctx.Send(pid, m.msg)
}
