package actors

import (
	"context"
	"errors"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/walrus-go/walrus/messages"
	"github.com/walrus-go/walrus/raftfsm"
)

// errNotCursorOwner: cursors are kept by the raft leader; the entry node
// retries there.
var errNotCursorOwner = &messages.Err{Code: messages.CodeNotLeader, Msg: "not the cursor owner (raft leader)"}

// errClientGone answers a GET whose client went away before it was served:
// nobody reads the answer, and no entry was taken for it.
var errClientGone = messages.Err{Code: messages.CodeCanceled, Msg: "the client went away before the GET was served"}

type (
	getMsg struct {
		max int
		// deadline: the client's long poll (GET WAIT); zero: answer EMPTY
		// at once when nothing is there
		deadline time.Time
		// segWait bounds how long the GET waits for the segment it reads to
		// get a serving leader (set by waitForSegment). It never becomes a
		// long poll: once the segment serves and holds nothing new, a GET
		// without a deadline is answered EMPTY.
		segWait time.Time
		reply   func(messages.GetResp)
		seq     uint64 // numbers the GETs in the order the actor got them
		// client ends when whoever asked is gone (its connection closed,
		// or the forwarding node withdrew the GET): from then on the GET
		// is never served, and is answered errClientGone. nil: never.
		client context.Context
	}
	// cursorClientGone: the client of a queued GET went away.
	cursorClientGone struct{ from *cursorActor }
	cursorMetaMsg    struct{ topic *raftfsm.Topic }
	// The replies to a cursor's own requests name the instance that sent
	// them: a cursor stopped on a leadership change (or restarted) and
	// the one started after it have the same PID, and a reply to the old
	// one must not count as the answer to the new one's request.
	cursorFetched struct {
		from    *cursorActor
		pos     uint64
		asked   uint64 // the last GET received when the read was sent
		parked  bool   // a long poll: the segment leader held it for new entries
		entries [][]byte
		end     uint64
		sealed  bool // this node's metadata had the segment sealed
		final   bool // the replica said its end is final (ReadResp.Sealed)
		err     error
		node    uint64
	}
	cursorCommitted struct {
		from *cursorActor
		pos  uint64
		err  error
	}
	cursorWake     struct{}
	cursorRecommit struct{ from *cursorActor }
	// flushMsg asks for the position to be committed; reply runs once it is
	// (or the commit failed).
	flushMsg struct{ reply func(error) }
)

const cursorPrefetch = 512

// fencedWait is how long a GET waits for a segment under recovery to be
// sealed before it answers EMPTY.
const fencedWait = 5 * time.Second

// cursorActor hands out a topic's entries in order, once each, to GETs from
// any node: the shared cursor (group "") or a named consumer group. It lives
// on the raft leader only. Position changes are committed through raft in
// batches (one proposal in flight, covering every GET served meanwhile);
// after a crash of the leader, entries served since the last commit are
// served again (at-least-once; see docs/protocol.md).
type cursorActor struct {
	n         *Node
	topicName string
	group     string
	topic     *raftfsm.Topic

	pos       uint64 // next offset to hand out
	committed uint64
	proposing bool

	buf [][]byte // prefetched entries starting at pos
	// reads in flight: at most one that the segment leader may park (a
	// long poll) and one that it answers at once
	fetches  int
	parked   bool   // the parked read is in flight
	getSeq   uint64 // GETs received so far (getMsg.seq)
	queue    []getMsg
	retryAt  time.Time
	replica  int // rotates over replicas of sealed segments on failure
	failures int
	armed    bool
	flushers []func(error)
	// waitingSeg: why the last fetch found the segment not readable yet
	// (waitBetweenLeaders, waitSuccessor; the error held GETs get once
	// their wait is over), "" when it did not
	waitingSeg string
}

func newCursorActor(n *Node, topic, group string, t *raftfsm.Topic) *cursorActor {
	c := &cursorActor{n: n, topicName: topic, group: group, topic: t}
	if t != nil {
		if group == "" {
			c.pos = t.Cursor
		} else {
			c.pos = t.Groups[group]
		}
	}
	c.committed = c.pos
	return c
}

