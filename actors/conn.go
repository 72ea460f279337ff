package actors

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/walrus-go/walrus/internal/backoff"
	"github.com/walrus-go/walrus/messages"
	"github.com/walrus-go/walrus/raftfsm"
	"github.com/walrus-go/walrus/wal"
	"github.com/walrus-go/walrus/wire"
)

type (
	newConnMsg struct{ c net.Conn }
	frameMsg   struct{ body []byte }
	badFrame   struct{ err error }
	connEOF    struct{ err error }
	// replyMsg completes request seq with a whole reply frame.
	replyMsg struct {
		seq   uint64
		frame []byte
	}
	retryMsg      struct{ seq uint64 }
	registeredMsg struct {
		seq uint64
		err error
	}
	// putResultMsg / getResultMsg carry a routed request's outcome back.
	putResultMsg struct {
		topic string
		batch uint64
		resp  messages.PutResp
		err   error
	}
	retryWritesMsg struct{ topic string }
	getResultMsg   struct {
		seq  uint64
		resp messages.GetResp
		err  error
	}
)

// listenerActor accepts client connections and supervises one connection
// actor per client: a failing connection is restarted... no: stopped alone,
// never taking the node down.
type listenerActor struct{ n *Node }

func (l *listenerActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case newConnMsg:
		id := l.n.connSeq.Add(1)
		props := actor.PropsFromProducer(func() actor.Actor { return newConnActor(l.n, m.c) }, l.n.hotProps)
		if _, err := ctx.SpawnNamed(props, "conn/"+strconv.FormatUint(id, 10)); err != nil {
			l.n.log.Warn("spawn connection actor", "err", err)
			m.c.Close()
		}
	}
}

func (n *Node) acceptClients() {
	props := actor.PropsFromProducer(func() actor.Actor { return &listenerActor{n: n} },
		actor.WithSupervisor(actor.NewOneForOneStrategy(0, time.Second, func(any) actor.Directive { return actor.StopDirective })))
	pid, err := n.system.Root.SpawnNamed(props, "node-listener")
	if err != nil {
		n.log.Error("spawn listener", "err", err)
		return
	}
	n.listenerPID.Store(pid)
	for {
		c, err := n.clientLn.Accept()
		if err != nil {
			if n.ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
				n.log.Warn("accept client", "err", err)
			}
			n.system.Root.Stop(pid)
			return
		}
		if tc, ok := c.(interface{ SetNoDelay(bool) error }); ok { // a *net.TCPConn, raw or not
			_ = tc.SetNoDelay(true)
		}
		n.metrics.connections.Inc()
		n.system.Root.Send(pid, newConnMsg{c: c})
	}
}

// request is one client request in flight on a connection.
type request struct {
	seq     uint64
	req     wire.Request
	pipe    bool // a write that may overlap other writes
	started bool
	// routing state of writes
	done     int
	ranges   [][2]uint64
	deadline time.Time
	attempt  int
	start    time.Time // when the frame was read
	synced   bool      // a metadata read barrier ran for this request
	waitSet  bool      // GROUPREAD's wait was added to the deadline
	// holding: the request holds the connection open (holdOpen) until it
	// is answered
	holding bool
	// pollUntil: when a GETW's long poll ends, fixed at its first attempt
	// (a retry through an election waits only for what is left of it)
	pollUntil time.Time
	// fwdTo, fwdID: the GET in flight at the cursor owner fwdTo, as
	// GetReq.ID fwdID (0: none), to withdraw if the client goes away
	fwdTo, fwdID uint64
}

// connActor serves one client connection. Requests are answered strictly
// in order; consecutive writes (PUT/MPUT) are pipelined, anything else
// waits for what came before it, so a GET never overtakes an earlier PUT of
// the same connection.
type connActor struct {
	n      *Node
	c      net.Conn
	self   *actor.PID
	out    chan []byte
	seq    uint64
	next   uint64 // next seq to write
	queue  []*request
	byseq  map[uint64]*request
	ready  map[uint64][]byte
	closed bool
	writes map[string]*writeQueue // per topic: see writeQueue
	// client ends when the connection does (the client closed it or
	// vanished, it idled out, or the node closes it): the cursor then
	// serves none of its long polls still waiting (getMsg.client).
	client     context.Context
	clientGone context.CancelFunc
	// readUntil (unix ns): the idle timeout does not close the connection
	// before then, while a long poll is in flight (holdOpen); holding
	// counts those polls (the actor's own)
	readUntil atomic.Int64
	holding   int
}

func newConnActor(n *Node, c net.Conn) *connActor {
	a := &connActor{n: n, c: c, out: make(chan []byte, 256), byseq: map[uint64]*request{}, ready: map[uint64][]byte{}, next: 1,
		writes: map[string]*writeQueue{}}
	a.client, a.clientGone = context.WithCancel(n.ctx)
	return a
}

