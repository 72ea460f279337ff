package actors

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/walrus-go/walrus/internal/backoff"
	"github.com/walrus-go/walrus/messages"
	"github.com/walrus-go/walrus/raftfsm"
	"github.com/walrus-go/walrus/segment"
	"github.com/walrus-go/walrus/wal"
	"github.com/walrus-go/walrus/wire"
)

// Messages of a segment actor. reply callbacks must not block: they Send to
// an actor or complete a waiting RPC through a buffered channel.
type (
	segMetaMsg struct {
		topic    *raftfsm.Topic
		seg      *raftfsm.Segment
		caughtUp bool
	}
	putMsg struct {
		entries [][]byte
		reply   func(messages.PutResp)
	}
	replicateMsg struct {
		req   *messages.ReplicateReq
		reply func(messages.ReplicateResp)
	}
	readMsg struct {
		req   *messages.ReadReq
		raw   bool
		reply func(messages.ReadResp)
	}
	fenceMsg struct {
		req   *messages.FenceReq
		reply func(messages.FenceResp)
	}
	syncMsg struct {
		req   *messages.SyncReq
		reply func(messages.SyncResp)
	}
	walDoneMsg struct {
		end uint64
		err error
		at  time.Time // when it was queued
		// follower appends answer the leader once durable
		reply func(messages.ReplicateResp)
	}
	replicatedMsg struct {
		follower uint64
		resp     *messages.ReplicateResp
		err      error
		sentAt   time.Time
	}
	fetchedMsg struct {
		from    uint64
		entries [][]byte
		err     error
		source  uint64
	}
	sealDoneMsg   struct{ err error }
	writeFlushMsg struct{}
	rolloverMsg   struct{ reply func(messages.RolloverResp) }
	segTickMsg    struct{}
	reconcileMsg  struct{}
	readTimeout   struct{ id uint64 }
	// retryPumpMsg: the pump timer armed as number seq ran out
	retryPumpMsg struct{ seq uint64 }
)

type segRole int

const (
	roleNone       segRole = iota // waiting for metadata / catch-up
	roleLeader                    // leads the open segment: assigns offsets
	roleFollower                  // replica of an open segment
	roleFenced                    // recovery under way: no writes, answers fence/sync
	roleRecovering                // this node led it in an earlier life: recovery seals it
	roleSealed                    // final; serves reads
)

func (r segRole) String() string {
	return [...]string{"none", "leader", "follower", "fenced", "recovering", "sealed"}[r]
}

// ReplicateCallTimeout is how long a segment leader waits for a follower's
// answer to a replication batch before it counts the batch lost and sends
// it again (the testkit waits this out before it reads a final log).
const ReplicateCallTimeout = 5 * time.Second

const (
	maxReplicateEntries = 1024
	maxReplicateBytes   = 4 << 20
	maxInflightPerPeer  = 8
	// trailingBatch: a follower outside the write quorum gets a partial
	// batch once this many entries wait for it (or the wait ran out)
	trailingBatch    = 256
	maxBufferedBytes = 64 << 20
)

type putWaiter struct {
	reply    func(messages.PutResp)
	first    uint64
	accepted int
}

// sendFailures counts a follower's failed batches since its last success
// (at: when the last one was counted).
type sendFailures struct {
	n  int
	at time.Time
}

type parkedRead struct {
	id    uint64
	msg   readMsg
	timer interface{ Stop() bool }
}

// segmentActor owns one segment replica on this node. Its role follows the
// metadata: leader of an open segment it opened in this process lifetime,
// follower of someone else's open segment, fenced while recovery runs,
// sealed once final. See docs/replication.md.
type segmentActor struct {
	n     *Node
	topic string
	id    uint64
	key   wal.SegmentKey
	self  *actor.PID

	meta     *raftfsm.Segment
	role     segRole
	caughtUp bool
	// hasFile: the WAL was seen to hold this segment (ensureFile need not
	// ask it again on every replicated batch); cleared when an append
	// finds it gone.
	hasFile bool

	// fenced is the highest epoch this replica was fenced at (by metadata or
	// a recovery's Fence RPC): appends from older epochs are refused.
	fenced uint64
	// end counts entries held or queued in the WAL; durable those on disk.
	end, durable uint64
	pending      int
	whenIdle     []func()
	// hwm is what may be read: the leader's quorum mark, or what a follower
	// was told of it, or the sealed count.
	hwm uint64

	// leader state
	ld       *segment.Leader
	buf      entryBuf // entries [buf.base, ld.Next()) kept for replication
	reqSeq   uint64
	waiters  map[uint64]putWaiter
	backoff  map[uint64]time.Time
	failures map[uint64]sendFailures // per follower, since its last success
	// pumpTimer pumps again when pumpWake says (see armPump)
	pumpTimer interface{ Stop() bool }
	pumpWake  wakeup
	// sentAt: when each unanswered batch to a follower went, oldest
	// first (its length is how many are in flight); heldSince: since
	// when a trailing follower's partial batch has been held back (see
	// holdTrailing)
	sentAt    map[uint64][]time.Time
	heldSince map[uint64]time.Time
	// flushed: entries below it were handed to the WAL; flushArmed: a
	// writeFlushMsg is on its way (see onPut)
	flushed    uint64
	flushArmed bool
	sealing    bool
	monitor    interface{ Stop() bool }

	stopping bool

	// reads waiting for the high-water mark to move (long poll)
	parked  []parkedRead
	readSeq uint64

	// reconcile / sync state
	fetching   bool
	fetchGoal  uint64
	syncWait   []func(messages.SyncResp)
	syncSource uint64
	sealedWAL  bool
}