func (c *cursorActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case getMsg:
		if m.client != nil {
			if m.client.Err() != nil {
				m.reply(messages.GetResp{Err: errClientGone})
				return
			}
			// a GET that waits is answered as soon as its client goes
			self, reply := ctx.Self(), m.reply
			stop := context.AfterFunc(m.client, func() { c.n.system.Root.Send(self, cursorClientGone{from: c}) })
			m.reply = func(r messages.GetResp) {
				stop()
				reply(r)
			}
		}
		c.getSeq++
		m.seq = c.getSeq
		c.queue = append(c.queue, m)
		c.serve(ctx)
	case cursorClientGone:
		if m.from == c {
			c.dropGone()
		}
	case cursorMetaMsg:
		c.onMeta(ctx, m.topic)
	case cursorFetched:
		if m.from == c {
			c.onFetched(ctx, m)
		}
	case flushMsg:
		if c.pos == c.committed && !c.proposing {
			m.reply(nil)
			return
		}
		c.flushers = append(c.flushers, m.reply)
		c.commit(ctx, false)
	case cursorCommitted:
		if m.from != c {
			return
		}
		c.proposing = false
		if m.err == nil && m.pos > c.committed {
			c.committed = m.pos
		}
		if c.pos == c.committed || m.err != nil {
			for _, f := range c.flushers {
				f(m.err)
			}
			c.flushers = nil
		}
		if m.err != nil {
			// back off: a cluster without a leader (or a node going down)
			// fails every proposal at once
			c.n.log.Warn("cursor commit failed; will retry", "topic", c.topicName, "group", c.group, "err", m.err)
			c.proposing = true // no other commit meanwhile
			self := ctx.Self()
			c.n.cfg.Clock.AfterFunc(100*time.Millisecond, func() { c.n.system.Root.Send(self, cursorRecommit{from: c}) })
			return
		}
		if c.pos != c.committed {
			c.commit(ctx, false)
		}
	case cursorRecommit:
		if m.from != c {
			return
		}
		c.proposing = false
		c.commit(ctx, false)
	case cursorWake:
		c.armed = false
		c.serve(ctx)
	case *actor.Stopping:
		for _, g := range c.queue {
			g.reply(messages.GetResp{Err: *errNotCursorOwner})
		}
		c.queue = nil
		c.flush()
	}
}

// serve answers queued GETs from the prefetch buffer, fetching more when it
// runs dry.
func (c *cursorActor) serve(ctx actor.Context) {
	for len(c.queue) > 0 {
		if len(c.buf) > 0 {
			g := c.queue[0]
			c.queue = c.queue[1:]
			if gone(g) {
				// checked here, as the entry is taken: a GET whose client
				// left before this moment never moves the cursor
				g.reply(messages.GetResp{Err: errClientGone})
				continue
			}
			k := min(max(g.max, 1), len(c.buf))
			out := c.buf[:k:k]
			c.buf = c.buf[k:]
			first := c.pos
			c.pos += uint64(k)
			g.reply(messages.GetResp{First: first, Entries: out})
			c.n.metrics.getEntries.Add(float64(k))
			c.commit(ctx, false)
			continue
		}
		if !c.needFetch() || !c.fetch(ctx) {
			return
		}
	}
}

// gone reports whether g's client went away.
func gone(g getMsg) bool { return g.client != nil && g.client.Err() != nil }

// dropGone answers the queued GETs whose client went away. A read parked
// for them at the segment leader stays there; what it brings back waits in
// the prefetch buffer for the next GET (the cursor has not moved).
func (c *cursorActor) dropGone() {
	keep := c.queue[:0]
	for _, g := range c.queue {
		if gone(g) {
			g.reply(messages.GetResp{Err: errClientGone})
			continue
		}
		keep = append(keep, g)
	}
	clear(c.queue[len(keep):])
	c.queue = keep
}

// needFetch says whether the queued GETs need a read sent now: none is in
// flight, or only a long poll parked at the segment leader while a GET
// wants its answer now (a plain GET, or a long poll whose time is up),
// which must not wait for new entries.
func (c *cursorActor) needFetch() bool {
	switch {
	case c.fetches == 0:
		return true
	case c.fetches > 1 || !c.parked:
		return false
	}
	now := c.n.now()
	for _, g := range c.queue {
		if !now.Before(g.deadline) {
			return true
		}
	}
	return false
}