func (a *connActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		a.self = ctx.Self()
		go a.readLoop()
		go a.writeLoop()
	case frameMsg:
		a.onFrame(ctx, m.body)
	case badFrame:
		// answer, then close: never read a body we refused, never desync
		a.seq++
		a.queue = append(a.queue, &request{seq: a.seq, started: true})
		a.complete(ctx, a.seq, wire.AppendReplyError(nil, "invalid frame length"))
		a.closeAfterFlush(ctx)
	case connEOF:
		a.closeAfterFlush(ctx)
	case replyMsg:
		a.complete(ctx, m.seq, m.frame)
	case putResultMsg:
		a.onPutResult(ctx, m)
	case getResultMsg:
		a.onGetResult(ctx, m)
	case readResultMsg:
		a.onReadResult(ctx, m)
	case registeredMsg:
		if r, ok := a.byseq[m.seq]; ok {
			if errors.Is(m.err, raftfsm.ErrNoNodes) {
				// a cluster that just formed has not recorded its nodes yet
				a.retry(ctx, r, clientError(m.err))
				return
			}
			a.complete(ctx, m.seq, okOrErr(m.err))
		}
	case retryWritesMsg:
		if wq := a.writes[m.topic]; wq != nil {
			wq.retrying = false
			a.sendWrites(ctx, m.topic)
		}
	case retryMsg:
		if r, ok := a.byseq[m.seq]; ok {
			a.dispatch(ctx, r)
		}
	case *actor.Stopping:
		a.hangUp()
		a.closed = true
		close(a.out)
	}
}

func (a *connActor) readLoop() {
	fr := wire.NewFrameReader(bufio.NewReaderSize(a.c, 64<<10), a.n.cfg.MaxFrame)
	for {
		a.setReadDeadline()
		body, err := fr.ReadFrame()
		if err != nil {
			if errors.Is(err, wire.ErrInvalidFrameLength) {
				a.n.system.Root.Send(a.self, badFrame{err: err})
				return
			}
			// the client is gone (or idled out): from this instant the
			// cursor serves none of its long polls, before the actor even
			// hears of it
			a.clientGone()
			a.n.system.Root.Send(a.self, connEOF{err: err})
			return
		}
		a.n.system.Root.Send(a.self, frameMsg{body: append([]byte(nil), body...)})
	}
}

// setReadDeadline gives the client ClientIdleTimeout from now to send its
// next frame, or until readUntil if that is later.
func (a *connActor) setReadDeadline() {
	for {
		until := a.readUntil.Load()
		_ = a.c.SetReadDeadline(time.Unix(0, max(until, time.Now().Add(a.n.cfg.ClientIdleTimeout).UnixNano())))
		if a.readUntil.Load() == until {
			return // else holdOpen raced with us: set it again
		}
	}
}

// holdOpen keeps the connection from idling out while r, which may be
// answered as late as answerBy (a long poll), is in flight: a client
// waiting for an answer is not idle. Its idle time counts from then, or
// from the answer once the last such request has one (release).
func (a *connActor) holdOpen(r *request, answerBy time.Time) {
	if !r.holding {
		r.holding = true
		a.holding++
	}
	u := answerBy.Add(a.n.cfg.ClientIdleTimeout).UnixNano()
	if u <= a.readUntil.Load() {
		return
	}
	a.readUntil.Store(u)
	a.setReadDeadline()
}

func (a *connActor) writeLoop() {
	w := bufio.NewWriterSize(a.c, 64<<10)
	defer func() {
		_ = w.Flush()
		a.c.Close()
		a.n.metrics.connections.Dec()
	}()
	for f := range a.out {
		if f == nil {
			return // close after flush
		}
		if _, err := w.Write(f); err != nil {
			// drain so the actor never blocks on a dead client
			a.clientGone()
			for range a.out {
			}
			return
		}
		if len(a.out) == 0 {
			if err := w.Flush(); err != nil {
				a.clientGone()
				for range a.out {
				}
				return
			}
		}
	}
}

func (a *connActor) closeAfterFlush(ctx actor.Context) {
	if a.closed {
		return
	}
	// long polls still waiting are withdrawn (answered at once, with no
	// entry taken): their replies could only go to a connection being
	// closed
	a.hangUp()
	// answer what is in flight first: stop once every reply is written
	if len(a.byseq) == 0 {
		a.closed = true
		a.out <- nil
		ctx.Stop(ctx.Self())
		return
	}
	// the last reply triggers the stop (see complete)
	a.closed = true
}

// hangUp marks the client gone and withdraws the connection's long polls
// waiting at another node, the cursor owner; the local cursor sees
// a.client end.
func (a *connActor) hangUp() {
	a.clientGone()
	for _, r := range a.byseq {
		a.withdraw(r)
	}
}

// withdraw tells the cursor owner to serve r's forwarded GET no entry, if
// one is out there.
func (a *connActor) withdraw(r *request) {
	if r.fwdID == 0 {
		return
	}
	req := &messages.CancelGetReq{From: a.n.cfg.NodeID, ID: r.fwdID}
	a.n.goCall(r.fwdTo, messages.KindCancelGet, req, 2*time.Second,
		func() any { return &messages.CancelGetResp{} }, func(any, error) {})
	r.fwdID = 0
}

func (a *connActor) onFrame(ctx actor.Context, body []byte) {
	if a.closed {
		return
	}
	a.seq++
	r := &request{seq: a.seq, start: a.n.now()}
	req, err := wire.ParseRequest(body)
	a.byseq[r.seq] = r
	a.queue = append(a.queue, r)
	if err != nil {
		r.started = true
		a.complete(ctx, r.seq, wire.AppendReplyError(nil, err.Error()))
		return
	}
	r.req = req
	if e := wire.CheckEntrySizes(&req, a.n.maxEntry()); e != nil {
		// refused before it is routed: nothing of it is written or
		// forwarded, and the next request is read as usual
		r.started = true
		a.complete(ctx, r.seq, wire.AppendReplyError(nil, e.Msg))
		return
	}
	r.pipe = req.Cmd == wire.CmdPut || req.Cmd == wire.CmdMPut
	r.deadline = a.n.now().Add(a.n.cfg.RequestTimeout)
	a.startReady(ctx)
}