func newSegmentActor(n *Node, topic string, id uint64) *segmentActor {
	return &segmentActor{n: n, topic: topic, id: id, key: wal.SegmentKey{Topic: topic, Segment: id},
		waiters: map[uint64]putWaiter{}, backoff: map[uint64]time.Time{},
		failures: map[uint64]sendFailures{}, sentAt: map[uint64][]time.Time{}, heldSince: map[uint64]time.Time{}}
}

func (s *segmentActor) log() []any {
	return []any{"topic", s.topic, "segment", s.id, "role", s.role.String()}
}

func (s *segmentActor) Receive(ctx actor.Context) {
	switch m := ctx.Message().(type) {
	case *actor.Started:
		s.self = ctx.Self()
		s.n.segments.Store(s.key, s.self)
		s.loadLocal()
		s.n.log.Debug("segment actor started", append(s.log(), "count", s.durable)...)
	case *actor.Restarting, *actor.Stopping:
		if _, ok := m.(*actor.Stopping); ok {
			s.n.segments.CompareAndDelete(s.key, s.self)
		}
		s.stopping = true
		s.stopLeading(messages.Err{Code: messages.CodeUnavailable, Msg: "unavailable: segment leader stopping (outcome unknown)"})
		if s.monitor != nil {
			s.monitor.Stop()
		}
		for _, p := range s.parked {
			p.timer.Stop()
			s.answerRead(p.msg)
		}
		s.parked = nil
	case segMetaMsg:
		if !s.stopping {
			s.onMeta(m)
		}
	case putMsg:
		s.onPut(m)
	case writeFlushMsg:
		s.onFlush()
	case rolloverMsg:
		if s.role != roleLeader || s.ld == nil {
			m.reply(messages.RolloverResp{Err: messages.Err{Code: messages.CodeNotLeader, Msg: "not leading this segment"}})
			return
		}
		// writes already accepted finish; new ones go to the next segment
		s.ld.SealHere()
		s.maybeSeal()
		m.reply(messages.RolloverResp{})
	case replicateMsg:
		s.onReplicate(m)
	case walDoneMsg:
		s.onWALDone(m)
	case replicatedMsg:
		s.onReplicated(m)
	case retryPumpMsg:
		if s.pumpWake.fired(m.seq) {
			s.pump()
		}
	case readMsg:
		s.onRead(m)
	case readTimeout:
		s.onReadTimeout(m.id)
	case fenceMsg:
		s.onFence(m)
	case syncMsg:
		s.onSync(m)
	case fetchedMsg:
		s.onFetched(m)
	case sealDoneMsg:
		s.sealing = false
		if m.err != nil && !errors.Is(m.err, raftfsm.ErrStale) {
			s.n.log.Warn("seal proposal failed; the monitor retries", append(s.log(), "err", m.err)...)
		}
	case segTickMsg:
		if s.role == roleLeader {
			s.maybeSeal()
			s.armMonitor()
		}
	case reconcileMsg:
		if s.role == roleSealed {
			s.reconcileSealed()
		}
	}
}

// loadLocal reads what the WAL holds for this segment.
func (s *segmentActor) loadLocal() {
	info, err := s.n.wal.Info(s.key)
	if err != nil {
		return
	}
	s.end, s.durable = info.Count, info.Count
	if info.Sealed {
		s.sealedWAL = true
		s.hwm = info.Count
	}
}

func (s *segmentActor) hasLocalFile() bool {
	_, err := s.n.wal.Info(s.key)
	return err == nil
}

func (s *segmentActor) onMeta(m segMetaMsg) {
	s.meta = m.seg
	s.caughtUp = s.caughtUp || m.caughtUp
	if m.seg.Epoch > s.fenced && m.seg.State != raftfsm.SegOpen {
		s.fenced = m.seg.Epoch
	}
	self := raftfsm.NodeID(s.n.cfg.NodeID)
	switch m.seg.State {
	case raftfsm.SegSealed:
		if s.role == roleLeader {
			s.stopLeadingSealed(m.seg.Count)
		}
		s.role = roleSealed
		s.reconcileSealed()
	case raftfsm.SegFenced:
		if s.role == roleLeader {
			s.stopLeading(messages.Err{Code: messages.CodeUnavailable, Msg: "segment fenced for recovery: outcome unknown"})
		}
		if s.role != roleRecovering {
			s.role = roleFenced
		}
		if m.seg.Leader == self && s.caughtUp {
			// the controller may have started recovery already; running it
			// here too is harmless (every step is guarded by the epoch)
			s.n.startRecovery(s.topic, s.id)
		}
	case raftfsm.SegOpen:
		if m.seg.Leader != self {
			if s.role == roleNone || s.role == roleFenced {
				s.role = roleFollower
				_ = s.ensureFile() // retried on the first replicated batch
			}
			return
		}
		if s.role == roleLeader || s.role == roleRecovering || !s.caughtUp {
			return
		}
		if s.hasLocalFile() || s.n.inherited(s.topic, s.id) {
			// we led it before this process started: entries may sit on
			// followers that our disk lost; recovery seals it instead
			s.role = roleRecovering
			s.n.log.Info("sealing a segment led before restart", s.log()...)
			s.n.startRecovery(s.topic, s.id)
			return
		}
		s.becomeLeader(m.seg)
	}
}