// fetch starts reading the entries at pos from a replica; false when there
// is nothing to read now (queued GETs were answered or parked).
func (c *cursorActor) fetch(ctx actor.Context) bool {
	t := c.topic
	if t == nil {
		c.answerEmpty(ctx)
		return false
	}
	if first := t.FirstOffset(); c.pos < first {
		// retention deleted what the cursor pointed at: skip forward
		c.pos = first
	}
	seg, idx, ok := t.Locate(c.pos)
	if !ok {
		c.answerEmpty(ctx)
		return false
	}
	if seg.State == raftfsm.SegFenced {
		c.waitForSegment(ctx, waitBetweenLeaders)
		return false
	}
	if c.n.now().Before(c.retryAt) {
		if c.waitingSeg != "" {
			c.waitForSegment(ctx, c.waitingSeg)
		} else {
			c.answerUnavailable(ctx, nil)
		}
		return false
	}
	node := uint64(seg.Leader)
	if seg.Sealed() {
		node = c.n.pickReplica(seg, c.replica)
	}
	wait := int64(0)
	if !seg.Sealed() && c.fetches == 0 {
		wait = longPollMs(c.queue[0], c.n.now())
		for _, g := range c.queue[1:] {
			wait = min(wait, longPollMs(g, c.n.now()))
		}
	}
	c.fetches++
	c.parked = c.parked || wait > 0
	req := &messages.ReadReq{Topic: c.topicName, Segment: seg.ID, From: idx, Max: cursorPrefetch, MaxBytes: 4 << 20, WaitMs: wait}
	self, pos, asked := ctx.Self(), c.pos, c.getSeq
	sealed := seg.Sealed()
	c.n.goCall(node, messages.KindRead, req, time.Duration(wait)*time.Millisecond+5*time.Second,
		func() any { return &messages.ReadResp{} }, func(resp any, err error) {
			m := cursorFetched{from: c, pos: pos, asked: asked, parked: wait > 0, err: err, node: node, sealed: sealed}
			if r, ok := resp.(*messages.ReadResp); ok {
				m.entries, m.end, m.final = r.Entries, r.End, r.Sealed
				if err == nil {
					m.err = r.Err.AsError()
				}
			}
			c.n.system.Root.Send(self, m)
		})
	return true
}

func (c *cursorActor) onMeta(ctx actor.Context, t *raftfsm.Topic) {
	c.topic = t
	if first := t.FirstOffset(); c.pos < first {
		// retention dropped what the cursor (and its prefetch) held
		c.pos, c.buf = first, nil
		c.commit(ctx, false)
	}
	c.serve(ctx)
}

func (c *cursorActor) onFetched(ctx actor.Context, m cursorFetched) {
	c.fetches--
	if m.parked {
		c.parked = false
	}
	if m.pos != c.pos {
		// the other read in flight (or retention) moved the cursor
		// meanwhile
		c.serve(ctx)
		return
	}
	if !m.sealed && notServingYet(m.err) {
		// the active segment's leader is not serving yet (just opened,
		// restarting, or its segment is about to be fenced): wait for it,
		// bounded
		c.waitForSegment(ctx, waitBetweenLeaders)
		return
	}
	if m.err != nil || (m.sealed && len(m.entries) == 0) {
		// that replica could not serve: try the next one at once; after a
		// round of failures, tell the readers (ERR, not EMPTY: there is data
		// we cannot reach) and back off a little
		c.replica++
		c.failures++
		if m.err != nil && !errors.Is(m.err, context.Canceled) {
			c.n.log.Debug("cursor read failed", "topic", c.topicName, "node", m.node, "err", m.err)
		}
		if c.failures <= 3 {
			c.serve(ctx)
			return
		}
		c.failures = 0
		c.retryAt = c.n.now().Add(50 * time.Millisecond)
		c.answerUnavailable(ctx, m.err)
		return
	}
	c.failures = 0
	c.waitingSeg = ""
	if len(m.entries) == 0 && m.final && !m.sealed {
		// The segment is full and its end final, but this node's metadata
		// still has it open: the seal and the next segment are committed
		// or on their way, and a write may already be acknowledged in the
		// next segment. EMPTY could be false; wait for the metadata.
		c.waitForSegment(ctx, waitSuccessor)
		return
	}
	if len(m.entries) == 0 {
		// at the high-water mark of the active segment when the read was
		// sent: that answers the GETs received by then. One received
		// later may have been sent after a write was acknowledged, which
		// this read did not see: it needs a read of its own.
		var later []getMsg
		for i, g := range c.queue {
			if g.seq > m.asked {
				later = append(later, c.queue[i:]...)
				c.queue = c.queue[:i]
				break
			}
		}
		c.answerEmpty(ctx)
		c.queue = append(c.queue, later...)
		if len(later) > 0 {
			c.serve(ctx)
		}
		return
	}
	c.buf = m.entries
	c.serve(ctx)
}

// Why a cursor's GETs wait for the segment they read (waitForSegment).
const (
	waitBetweenLeaders = "the segment has no serving leader yet (failover or restart)"
	waitSuccessor      = "the segment is full and its successor is not in this node's metadata yet"
)