// maxEntry is the largest entry this node takes from PUT or MPUT: the
// largest whose one-entry READ or GROUPREAD reply fits the client frame
// limit (wire.MaxEntrySize), so a client with that limit can read every
// entry it wrote, and never more than the WAL stores.
func (n *Node) maxEntry() int {
	return min(wire.MaxEntrySize(n.cfg.MaxFrame), wal.DefaultMaxEntryBytes)
}

// startReady starts queued requests that may run now: the head always; a
// write also while only writes run before it.
func (a *connActor) startReady(ctx actor.Context) {
	allWrites := true
	for _, r := range a.queue {
		if !r.started {
			if !(r == a.queue[0] || (r.pipe && allWrites)) {
				return
			}
			r.started = true
			a.dispatch(ctx, r)
		}
		if !r.pipe {
			allWrites = false
		}
	}
}

// complete records request seq's reply and writes every reply that is next
// in order.
func (a *connActor) complete(ctx actor.Context, seq uint64, frame []byte) {
	a.ready[seq] = frame
	for {
		f, ok := a.ready[a.next]
		if !ok {
			break
		}
		delete(a.ready, a.next)
		if r := a.byseq[a.next]; r != nil {
			a.n.metrics.observe(metricCmd(r), replyResult(f), a.n.now().Sub(r.start))
			a.release(r)
		}
		delete(a.byseq, a.next)
		if len(a.queue) > 0 && a.queue[0].seq == a.next {
			a.queue = a.queue[1:]
		}
		a.next++
		a.out <- f
	}
	if a.closed && len(a.byseq) == 0 {
		a.out <- nil
		ctx.Stop(ctx.Self())
		return
	}
	a.startReady(ctx)
}

// release ends r's hold on the connection (holdOpen): once no long poll
// is in flight, the client's idle time counts from now again.
func (a *connActor) release(r *request) {
	if !r.holding {
		return
	}
	r.holding = false
	a.holding--
	if a.holding == 0 {
		a.readUntil.Store(0)
		a.setReadDeadline()
	}
}

func (a *connActor) reply(ctx actor.Context, r *request, frame []byte) {
	a.complete(ctx, r.seq, frame)
}

func (a *connActor) replyErr(ctx actor.Context, r *request, msg string) {
	a.complete(ctx, r.seq, wire.AppendReplyError(nil, msg))
}

// retry schedules another routing attempt for r with capped backoff, or
// fails it once its deadline has passed.
func (a *connActor) retry(ctx actor.Context, r *request, why string) {
	now := a.n.now()
	if !now.Before(r.deadline) {
		a.replyErr(ctx, r, why)
		return
	}
	r.attempt++
	d := backoff.Exp(5*time.Millisecond, r.attempt, 200*time.Millisecond)
	self, seq := ctx.Self(), r.seq
	a.n.cfg.Clock.AfterFunc(d, func() { a.n.system.Root.Send(self, retryMsg{seq: seq}) })
}

func (a *connActor) dispatch(ctx actor.Context, r *request) {
	n := a.n
	q := &r.req
	switch q.Cmd {
	case wire.CmdRegister:
		rf := q.RF
		if rf == 0 {
			rf = n.cfg.ReplicationFactor
		}
		self, seq := ctx.Self(), r.seq
		n.proposeAsync(self, &raftfsm.CreateTopic{Name: q.Topic, RF: rf}, n.cfg.RequestTimeout, func(err error) any {
			return registeredMsg{seq: seq, err: err}
		})
	case wire.CmdPut, wire.CmdMPut:
		a.dispatchPut(ctx, r)
	case wire.CmdGet, wire.CmdGetW:
		a.dispatchGet(ctx, r)
	case wire.CmdCommit:
		a.dispatchCommit(ctx, r)
	case wire.CmdRead, wire.CmdGroupRead:
		a.dispatchRead(ctx, r)
	case wire.CmdState:
		t := n.host.State().Topics[q.Topic]
		if t == nil {
			a.unknownTopic(ctx, r)
			return
		}
		if hwm, ok := n.localHWM(q.Topic); ok {
			a.reply(ctx, r, n.stateReply(q.Topic, &hwm))
			return
		}
		// the high-water mark lives with the active segment's leader
		self, seq, topic := ctx.Self(), r.seq, q.Topic
		n.goCall(uint64(t.Active().Leader), messages.KindStatus, &messages.StatusReq{Topic: topic}, time.Second,
			func() any { return &messages.StatusResp{} }, func(resp any, err error) {
				var hwm *uint64
				if s, ok := resp.(*messages.StatusResp); ok && err == nil && s.Known {
					hwm = &s.HWM
				}
				n.system.Root.Send(self, replyMsg{seq: seq, frame: n.stateReply(topic, hwm)})
			})
	case wire.CmdMetrics:
		a.reply(ctx, r, n.metricsReply())
	case wire.CmdRetention:
		if n.host.State().Topics[q.Topic] == nil {
			a.unknownTopic(ctx, r)
			return
		}
		p := q.Retention
		self, seq := ctx.Self(), r.seq
		n.proposeAsync(self, &raftfsm.SetRetention{Topic: q.Topic, Retention: raftfsm.Retention{
			MaxAgeMs: int64(p.MaxAgeMs), MaxBytes: int64(p.MaxBytes), MaxSegments: int(min(p.MaxSegments, 1<<30))}},
			n.cfg.RequestTimeout, func(err error) any { return replyMsg{seq: seq, frame: okOrErr(err)} })
	case wire.CmdNodes:
		a.reply(ctx, r, n.nodesReply())
	case wire.CmdRemoveNode:
		self, seq, id := ctx.Self(), r.seq, q.Offset
		go func() {
			rctx, cancel := ctxTimeout(n, n.cfg.RequestTimeout)
			defer cancel()
			err := n.host.RemoveNode(rctx, id)
			if errors.Is(err, raftfsm.ErrUnknownNode) {
				err = wire.UnknownNode(id)
			}
			n.system.Root.Send(self, replyMsg{seq: seq, frame: okOrErr(err)})
		}()
	case wire.CmdLeader:
		t := n.host.State().Topics[q.Topic]
		if t == nil {
			a.unknownTopic(ctx, r)
			return
		}
		act := t.Active()
		addr := ""
		if ni, ok := n.host.State().Nodes[act.Leader]; ok {
			addr = ni.ClientAddr
		}
		a.reply(ctx, r, wire.AppendReplyLeader(nil, act.ID, uint64(act.Leader), addr))
	default:
		a.replyErr(ctx, r, wire.ErrUnknownCommand.Msg)
	}
}