// ensureFile creates the segment's file if this node has none yet; an
// error (disk full, a fenced WAL) leaves the replica unable to take entries
// until a later call succeeds.
func (s *segmentActor) ensureFile() error {
	if s.hasFile || s.hasLocalFile() {
		s.hasFile = true
		return nil
	}
	if err := s.n.wal.Create(s.key); err != nil {
		s.n.log.Error("create segment file", append(s.log(), "err", err)...)
		return err
	}
	s.hasFile = true
	return nil
}

func (s *segmentActor) becomeLeader(seg *raftfsm.Segment) {
	if err := s.n.wal.Create(s.key); err != nil {
		// Nothing was written to it: hand it to recovery, which seals it
		// (empty) so the next segment opens on another node. Waiting here
		// would leave the topic stuck: this node is alive, so the
		// controller would never fail the segment over.
		s.n.log.Error("create segment file; not leading, sealing it through recovery", append(s.log(), "err", err)...)
		s.role = roleRecovering
		s.n.startRecovery(s.topic, s.id)
		return
	}
	reps := make([]uint64, len(seg.Replicas))
	for i, r := range seg.Replicas {
		reps[i] = uint64(r)
	}
	s.ld = segment.NewLeader(segment.LeaderConfig{Self: s.n.cfg.NodeID, Replicas: reps,
		Limit: s.n.cfg.MaxSegmentEntries, AckBeforeQuorum: s.n.cfg.AckBeforeQuorum})
	s.role = roleLeader
	s.fenced = seg.Epoch
	s.end, s.durable, s.hwm, s.flushed = 0, 0, 0, 0
	s.buf.reset(0)
	s.n.leaders.Store(s.topic, s.self)
	s.n.publishHWM(s.topic, seg.Base)
	s.armMonitor()
	s.n.log.Debug("leading segment", s.log()...)
}

// armMonitor schedules the rollover monitor's next look
// (WALRUS_MONITOR_CHECK_MS): it re-proposes a seal the write path missed.
func (s *segmentActor) armMonitor() {
	self := s.self
	s.monitor = s.n.cfg.Clock.AfterFunc(s.n.cfg.MonitorInterval, func() { s.n.system.Root.Send(self, segTickMsg{}) })
}

// stopLeading ends the leader role: waiting writers get e (their entries
// may or may not survive: recovery decides).
func (s *segmentActor) stopLeading(e messages.Err) {
	if s.ld == nil {
		return
	}
	for _, id := range s.ld.Close() {
		if w, ok := s.waiters[id]; ok {
			w.reply(messages.PutResp{Err: e})
			delete(s.waiters, id)
		}
	}
	s.n.leaders.CompareAndDelete(s.topic, s.self)
	s.n.metrics.dropLag(s.topic)
	s.ld = nil
	s.buf.reset(0)
	if s.monitor != nil {
		s.monitor.Stop()
		s.monitor = nil
	}
}

// stopLeadingSealed ends the leader role when metadata shows the segment
// sealed while writers still wait (a recovery sealed it under a paused or
// cut-off leader that missed the fence). The seal's count says exactly what
// is in the log: entries below it are there (recovery made a quorum hold
// them), so their writers get OK; entries at or above it are not, so their
// writers get NotLeader and are routed to the next segment; a batch the
// count cuts through is partly accepted. Answering "not the leader" for
// entries that are in the log would make the entry node send them again.
func (s *segmentActor) stopLeadingSealed(count uint64) {
	if s.ld == nil {
		return
	}
	for _, id := range s.ld.Close() {
		w, ok := s.waiters[id]
		if !ok {
			continue
		}
		delete(s.waiters, id)
		end := w.first + uint64(w.accepted)
		switch {
		case end <= count:
			s.n.metrics.putEntries.Add(float64(w.accepted))
			w.reply(messages.PutResp{First: s.meta.Base + w.first, Accepted: w.accepted, Segment: s.id})
		case w.first >= count:
			w.reply(messages.PutResp{Err: messages.Err{Code: messages.CodeNotLeader,
				Msg: wire.NotLeader(s.topic, s.id).Msg + " (sealed)"}})
		default:
			k := int(count - w.first)
			s.n.metrics.putEntries.Add(float64(k))
			w.reply(messages.PutResp{First: s.meta.Base + w.first, Accepted: k, Segment: s.id})
		}
	}
	s.stopLeading(messages.Err{Code: messages.CodeNotLeader, Msg: "segment sealed"})
}

// ---- write path (leader) ----

func (s *segmentActor) onPut(m putMsg) {
	if len(m.entries) == 0 {
		// (clients cannot send one: MPUT refuses a zero count; a peer can)
		m.reply(messages.PutResp{Err: messages.Err{Code: messages.CodeInvalid, Msg: "a write needs at least one entry"}})
		return
	}
	if s.role != roleLeader || s.ld == nil {
		m.reply(messages.PutResp{Err: messages.Err{Code: messages.CodeNotLeader, Leader: s.leaderHint(),
			Msg: wire.NotLeader(s.topic, s.id).Msg}})
		return
	}
	if !s.n.lease.valid(s.n.now()) {
		m.reply(messages.PutResp{Err: messages.Err{Code: messages.CodeNotLeader,
			Msg: wire.NotLeader(s.topic, s.id).Msg + " (lease expired)"}})
		return
	}
	first, k, err := s.ld.Assign(len(m.entries))
	if err != nil {
		m.reply(messages.PutResp{Err: messages.Err{Code: messages.CodeFull, Msg: "segment full", Leader: s.leaderHint()}})
		s.maybeSeal()
		return
	}
	ents := m.entries[:k]
	s.buf.append(ents)
	s.reqSeq++
	id := s.reqSeq
	s.waiters[id] = putWaiter{reply: m.reply, first: first, accepted: k}
	s.end = first + uint64(k)
	s.ld.Await(id, first+uint64(k))
	// Writes already waiting in the mailbox join this one: the WAL append
	// and the replication sends happen once they are all assigned (the
	// flush message queues behind them), one append and one batch per
	// follower for the lot.
	if !s.flushArmed {
		s.flushArmed = true
		s.n.system.Root.Send(s.self, writeFlushMsg{})
	}
}