// waitForSegment parks the queued GETs while the segment they read is
// between leaders (failover under way, or its leader restarting), or full
// with its successor not yet in this node's metadata: why says which. The
// entries exist but their end is not known until the seal commits or the
// leader serves, soon; readers wait for that (bounded by fencedWait)
// rather than being told EMPTY, and past that bound get an error.
func (c *cursorActor) waitForSegment(ctx actor.Context, why string) {
	until := c.n.now().Add(fencedWait)
	for i := range c.queue {
		if c.queue[i].segWait.IsZero() {
			c.queue[i].segWait = until
		}
	}
	c.waitingSeg = why
	if !c.n.now().Before(c.retryAt) {
		c.retryAt = c.n.now().Add(20 * time.Millisecond)
	}
	c.holdOrAnswer(ctx, messages.GetResp{Err: messages.Err{Code: messages.CodeUnavailable,
		Msg: "data unavailable: " + why}})
}

// holdUntil is how long a queued GET may stay unanswered: its long poll,
// or, while the segment it reads is between leaders, the bounded wait for
// it (whichever ends later). Zero: answer now.
func holdUntil(g getMsg, waitingSeg bool) time.Time {
	if waitingSeg && g.segWait.After(g.deadline) {
		return g.segWait
	}
	return g.deadline
}

// longPollMs is how long the segment leader may park a read for g: only
// the client's own long poll. The wait for a segment between leaders ends
// the moment the leader serves; parking the read there for the rest of
// that wait would hold a plain GET for seconds on an empty segment.
func longPollMs(g getMsg, now time.Time) int64 {
	if g.deadline.IsZero() {
		return 0
	}
	return max(0, g.deadline.Sub(now).Milliseconds())
}

// answerEmpty: the last read found the end of what is acknowledged, so
// the GETs whose time is up (all that do not wait) are answered EMPTY.
func (c *cursorActor) answerEmpty(ctx actor.Context) {
	c.holdOrAnswer(ctx, messages.GetResp{First: c.pos})
}

// holdOrAnswer answers resp to the queued GETs whose time is up and keeps
// the others, with a wake-up armed for the earliest of them.
func (c *cursorActor) holdOrAnswer(ctx actor.Context, resp messages.GetResp) {
	now := c.n.now()
	keep := c.queue[:0]
	var next time.Time
	for _, g := range c.queue {
		until := holdUntil(g, c.waitingSeg != "")
		if !now.Before(until) {
			g.reply(resp)
			continue
		}
		keep = append(keep, g)
		if next.IsZero() || until.Before(next) {
			next = until
		}
	}
	c.queue = keep
	if len(keep) > 0 && !c.armed {
		c.armed = true
		d := min(next.Sub(now), 50*time.Millisecond)
		self := ctx.Self()
		c.n.cfg.Clock.AfterFunc(d, func() { c.n.system.Root.Send(self, cursorWake{}) })
	}
}

// answerUnavailable: the segment could not be read, so the GETs whose
// time is up (all that do not wait) get an error, not EMPTY: there is data
// the cursor cannot reach. Waiting ones retry.
func (c *cursorActor) answerUnavailable(ctx actor.Context, err error) {
	msg := "data unavailable: no replica answered"
	if err != nil {
		msg += ": " + err.Error()
	}
	c.holdOrAnswer(ctx, messages.GetResp{Err: messages.Err{Code: messages.CodeUnavailable, Msg: msg}})
}

// commit proposes the current position (one proposal in flight; the next
// one carries everything served meanwhile).
func (c *cursorActor) commit(ctx actor.Context, force bool) {
	if c.proposing || (!force && c.pos == c.committed) {
		return
	}
	c.proposing = true
	pos := c.pos
	c.n.proposeAsync(ctx.Self(), &raftfsm.CommitCursor{Topic: c.topicName, Group: c.group, Offset: pos}, 5*time.Second,
		func(err error) any { return cursorCommitted{from: c, pos: pos, err: err} })
}

// flush commits the position synchronously while stopping (graceful
// shutdown keeps the cursor exact).
func (c *cursorActor) flush() {
	if c.pos == c.committed || c.n.crashed.Load() || !c.n.host.IsLeader() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.n.host.Propose(ctx, &raftfsm.CommitCursor{Topic: c.topicName, Group: c.group, Offset: c.pos}); err != nil {
		c.n.log.Warn("flush cursor on stop", "topic", c.topicName, "err", err)
	}
}