// unknownTopic answers "unknown topic" only after a read barrier: the topic
// may have been registered through another node a moment ago.
func (a *connActor) unknownTopic(ctx actor.Context, r *request) {
	if r.synced {
		a.replyErr(ctx, r, wire.UnknownTopic(r.req.Topic).Msg)
		return
	}
	r.synced = true
	self, seq, n := ctx.Self(), r.seq, a.n
	go func() {
		sctx, cancel := ctxTimeout(n, 5*time.Second)
		defer cancel()
		_ = n.host.syncMeta(sctx)
		n.system.Root.Send(self, retryMsg{seq: seq})
	}()
}

// ---- writes ----

// writeQueue orders one connection's writes to one topic. Writes are sent in
// batches, one batch in flight at a time: a batch keeps its order inside the
// segment leader, and the next batch (everything queued meanwhile) goes only
// once this one is settled, so a retry (leader not ready, segment full,
// leader unreachable) can never let a later write overtake an earlier one.
// Under pipelining the batches grow, which is also what makes it fast.
type writeQueue struct {
	inflight []*request // the batch in flight, in request order
	waiting  []*request // queued behind it, in request order
	retrying bool       // a retry timer is armed
	batch    uint64     // id of the batch in flight
	synced   bool       // a metadata barrier ran since the topic was last unknown
}

const (
	maxWriteBatchEntries = 10000
	maxWriteBatchBytes   = 4 << 20
)

// pendingEntries is how many of a write request's entries are not yet
// appended (entriesOf's length, without building the slice for a PUT).
func pendingEntries(r *request) int {
	if r.req.Cmd == wire.CmdPut {
		return 1 - r.done
	}
	return len(r.req.Entries) - r.done
}

// entriesOf is a write request's entries not yet appended.
func entriesOf(r *request) [][]byte {
	if r.req.Cmd == wire.CmdPut {
		return [][]byte{r.req.Payload}[r.done:]
	}
	return r.req.Entries[r.done:]
}

func (a *connActor) dispatchPut(ctx actor.Context, r *request) {
	q := &r.req
	if r.attempt == 0 {
		a.n.metrics.putBatch.Observe(float64(pendingEntries(r)))
	}
	wq := a.writes[q.Topic]
	if wq == nil {
		wq = &writeQueue{}
		a.writes[q.Topic] = wq
	}
	wq.waiting = append(wq.waiting, r)
	a.sendWrites(ctx, q.Topic)
}