// onFlush hands the entries assigned since the last flush to the WAL and
// sends them to the followers.
func (s *segmentActor) onFlush() {
	s.flushArmed = false
	if s.ld == nil || s.end <= s.flushed {
		return
	}
	ents := s.buf.get(s.flushed, s.end)
	s.appendLocal(s.flushed, ents, nil)
	s.flushed = s.end
	s.pump()
}

// appendLocal queues entries at offset first in the WAL; the result comes
// back as a walDoneMsg.
func (s *segmentActor) appendLocal(first uint64, ents [][]byte, reply func(messages.ReplicateResp)) {
	s.pending++
	self := s.self
	sys := s.n.system
	at := s.n.now()
	s.n.wal.AppendAt(s.key, first, ents, func(_ uint64, err error) {
		sys.Root.Send(self, walDoneMsg{end: first + uint64(len(ents)), err: err, reply: reply, at: at})
	})
}

func (s *segmentActor) onWALDone(m walDoneMsg) {
	s.pending--
	s.n.metrics.walAppend.Observe(s.n.now().Sub(m.at).Seconds())
	if m.err != nil {
		s.n.metrics.walErrors.Inc()
		s.n.log.Error("wal append failed", append(s.log(), "err", m.err)...)
		if info, err := s.n.wal.Info(s.key); err == nil {
			s.end, s.durable = info.Count, info.Count
		} else {
			s.end = s.durable // no file: nothing beyond what was durable
			s.hasFile = false
		}
		if m.reply != nil {
			m.reply(messages.ReplicateResp{Err: errToWire(m.err), Durable: s.durable})
		}
		if s.role == roleLeader {
			// our copy lost entries the followers may hold: stop and let
			// recovery pick the end from the replicas
			e := errToWire(m.err)
			// the followers may hold what our disk refused: recovery may
			// keep it
			e.Msg = "unavailable: " + e.Msg + " (outcome unknown)"
			s.stopLeading(e)
			s.role = roleRecovering
			s.n.startRecovery(s.topic, s.id)
		}
	} else if m.end > s.durable {
		s.durable = m.end
		if m.reply != nil {
			m.reply(messages.ReplicateResp{Durable: s.durable})
		}
		if s.role == roleLeader && s.ld != nil {
			s.advance(s.ld.Durable(s.n.cfg.NodeID, s.durable))
		}
	} else if m.reply != nil {
		m.reply(messages.ReplicateResp{Durable: s.durable})
	}
	if s.pending == 0 {
		fns := s.whenIdle
		s.whenIdle = nil
		for _, f := range fns {
			f()
		}
	}
}

// advance follows a durability report: it moves the readable mark to the
// leader's high-water mark, answers the writers it released, wakes waiting
// readers and seals once the segment is full and fully replicated.
func (s *segmentActor) advance(ids []uint64) {
	if s.ld == nil {
		return
	}
	moved := s.ld.HWM() > s.hwm
	s.hwm = s.ld.HWM()
	if moved {
		s.n.publishHWM(s.topic, s.meta.Base+s.hwm)
	}
	for _, id := range ids {
		w, ok := s.waiters[id]
		if !ok {
			continue
		}
		delete(s.waiters, id)
		s.n.metrics.putEntries.Add(float64(w.accepted))
		w.reply(messages.PutResp{First: s.meta.Base + w.first, Accepted: w.accepted, Segment: s.id})
	}
	if moved {
		s.wakeReaders()
		s.trimBuffer()
		s.maybeSeal()
	}
}

// pump sends each follower what it lacks: full batches pipelined up to
// maxInflightPerPeer, a partial one only when nothing is in flight to it
// (segment.SendNow).
func (s *segmentActor) pump() {
	if s.ld == nil {
		return
	}
	now := s.n.now()
	for _, f := range s.ld.Followers() {
		if until, ok := s.backoff[f]; ok && now.Before(until) {
			s.armPump(until.Sub(now))
			continue
		}
		for len(s.sentAt[f]) < maxInflightPerPeer {
			from, to := s.ld.ToSend(f, maxReplicateEntries)
			if from >= to {
				break
			}
			if len(s.sentAt[f]) == 0 && s.holdTrailing(f, to-from, now) {
				break
			}
			delete(s.heldSince, f)
			ents, err := s.entriesFor(from, to)
			if err != nil || len(ents) == 0 {
				s.n.log.Warn("read for replication", append(s.log(), "from", from, "err", err)...)
				s.backoff[f] = now.Add(100 * time.Millisecond)
				s.armPump(100 * time.Millisecond)
				break
			}
			full := len(ents) < int(to-from) || to-from == maxReplicateEntries // capped by bytes or by count
			if !segment.SendNow(len(s.sentAt[f]), maxInflightPerPeer, full) {
				break
			}
			to = from + uint64(len(ents))
			s.ld.Sent(f, to)
			s.sendReplicate(f, from, ents)
		}
	}
}

// holdTrailing says whether pending entries for follower f, which has
// nothing in flight, wait for a bigger batch (segment.HoldTrailing): f is
// outside the write quorum's eager followers (segment.Leader.Eager; a
// follower counts as slow once a batch to it has gone unanswered for the
// wait, or failed since its last success, or sending to it is backing
// off) and has been held back less than the wait. It arms the pump for
// when the wait runs out.
func (s *segmentActor) holdTrailing(f, pending uint64, now time.Time) bool {
	wait := s.n.cfg.TrailingReplicaWait
	if wait <= 0 {
		return false
	}
	eager := s.ld.Eager(f, func(r uint64) bool {
		var oldest time.Time
		if ts := s.sentAt[r]; len(ts) > 0 {
			oldest = ts[0]
		}
		return segment.FollowerSlow(s.failures[r].n > 0, s.backoff[r], oldest, now, wait)
	})
	since, ok := s.heldSince[f]
	if !ok {
		since = now
	}
	if !segment.HoldTrailing(eager, pending, trailingBatch, now.Sub(since), wait) {
		return false
	}
	s.heldSince[f] = since
	s.armPump(wait - now.Sub(since))
	return true
}

// armPump has the pump run again after d, unless the armed timer runs out
// no later than that (wakeup says which timer counts).
func (s *segmentActor) armPump(d time.Duration) {
	seq, start := s.pumpWake.arm(s.n.now().Add(d))
	if !start {
		return
	}
	if s.pumpTimer != nil {
		s.pumpTimer.Stop()
	}
	self := s.self
	s.pumpTimer = s.n.cfg.Clock.AfterFunc(d, func() { s.n.system.Root.Send(self, retryPumpMsg{seq: seq}) })
}

// wakeup keeps one timer's worth of "act again at": arming an earlier
// time replaces the armed timer, a later one is covered by it. A replaced
// timer may still fire (its Stop came too late); fired tells it from the
// armed one by its number, and only the armed one counts. Were every
// firing to count, each would clear the armed state and could arm a timer
// of its own, and timers would multiply with every replacement.
type wakeup struct {
	armed bool
	at    time.Time
	seq   uint64
}

// arm asks for a wake-up at at; start says a timer numbered seq must be
// started for it (none is armed, or the armed one is later).
func (w *wakeup) arm(at time.Time) (seq uint64, start bool) {
	if w.armed && !at.Before(w.at) {
		return 0, false
	}
	w.seq++
	w.armed, w.at = true, at
	return w.seq, true
}

// fired reports whether timer seq is the armed one, which is then
// disarmed; a replaced timer's firing is stale and changes nothing.
func (w *wakeup) fired(seq uint64) bool {
	if !w.armed || seq != w.seq {
		return false
	}
	w.armed = false
	return true
}

// entriesFor returns entries [from, to) from the replication buffer, or
// from the WAL when the buffer was trimmed past them (a follower far behind).
func (s *segmentActor) entriesFor(from, to uint64) ([][]byte, error) {
	if from >= s.buf.base {
		return capBytes(s.buf.get(from, to), maxReplicateBytes), nil
	}
	if to > s.buf.base {
		to = s.buf.base
	}
	if to > s.durable {
		to = s.durable
	}
	if from >= to {
		return nil, nil
	}
	return s.n.wal.Read(s.key, from, int(to-from), maxReplicateBytes)
}

func capBytes(ents [][]byte, limit int) [][]byte {
	total := 0
	for i, e := range ents {
		total += len(e)
		if total > limit && i > 0 {
			return ents[:i]
		}
	}
	return ents
}

func (s *segmentActor) sendReplicate(f uint64, from uint64, ents [][]byte) {
	reps := make([]uint64, len(s.meta.Replicas))
	for i, r := range s.meta.Replicas {
		reps[i] = uint64(r)
	}
	req := &messages.ReplicateReq{Topic: s.topic, Segment: s.id, Epoch: s.meta.Epoch, Leader: s.n.cfg.NodeID,
		Replicas: reps, First: from, Entries: ents, HWM: s.hwm}
	self, sentAt := s.self, s.n.now()
	s.sentAt[f] = append(s.sentAt[f], sentAt)
	s.n.goCall(f, messages.KindReplicate, req, ReplicateCallTimeout, func() any { return &messages.ReplicateResp{} },
		func(resp any, err error) {
			r, _ := resp.(*messages.ReplicateResp)
			s.n.system.Root.Send(self, replicatedMsg{follower: f, resp: r, err: err, sentAt: sentAt})
		})
}

func (s *segmentActor) onReplicated(m replicatedMsg) {
	if i := slices.IndexFunc(s.sentAt[m.follower], m.sentAt.Equal); i >= 0 {
		s.sentAt[m.follower] = slices.Delete(s.sentAt[m.follower], i, i+1)
	}
	if s.ld == nil {
		return
	}
	switch {
	case m.err != nil:
		s.ld.Rewind(m.follower, 0)
		s.backOff(m.follower, m.sentAt)
	case m.resp.Err.Code == messages.CodeGap:
		if s.ld.RewindGap(m.follower, m.resp.Err.Have) {
			s.n.log.Warn("a follower holds fewer entries of this segment than it acknowledged (its disk restored from a backup, or wiped?): sending them again",
				"topic", s.topic, "segment", s.id, "follower", m.follower, "holds", m.resp.Err.Have)
		}
	case m.resp.Err.Code == messages.CodeStaleEpoch:
		// a recovery fenced the follower: we are deposed
		s.stopLeading(messages.Err{Code: messages.CodeUnavailable, Msg: "segment fenced for recovery: outcome unknown"})
		s.role = roleFenced
		return
	case m.resp.Err.Code != messages.CodeOK:
		s.ld.Rewind(m.follower, m.resp.Durable)
		s.backOff(m.follower, m.sentAt)
	default:
		delete(s.failures, m.follower)
		s.n.metrics.replicaAck.Observe(s.n.now().Sub(m.sentAt).Seconds())
		s.advance(s.ld.Durable(m.follower, m.resp.Durable))
	}
	if s.ld != nil {
		s.n.metrics.setLag(s.topic, s.ld.Lag())
	}
	s.pump()
}