// sendWrites sends the topic's queued writes as one batch, unless a batch
// is in flight or a retry is pending.
func (a *connActor) sendWrites(ctx actor.Context, topic string) {
	wq := a.writes[topic]
	if wq == nil || len(wq.inflight) > 0 || wq.retrying || len(wq.waiting) == 0 {
		return
	}
	n := a.n
	t := n.host.State().Topics[topic]
	if t == nil {
		a.unknownWriteTopic(ctx, topic)
		return
	}
	wq.synced = false
	// take whole requests while the batch stays within its limits
	var entries [][]byte
	bytes := 0
	k := 0
	for k < len(wq.waiting) {
		es := entriesOf(wq.waiting[k])
		size := 0
		for _, e := range es {
			size += len(e)
		}
		if k > 0 && (len(entries)+len(es) > maxWriteBatchEntries || bytes+size > maxWriteBatchBytes) {
			break
		}
		entries = append(entries, es...)
		bytes += size
		k++
	}
	wq.inflight = append(wq.inflight[:0], wq.waiting[:k]...)
	wq.waiting = wq.waiting[k:]
	wq.batch++
	act := t.Active()
	if act.State != raftfsm.SegOpen {
		// failover under way: the next segment opens shortly
		a.retryWrites(ctx, topic, wire.NotLeader(topic, act.ID).Msg)
		return
	}
	self, batch := ctx.Self(), wq.batch
	timeout := max(wq.inflight[0].deadline.Sub(n.now()), time.Second)
	if uint64(act.Leader) == n.cfg.NodeID {
		pid, ok := n.writeTarget(topic, t)
		if !ok {
			a.retryWrites(ctx, topic, wire.NotLeader(topic, act.ID).Msg)
			return
		}
		// The segment actor answers once a quorum holds the writes; if no
		// quorum comes (a follower down, another not catching up), the
		// client is told by the request's deadline, as a forwarded write's
		// is by its call timeout. A late answer is for an old batch and
		// dropped (onPutResult).
		timer := n.cfg.Clock.AfterFunc(timeout, func() {
			n.system.Root.Send(self, putResultMsg{topic: topic, batch: batch, err: errLocalWriteTimeout})
		})
		ctx.Send(pid, putMsg{entries: entries, reply: func(resp messages.PutResp) {
			timer.Stop()
			n.system.Root.Send(self, putResultMsg{topic: topic, batch: batch, resp: resp})
		}})
		return
	}
	n.goCall(uint64(act.Leader), messages.KindPut, &messages.PutReq{Topic: topic, Entries: entries}, timeout,
		func() any { return &messages.PutResp{} }, func(resp any, err error) {
			m := putResultMsg{topic: topic, batch: batch, err: err}
			if p, ok := resp.(*messages.PutResp); ok {
				m.resp = *p
			}
			n.system.Root.Send(self, m)
		})
}

// errLocalWriteTimeout: the local segment leader did not answer a write
// within its request's deadline (no quorum acknowledged it yet); it may
// still be stored.
var errLocalWriteTimeout = &messages.Err{Code: messages.CodeTimeout, Msg: "no quorum held the write within the request timeout"}

// unknownWriteTopic answers the queued writes "unknown topic" after one
// metadata barrier (the topic may have been registered through another
// node a moment ago); the queue keeps their order meanwhile.
func (a *connActor) unknownWriteTopic(ctx actor.Context, topic string) {
	wq := a.writes[topic]
	if wq.synced {
		wq.synced = false
		for _, r := range wq.waiting {
			a.replyErr(ctx, r, wire.UnknownTopic(topic).Msg)
		}
		wq.waiting = nil
		return
	}
	wq.synced, wq.retrying = true, true
	self, n := ctx.Self(), a.n
	go func() {
		sctx, cancel := ctxTimeout(n, 5*time.Second)
		defer cancel()
		_ = n.host.syncMeta(sctx)
		n.system.Root.Send(self, retryWritesMsg{topic: topic})
	}()
}

// retryWrites puts the batch in flight back at the head of the queue and
// sends it again after a back-off; writes past their deadline are answered
// with why (nothing of them was appended).
func (a *connActor) retryWrites(ctx actor.Context, topic, why string) {
	wq := a.writes[topic]
	wq.waiting = append(append([]*request(nil), wq.inflight...), wq.waiting...)
	wq.inflight = wq.inflight[:0]
	now := a.n.now()
	keep := wq.waiting[:0]
	for _, r := range wq.waiting {
		if !now.Before(r.deadline) {
			if len(r.ranges) > 0 {
				// never a retryable-looking error for a batch partly in
				// the log: a client retrying it would duplicate that part
				a.replyErr(ctx, r, fmt.Sprintf("MPUT partly appended (%s); the rest was not: %s",
					strings.TrimPrefix(string(appendMPutReply(r.ranges)[4:]), "OK "), why))
				continue
			}
			a.replyErr(ctx, r, why)
			continue
		}
		keep = append(keep, r)
	}
	wq.waiting = keep
	if len(keep) == 0 || wq.retrying {
		return
	}
	wq.retrying = true
	head := keep[0]
	head.attempt++
	// 4 ms, doubling up to 200 ms: a leader that is about to take writes
	// (a segment just opened) is found again quickly
	d := backoff.Exp(2*time.Millisecond, head.attempt, 200*time.Millisecond)
	self := ctx.Self()
	a.n.cfg.Clock.AfterFunc(d, func() { a.n.system.Root.Send(self, retryWritesMsg{topic: topic}) })
}