// backOff pauses sending to follower f after a batch sent at sentAt
// failed: 1 ms, doubling with each new failure up to 100 ms, until a batch
// succeeds. The common failure is a follower that has not applied the
// metadata of a segment that just opened ("no replica ... on this node"),
// which a few milliseconds cure; a flat 100 ms there stalled every
// rollover, since both followers of the new segment usually lag the same
// way. Batches of the same window failing together (sent before the
// previous back-off) count once.
func (s *segmentActor) backOff(f uint64, sentAt time.Time) {
	now := s.n.now()
	fl := s.failures[f]
	if fl.n == 0 || sentAt.After(fl.at) {
		fl.n++
		fl.at = now
		s.failures[f] = fl
	}
	s.backoff[f] = now.Add(backoff.Exp(time.Millisecond, fl.n-1, 100*time.Millisecond))
}

// trimBuffer drops entries every replica holds, and, past the memory cap,
// entries this node holds durably (a lagging follower is then fed from the
// WAL).
func (s *segmentActor) trimBuffer() {
	if s.ld == nil {
		return
	}
	// every replica (this one included) holds everything below low
	low := s.ld.Next() - s.ld.Lag()
	if s.buf.bytes > maxBufferedBytes {
		low = max(low, min(s.durable, s.buf.base+uint64(len(s.buf.ents))/2))
	}
	s.buf.trim(low)
}

func (s *segmentActor) maybeSeal() {
	if s.ld == nil || s.sealing {
		return
	}
	count, ok := s.ld.SealCount()
	if !ok {
		return
	}
	s.sealing = true
	s.n.metrics.rollovers.Inc()
	s.n.proposeAsync(s.self, &raftfsm.SealSegment{Topic: s.topic, Segment: s.id, Epoch: s.meta.Epoch, Count: count,
		AtMs: s.n.now().UnixMilli(), Bytes: s.bytes()}, 10*time.Second, func(err error) any { return sealDoneMsg{err: err} })
}

// bytes is the local file's payload size as the WAL reports it.
func (s *segmentActor) bytes() int64 {
	info, err := s.n.wal.Info(s.key)
	if err != nil {
		return 0
	}
	return info.Bytes
}

func (s *segmentActor) leaderHint() uint64 {
	if s.meta == nil {
		return 0
	}
	return uint64(s.meta.Leader)
}

// ---- replica path (follower) ----

func (s *segmentActor) onReplicate(m replicateMsg) {
	req := m.req
	if s.role == roleSealed || s.role == roleLeader {
		m.reply(messages.ReplicateResp{Err: messages.Err{Code: messages.CodeStaleEpoch, Msg: "segment is " + s.role.String() + " here"}, Durable: s.durable})
		return
	}
	if s.role == roleNone {
		s.role = roleFollower
	}
	if err := s.ensureFile(); err != nil {
		// never count entries we have no file for
		m.reply(messages.ReplicateResp{Err: errToWire(err), Durable: s.durable})
		return
	}
	chk, err := segment.CheckAppend(s.fenced, req.Epoch, s.end, req.First, len(req.Entries))
	var stale *segment.ErrStaleEpoch
	var gap *segment.ErrGap
	switch {
	case errors.As(err, &stale):
		m.reply(messages.ReplicateResp{Err: messages.Err{Code: messages.CodeStaleEpoch, Msg: err.Error()}, Durable: s.durable})
		return
	case errors.As(err, &gap):
		m.reply(messages.ReplicateResp{Err: messages.Err{Code: messages.CodeGap, Msg: err.Error(), Have: s.end}, Durable: s.durable})
		return
	}
	if req.HWM > s.hwm {
		s.hwm = min(req.HWM, s.end)
	}
	if chk.Duplicate {
		if s.pending == 0 {
			m.reply(messages.ReplicateResp{Durable: s.durable})
		} else {
			s.whenIdle = append(s.whenIdle, func() { m.reply(messages.ReplicateResp{Durable: s.durable}) })
		}
		return
	}
	ents := req.Entries[chk.Skip:]
	first := s.end
	s.end += uint64(len(ents))
	s.appendLocal(first, ents, m.reply)
}

// ---- reads ----

// readable is how far this replica may serve reads.
func (s *segmentActor) readable(raw bool) uint64 {
	if raw {
		return s.durable
	}
	switch s.role {
	case roleLeader:
		return s.hwm
	case roleSealed:
		if s.meta != nil {
			return min(s.durable, s.meta.Count)
		}
	}
	return min(s.hwm, s.durable)
}

func (s *segmentActor) onRead(m readMsg) {
	limit := s.readable(m.raw)
	if m.req.From >= limit && m.req.WaitMs > 0 && s.role == roleLeader && (m.raw || s.n.lease.valid(s.n.now())) {
		// (a client's read without a lease is refused at once: answerRead)
		s.readSeq++
		id := s.readSeq
		self := s.self
		t := s.n.cfg.Clock.AfterFunc(time.Duration(m.req.WaitMs)*time.Millisecond, func() {
			s.n.system.Root.Send(self, readTimeout{id: id})
		})
		s.parked = append(s.parked, parkedRead{id: id, msg: m, timer: t})
		return
	}
	s.answerRead(m)
}

func (s *segmentActor) answerRead(m readMsg) {
	if !m.raw && s.role != roleLeader && s.role != roleSealed {
		// only the leader knows how far an unsealed segment may be read
		m.reply(messages.ReadResp{Err: messages.Err{Code: messages.CodeNotLeader, Leader: s.leaderHint(),
			Msg: fmt.Sprintf("segment %s/%d is %s here, not readable yet", s.topic, s.id, s.role)}})
		return
	}
	limit := s.readable(m.raw)
	if !m.raw && s.role == roleSealed && s.meta != nil && m.req.From >= limit && limit < s.meta.Count {
		// This replica holds fewer entries than the seal counted (its
		// disk lags: a slow fsync, a trailing copy); the rest are on the
		// replicas the seal found them on. An empty answer would read as
		// the segment's end to a node that still thinks it active.
		m.reply(messages.ReadResp{Err: messages.Err{Code: messages.CodeUnavailable,
			Msg: fmt.Sprintf("segment %s/%d: this replica holds %d of its %d entries yet", s.topic, s.id, limit, s.meta.Count)}})
		return
	}
	sealed := s.role == roleSealed && s.meta != nil && s.durable >= s.meta.Count
	if !m.raw && s.role == roleLeader && s.ld != nil && s.ld.Full() && limit == s.ld.Next() {
		// full, and every entry it took is on a quorum: its end is final
		// (the seal is being committed), so a reader at the end must go
		// on in the next segment, not be told EMPTY
		sealed = true
	}
	if !m.raw && s.role == roleLeader && !sealed && m.req.From >= limit && !s.n.lease.valid(s.n.now()) {
		// Without a lease this node may have been cut off long enough for
		// the cluster to seal the segment and write on in the next one:
		// EMPTY would tell the reader the log ends here. Entries below
		// the end stay safe to serve (acknowledged, never rewritten).
		m.reply(messages.ReadResp{Err: messages.Err{Code: messages.CodeNotLeader, Leader: s.leaderHint(),
			Msg: wire.NotLeader(s.topic, s.id).Msg + " (lease expired)"}})
		return
	}
	resp := messages.ReadResp{End: limit, Sealed: sealed}
	if m.req.From < limit {
		max := m.req.Max
		if max <= 0 || uint64(max) > limit-m.req.From {
			max = int(limit - m.req.From)
		}
		mb := m.req.MaxBytes
		if mb <= 0 {
			mb = 1 << 20
		}
		ents, err := s.readRange(m.req.From, limit, max, mb)
		if err != nil {
			resp.Err = errToWire(err)
		}
		resp.Entries = ents
	}
	m.reply(resp)
}

// readRange reads up to max entries (and about maxBytes) from [from, limit).
// The leader's high-water mark may run ahead of its own disk (two followers
// made an entry durable before the leader's fsync finished): entries this
// node does not hold durably yet come from the replication buffer, which
// keeps every entry some replica lacks, so an acknowledged entry is
// readable the moment its writer is told OK.
func (s *segmentActor) readRange(from, limit uint64, max, maxBytes int) ([][]byte, error) {
	var out [][]byte
	if from < s.durable {
		ents, err := s.n.wal.Read(s.key, from, min(max, int(min(limit, s.durable)-from)), maxBytes)
		if err != nil {
			return nil, err
		}
		out = ents
		from += uint64(len(ents))
		if len(ents) < max && from < s.durable {
			return out, nil // stopped at maxBytes
		}
	}
	if s.role != roleLeader || from >= limit || from < s.buf.base {
		return out, nil
	}
	bytes := 0
	for _, e := range out {
		bytes += len(e)
	}
	for i := from; i < limit && len(out) < max; i++ {
		e := s.buf.at(i)
		if bytes+len(e) > maxBytes && len(out) > 0 {
			break
		}
		bytes += len(e)
		out = append(out, e)
	}
	return out, nil
}

func (s *segmentActor) onReadTimeout(id uint64) {
	for i, p := range s.parked {
		if p.id == id {
			s.parked = append(s.parked[:i], s.parked[i+1:]...)
			s.answerRead(p.msg)
			return
		}
	}
}

func (s *segmentActor) wakeReaders() {
	if len(s.parked) == 0 {
		return
	}
	keep := s.parked[:0]
	for _, p := range s.parked {
		if p.msg.req.From < s.readable(p.msg.raw) {
			p.timer.Stop()
			s.answerRead(p.msg)
		} else {
			keep = append(keep, p)
		}
	}
	s.parked = keep
}

// ---- recovery: fence, sync, reconcile ----

func (s *segmentActor) onFence(m fenceMsg) {
	if m.req.Epoch > s.fenced {
		s.fenced = m.req.Epoch
	}
	if m.req.Epoch < s.fenced {
		m.reply(messages.FenceResp{Err: messages.Err{Code: messages.CodeStaleEpoch, Msg: "fenced at a newer epoch"}})
		return
	}
	if err := s.ensureFile(); err != nil {
		// a replica that cannot hold the segment (disk full) does not take
		// part: recovery chooses the end from the others, and this copy is
		// refilled once it can be
		m.reply(messages.FenceResp{Err: errToWire(err)})
		return
	}
	if s.role == roleLeader {
		s.stopLeading(messages.Err{Code: messages.CodeUnavailable, Msg: "segment fenced for recovery: outcome unknown"})
		s.role = roleFenced
	}
	if s.role == roleNone || s.role == roleFollower {
		s.role = roleFenced
	}
	answer := func() { m.reply(messages.FenceResp{End: s.durable, Bytes: s.bytes()}) }
	if s.pending > 0 {
		s.whenIdle = append(s.whenIdle, answer)
		return
	}
	answer()
}