func (a *connActor) onPutResult(ctx actor.Context, m putResultMsg) {
	wq := a.writes[m.topic]
	if wq == nil || m.batch != wq.batch || len(wq.inflight) == 0 {
		return
	}
	topic := m.topic
	switch {
	case isCode(m.err, messages.CodeNotSent):
		// the leader could not be reached at all (down, failing over):
		// nothing was written, so route again once the metadata moves on
		a.retryWrites(ctx, topic, "unavailable: "+m.err.Error())
		return
	case m.err != nil:
		// the forward failed: the writes may or may not have happened
		a.failWrites(ctx, topic, "unavailable: "+m.err.Error()+" (outcome unknown)")
		return
	}
	switch m.resp.Err.Code {
	case messages.CodeOK:
	case messages.CodeFull, messages.CodeNotLeader:
		// rejected before any offset was assigned: safe to route again
		a.retryWrites(ctx, topic, wire.NotLeader(topic, a.activeSegment(topic)).Msg)
		return
	case messages.CodeUnknownTopic:
		// the leader's metadata lags ours: route again
		a.retryWrites(ctx, topic, wire.UnknownTopic(topic).Msg)
		return
	default:
		a.failWrites(ctx, topic, m.resp.Err.Msg)
		return
	}
	// hand the accepted offsets out in request order
	off, left := m.resp.First, uint64(m.resp.Accepted)
	done := 0
	for _, r := range wq.inflight {
		need := uint64(pendingEntries(r))
		take := min(need, left)
		if take > 0 {
			r.ranges = appendRange(r.ranges, off, take)
			r.done += int(take)
			off += take
			left -= take
		}
		if take < need {
			break
		}
		done++
	}
	finished := wq.inflight[:done]
	rest := wq.inflight[done:]
	for _, r := range finished {
		if r.req.Cmd == wire.CmdPut {
			a.reply(ctx, r, wire.AppendReplyOK(nil))
		} else {
			a.reply(ctx, r, appendMPutReply(r.ranges))
		}
	}
	if len(rest) > 0 {
		// the segment filled: the rest goes to the next one
		wq.inflight = rest
		a.retryWrites(ctx, topic, wire.NotLeader(topic, a.activeSegment(topic)).Msg)
		return
	}
	wq.inflight = wq.inflight[:0]
	a.sendWrites(ctx, topic)
}

// failWrites answers every write of the batch in flight with msg.
func (a *connActor) failWrites(ctx actor.Context, topic, msg string) {
	wq := a.writes[topic]
	batch := wq.inflight
	wq.inflight = nil
	for _, r := range batch {
		a.replyErr(ctx, r, msg)
	}
	a.sendWrites(ctx, topic)
}

// appendRange adds [first, first+n) to ranges, merging with the last range
// when contiguous.
func appendRange(ranges [][2]uint64, first, n uint64) [][2]uint64 {
	if k := len(ranges); k > 0 && ranges[k-1][0]+ranges[k-1][1] == first {
		ranges[k-1][1] += n
		return ranges
	}
	return append(ranges, [2]uint64{first, n})
}

// appendMPutReply is "OK <first> <count>" for one contiguous range, with
// more "<first> <count>" pairs when a rollover split the batch.
func appendMPutReply(ranges [][2]uint64) []byte {
	body := []byte("OK")
	for _, rg := range ranges {
		body = append(body, ' ')
		body = strconv.AppendUint(body, rg[0], 10)
		body = append(body, ' ')
		body = strconv.AppendUint(body, rg[1], 10)
	}
	return wire.AppendFrame(nil, body)
}

func (a *connActor) activeSegment(topic string) uint64 {
	if t := a.n.host.State().Topics[topic]; t != nil {
		return t.Active().ID
	}
	return 0
}

// ---- cursor reads ----

func (a *connActor) dispatchGet(ctx actor.Context, r *request) {
	n := a.n
	q := &r.req
	if n.host.State().Topics[q.Topic] == nil {
		a.unknownTopic(ctx, r)
		return
	}
	maxN := 1
	if q.Wait > 0 && r.pollUntil.IsZero() {
		r.pollUntil = n.now().Add(q.Wait)
		r.deadline = r.pollUntil.Add(n.cfg.RequestTimeout)
		a.holdOpen(r, r.deadline)
	}
	// a retry (the owner was unreachable or not ready) polls for what is
	// left of the client's wait, and not at all once it is over
	var deadline time.Time
	wait := r.pollUntil.Sub(n.now())
	if wait > 0 {
		deadline = r.pollUntil
	} else {
		wait = 0
	}
	// A long poll is withdrawn when its connection ends (client): it waits
	// for entries still to come, which must not go to a client that is
	// gone. A plain GET takes what is there now, also for a client that
	// half-closed its connection and still reads.
	var client context.Context
	if q.Wait > 0 {
		client = a.client
		if client.Err() != nil {
			// a retry after the client left
			a.reply(ctx, r, wire.AppendReplyError(nil, errClientGone.Msg))
			return
		}
	}
	self, seq := ctx.Self(), r.seq
	done := func(resp messages.GetResp, err error) {
		n.system.Root.Send(self, getResultMsg{seq: seq, resp: resp, err: err})
	}
	owner, _ := n.host.Leader()
	if owner == 0 {
		a.retry(ctx, r, "unavailable: no raft leader")
		return
	}
	if owner == n.cfg.NodeID {
		// the local cursor's refusals (not the owner any more, not started
		// yet) are answers, not lost calls: nothing was consumed
		n.askCursor(q.Topic, "", getMsg{max: maxN, deadline: deadline, client: client,
			reply: func(resp messages.GetResp) { done(resp, nil) }},
			func(err error) { done(messages.GetResp{Err: errToWire(err)}, nil) })
		return
	}
	req := &messages.GetReq{Topic: q.Topic, Max: maxN, WaitMs: wait.Milliseconds()}
	if client != nil {
		r.fwdTo, r.fwdID = owner, n.getIDs.Add(1)
		req.From, req.ID = n.cfg.NodeID, r.fwdID
	}
	// the owner may hold the GET for its long poll, plus fencedWait while
	// the segment is between leaders, plus one read from a replica: give
	// it longer than that, so its answer (EMPTY) arrives rather than our
	// own timeout
	budget := wait + fencedWait + 5*time.Second
	req.BudgetMs = budget.Milliseconds()
	n.goCall(owner, messages.KindGet, req, budget, func() any { return &messages.GetResp{} },
		func(resp any, err error) {
			var g messages.GetResp
			if p, ok := resp.(*messages.GetResp); ok {
				g = *p
			}
			done(g, err)
		})
}