// onSync copies entries up to UpTo from the source replica (recovery makes
// every survivor hold the chosen end before it seals).
func (s *segmentActor) onSync(m syncMsg) {
	if m.req.Epoch < s.fenced {
		m.reply(messages.SyncResp{Err: messages.Err{Code: messages.CodeStaleEpoch, Msg: "fenced at a newer epoch"}})
		return
	}
	if s.durable >= m.req.UpTo && s.pending == 0 {
		m.reply(messages.SyncResp{End: s.durable})
		return
	}
	if err := s.ensureFile(); err != nil {
		m.reply(messages.SyncResp{Err: errToWire(err), End: s.durable})
		return
	}
	s.syncWait = append(s.syncWait, m.reply)
	s.syncSource = m.req.Source
	s.fetchTo(m.req.UpTo, []uint64{m.req.Source})
}

// reconcileSealed makes the local copy match the sealed metadata: cut a
// tail no quorum acknowledged, fetch what is missing, then seal the file.
func (s *segmentActor) reconcileSealed() {
	if s.sealedWAL || s.meta == nil {
		s.hwm = s.durable
		return
	}
	count := s.meta.Count
	if s.pending > 0 {
		s.whenIdle = append(s.whenIdle, s.reconcileSealed)
		return
	}
	if err := s.ensureFile(); err != nil {
		s.retryReconcile()
		return
	}
	if s.durable < count {
		var sources []uint64
		for _, r := range s.meta.Replicas {
			if uint64(r) != s.n.cfg.NodeID {
				sources = append(sources, uint64(r))
			}
		}
		s.fetchTo(count, sources)
		return
	}
	if err := s.n.wal.Seal(s.key, count); err != nil {
		s.n.log.Error("seal segment file", append(s.log(), "count", count, "err", err)...)
		return
	}
	s.end, s.durable, s.hwm = count, count, count
	s.sealedWAL = true
	s.wakeReaders()
}

// fetchTo copies entries [durable, goal) from the first source that has
// them, a chunk at a time; progress comes back as fetchedMsg.
func (s *segmentActor) fetchTo(goal uint64, sources []uint64) {
	if goal > s.fetchGoal {
		s.fetchGoal = goal
	}
	if s.fetching || len(sources) == 0 {
		return
	}
	s.fetching = true
	from := s.end
	src := sources[int(from)%len(sources)]
	req := &messages.ReadReq{Topic: s.topic, Segment: s.id, From: from, Max: maxReplicateEntries, MaxBytes: maxReplicateBytes, Raw: true}
	self := s.self
	n := s.n
	go func() {
		var resp messages.ReadResp
		ctx, cancel := ctxTimeout(n, 5*time.Second)
		defer cancel()
		err := n.call(ctx, src, messages.KindRead, req, &resp)
		if err == nil {
			err = resp.Err.AsError()
		}
		n.system.Root.Send(self, fetchedMsg{from: from, entries: resp.Entries, err: err, source: src})
	}()
}

func (s *segmentActor) onFetched(m fetchedMsg) {
	s.fetching = false
	retry := func() {
		self := s.self
		s.n.cfg.Clock.AfterFunc(200*time.Millisecond, func() { s.n.system.Root.Send(self, reconcileMsg{}) })
	}
	if m.err != nil || len(m.entries) == 0 || m.from != s.end {
		if m.err != nil {
			s.n.log.Debug("fetch from replica failed", append(s.log(), "source", m.source, "err", m.err)...)
		}
		s.retryFetch(retry)
		return
	}
	ents := m.entries
	if uint64(len(ents)) > s.fetchGoal-s.end {
		ents = ents[:s.fetchGoal-s.end]
	}
	first := s.end
	s.end += uint64(len(ents))
	s.appendLocal(first, ents, nil)
	s.whenIdle = append(s.whenIdle, s.continueFetch)
}

// retryReconcile tries reconcileSealed again a little later.
func (s *segmentActor) retryReconcile() {
	self := s.self
	s.n.cfg.Clock.AfterFunc(200*time.Millisecond, func() { s.n.system.Root.Send(self, reconcileMsg{}) })
}

func (s *segmentActor) retryFetch(retry func()) {
	if len(s.syncWait) > 0 {
		for _, r := range s.syncWait {
			r(messages.SyncResp{Err: messages.Err{Code: messages.CodeUnavailable, Msg: "source replica unavailable"}, End: s.durable})
		}
		s.syncWait = nil
		return
	}
	retry()
}

func (s *segmentActor) continueFetch() {
	if s.durable >= s.fetchGoal {
		for _, r := range s.syncWait {
			r(messages.SyncResp{End: s.durable})
		}
		s.syncWait = nil
		if s.role == roleSealed {
			s.reconcileSealed()
		}
		return
	}
	if len(s.syncWait) > 0 {
		// recovery sync: keep pulling from the same source
		s.fetchTo(s.fetchGoal, []uint64{s.syncSource})
		return
	}
	if s.role == roleSealed {
		s.reconcileSealed()
	}
}