// askCursor hands msg to the local cursor actor of (topic, group), or calls
// fail if this node does not own cursors now.
func (n *Node) askCursor(topic, group string, msg any, fail func(error)) {
	pid, ok := n.topics.Load(topic)
	if !ok {
		if n.host.State().Topics[topic] != nil {
			// registered a moment ago: its actor is being started
			fail(&messages.Err{Code: messages.CodeUnavailable, Msg: "topic " + topic + " not ready yet"})
			return
		}
		fail(&messages.Err{Code: messages.CodeUnknownTopic, Msg: wire.UnknownTopic(topic).Msg})
		return
	}
	n.system.Root.Send(pid.(*actor.PID), cursorReq{group: group, msg: msg, fail: fail})
}

func (a *connActor) onGetResult(ctx actor.Context, m getResultMsg) {
	r, ok := a.byseq[m.seq]
	if !ok {
		return
	}
	if m.err != nil {
		// the call failed (not sent, timed out, connection lost): if the
		// owner still holds the GET, it must not hand it an entry now
		a.withdraw(r)
		if isCode(m.err, messages.CodeNotSent) {
			// the owner was not reached (down, or a raft election under
			// way and our view still names the old one): nothing was
			// consumed, so ask again, whoever owns the cursor by then
			a.retry(ctx, r, "unavailable: "+m.err.Error())
			return
		}
		// sent, and then the call failed: the owner may have handed an
		// entry out for it. Asking again could consume a second one.
		a.replyErr(ctx, r, "unavailable: "+m.err.Error()+" (outcome unknown)")
		return
	}
	r.fwdID = 0 // answered: nothing left to withdraw
	if err := m.resp.Err.AsError(); err != nil {
		switch {
		case isCode(err, messages.CodeNotLeader), isCode(err, messages.CodeUnavailable):
			// the owner's own refusal (not the owner, not ready, data it
			// cannot reach yet): nothing was handed out
			a.retry(ctx, r, "unavailable: "+err.Error())
		case isCode(err, messages.CodeUnknownTopic):
			a.replyErr(ctx, r, wire.UnknownTopic(r.req.Topic).Msg)
		default:
			a.replyErr(ctx, r, "unavailable: "+err.Error())
		}
		return
	}
	if len(m.resp.Entries) == 0 {
		a.reply(ctx, r, wire.AppendReplyEmpty(nil))
		return
	}
	a.reply(ctx, r, wire.AppendReplyValue(nil, m.resp.Entries[0]))
}

// dispatchCommit records a consumer group's position through raft.
func (a *connActor) dispatchCommit(ctx actor.Context, r *request) {
	n := a.n
	q := &r.req
	if n.host.State().Topics[q.Topic] == nil {
		a.unknownTopic(ctx, r)
		return
	}
	self, seq := ctx.Self(), r.seq
	n.proposeAsync(self, &raftfsm.CommitCursor{Topic: q.Topic, Group: q.Group, Offset: q.Offset}, n.cfg.RequestTimeout,
		func(err error) any { return replyMsg{seq: seq, frame: okOrErr(err)} })
}

func okOrErr(err error) []byte {
	if err != nil {
		return wire.AppendReplyError(nil, clientError(err))
	}
	return wire.AppendReplyOK(nil)
}

// ---- reads by offset ----

// dispatchRead serves READ (from a given offset) and GROUPREAD (from the
// group's committed position, which it does not move): non-destructive
// reads from a replica holding the segment. A segment between leaders
// (failover, restart) is retried until the request's deadline.
func (a *connActor) dispatchRead(ctx actor.Context, r *request) {
	n := a.n
	q := &r.req
	t := n.host.State().Topics[q.Topic]
	if t == nil {
		a.unknownTopic(ctx, r)
		return
	}
	offset := q.Offset
	if q.Cmd == wire.CmdGroupRead && !r.synced {
		// the group's position may have been committed through another
		// node a moment ago: read it after a metadata barrier
		r.synced = true
		self, seq := ctx.Self(), r.seq
		go func() {
			sctx, cancel := ctxTimeout(n, 5*time.Second)
			defer cancel()
			_ = n.host.syncMeta(sctx)
			n.system.Root.Send(self, retryMsg{seq: seq})
		}()
		return
	}
	if q.Cmd == wire.CmdGroupRead {
		offset = max(t.Groups[q.Group], t.FirstOffset())
		if q.Wait > 0 && r.attempt == 0 && !r.waitSet {
			r.waitSet = true
			r.deadline = n.now().Add(q.Wait + n.cfg.RequestTimeout)
			a.holdOpen(r, r.deadline)
		}
	}
	if first := t.FirstOffset(); offset < first {
		a.replyErr(ctx, r, fmt.Sprintf("offset %d was deleted by retention; the first offset is %d", offset, first))
		return
	}
	seg, idx, ok := t.Locate(offset)
	if !ok {
		a.reply(ctx, r, wire.AppendReplyEmpty(nil))
		return
	}
	if seg.State == raftfsm.SegFenced {
		a.retry(ctx, r, "unavailable: segment under recovery")
		return
	}
	node := uint64(seg.Leader)
	if seg.Sealed() {
		node = n.pickReplica(seg, r.attempt)
	}
	var wait time.Duration
	if q.Cmd == wire.CmdGroupRead && !seg.Sealed() {
		wait = max(0, min(q.Wait, r.deadline.Sub(n.now())-n.cfg.RequestTimeout))
	}
	maxBytes := n.cfg.MaxFrame - 64
	req := &messages.ReadReq{Topic: q.Topic, Segment: seg.ID, From: idx, Max: max(q.Max, 1), MaxBytes: maxBytes,
		WaitMs: wait.Milliseconds()}
	self, seq, base := ctx.Self(), r.seq, seg.Base
	sealed := seg.Sealed()
	n.goCall(node, messages.KindRead, req, wait+5*time.Second, func() any { return &messages.ReadResp{} },
		func(resp any, err error) {
			var rr messages.ReadResp
			if p, ok := resp.(*messages.ReadResp); ok {
				rr = *p
			}
			if err == nil {
				err = rr.Err.AsError()
			}
			n.system.Root.Send(self, readResultMsg{seq: seq, base: base, idx: idx, resp: rr, err: err, sealed: sealed})
		})
}

type readResultMsg struct {
	seq       uint64
	base, idx uint64
	resp      messages.ReadResp
	err       error
	sealed    bool
}

func (a *connActor) onReadResult(ctx actor.Context, m readResultMsg) {
	r, ok := a.byseq[m.seq]
	if !ok {
		return
	}
	if !m.sealed && (notServingYet(m.err) || isCode(m.err, messages.CodeNotSent) || isCode(m.err, messages.CodeTimeout)) {
		// the active segment's leader is not serving (just opened,
		// restarting, or about to be fenced), or cannot be reached (down,
		// until the segment fails over): try again until the deadline. A
		// read moves nothing, so a call that may have reached it is
		// repeated as safely as one that did not.
		a.retry(ctx, r, "unavailable: "+m.err.Error())
		return
	}
	if !m.sealed && m.err == nil && len(m.resp.Entries) == 0 && m.resp.Sealed {
		// the segment our metadata calls active has been sealed (or is
		// full) at the offset read: the entries go on in a segment this
		// node has not applied yet. EMPTY would tell the reader it is at
		// the end; retry once the metadata has caught up.
		a.retry(ctx, r, "unavailable: the next segment is not known here yet")
		return
	}
	if m.err != nil || (m.sealed && len(m.resp.Entries) == 0) {
		if r.attempt < 3 && a.n.now().Before(r.deadline) {
			r.attempt++
			a.dispatch(ctx, r)
			return
		}
		msg := "no replica could serve the read"
		if m.err != nil {
			msg = m.err.Error()
		}
		a.replyErr(ctx, r, "unavailable: "+msg)
		return
	}
	// the replica's byte budget counts payloads only: drop the entries
	// whose length prefixes would take the reply past the client's frame
	// limit (the reader asks again from first+count)
	first := m.base + m.idx
	entries := m.resp.Entries[:wire.BatchFit(first, m.resp.Entries, a.n.cfg.MaxFrame)]
	a.n.metrics.readEntries.Add(float64(len(entries)))
	a.reply(ctx, r, wire.AppendReplyBatch(nil, first, entries))
}

// metricCmd labels a request for metrics ("invalid" when it did not parse).
func metricCmd(r *request) string {
	if r.req.Cmd == "" {
		return "invalid"
	}
	return r.req.Cmd
}

// replyResult classifies a reply frame for metrics: ok, empty or error.
func replyResult(frame []byte) string {
	if len(frame) < 4 {
		return "error"
	}
	body := frame[4:]
	switch {
	case len(body) >= 3 && string(body[:3]) == "ERR":
		return "error"
	case string(body) == "EMPTY":
		return "empty"
	}
	return "ok"
}

// pickReplica chooses which replica serves a sealed segment: this node if
// it holds it, else live replicas in turn (attempt rotates on failure).
func (n *Node) pickReplica(seg *raftfsm.Segment, attempt int) uint64 {
	self := raftfsm.NodeID(n.cfg.NodeID)
	st := n.host.State()
	var live []uint64
	for _, r := range seg.Replicas {
		if r == self && attempt == 0 {
			return uint64(r)
		}
		if ni, ok := st.Nodes[r]; ok && ni.Live {
			live = append(live, uint64(r))
		}
	}
	if len(live) == 0 {
		return uint64(seg.Replicas[attempt%len(seg.Replicas)])
	}
	return live[attempt%len(live)]
}

// clientError is the text after "ERR " for an internal error.
func clientError(err error) string {
	var we *wire.Error
	if errors.As(err, &we) {
		return we.Msg
	}
	var me *messages.Err
	if errors.As(err, &me) {
		return me.Msg
	}
	switch {
	case errors.Is(err, raftfsm.ErrUnknownTopic):
		return err.Error()
	case errors.Is(err, ErrNoLeader), errors.Is(err, ErrProposalTimeout):
		return "unavailable: " + err.Error()
	}
	return err.Error()
}
