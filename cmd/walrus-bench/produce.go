package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/walrus-go/walrus/wire"
)

// producer writes to one topic through one node over one connection (a
// new one after a failure, or when its topic's leader moves under leader
// routing), keeping up to Inflight requests in flight.
type producer struct {
	b     *run
	id    int
	addr  string // its own node (route any; leader routing before a leader is known)
	topic string
	t     int   // topic index
	conn  *conn // dialled before the clock started (nil: failed, dial in run)
}

// pending is a request written and not yet answered.
type pending struct {
	sched time.Time // latency is measured from here (the scheduled time in open loop)
	n     int       // messages in the request
}

// pacer is a producer's open-loop schedule: a slot every interval from
// its staggered start until the run's end, kept across reconnects.
type pacer struct {
	interval time.Duration
	next     time.Time   // the next slot
	end      time.Time   // no slot at or after this (zero: no --duration)
	timer    *time.Timer // one timer, reset for each slot
	late     func(time.Duration)
}

// newPacer is the schedule of producer id: each producer sends
// Rate/Producers msgs/s in requests of Batch, on a fixed timeline,
// staggered so producers don't fire together. late is told how long
// after its slot each wait that slept ended. nil in a closed loop.
func newPacer(cfg Config, start time.Time, id int, late func(time.Duration)) *pacer {
	if cfg.Rate <= 0 {
		return nil
	}
	interval := time.Duration(float64(time.Second) * float64(cfg.Producers*cfg.Batch) / cfg.Rate)
	pc := &pacer{interval: interval, next: start.Add(interval * time.Duration(id) / time.Duration(cfg.Producers)),
		late: late}
	if cfg.Duration > 0 {
		pc.end = start.Add(cfg.Duration)
	}
	return pc
}

// over reports whether the schedule has ended (false in a closed loop,
// nil pacer): the producer stops then, though the issue context's
// deadline may not have fired yet.
func (pc *pacer) over() bool {
	return pc != nil && !pc.end.IsZero() && !pc.next.Before(pc.end)
}

// wait waits for the next slot and returns it; false once the schedule
// has ended with the run (the issue context's deadline may not have fired
// yet: its timer runs late on a loaded machine, so the slot decides) or
// ctx is done first.
func (pc *pacer) wait(ctx context.Context) (time.Time, bool) {
	sched := pc.next
	if !pc.end.IsZero() && !sched.Before(pc.end) {
		return time.Time{}, false
	}
	pc.next = sched.Add(pc.interval)
	d := time.Until(sched)
	if d <= 0 {
		return sched, true // behind schedule: send at once
	}
	if pc.timer == nil {
		pc.timer = time.NewTimer(d)
	} else {
		pc.timer.Reset(d)
	}
	select {
	case <-pc.timer.C:
		pc.late(time.Since(sched))
		return sched, true
	case <-ctx.Done():
		pc.timer.Stop()
		return time.Time{}, false
	}
}

func (p *producer) run(issue, hard context.Context) {
	cfg := p.b.cfg
	rec := p.b.prod.worker()
	fr := newFrames(cfg, p.topic, p.id)
	pace := newPacer(cfg, p.b.start, p.id, rec.late)
	c := p.conn
	defer func() {
		if c != nil { // dialled before the clock, never used
			c.close()
		}
	}()
	for issue.Err() == nil && !p.b.exhausted() && !pace.over() {
		if c == nil {
			var err error
			p.b.redials.Add(1)
			if c, err = dial(p.target(), cfg.PlainSyscalls); err != nil {
				rec.fail("dial: "+netKind(err), 0)
				sleepCtx(issue, 100*time.Millisecond)
				p.reaskLeader(issue)
				continue
			}
		}
		broke := p.session(issue, hard, c, fr, rec, pace)
		c = nil
		if broke {
			sleepCtx(issue, 100*time.Millisecond)
			p.reaskLeader(issue)
		}
	}
}

// target is where the producer writes now: its topic's segment leader
// under leader routing once LEADER has named one, its own node otherwise.
func (p *producer) target() string {
	if p.b.cfg.Route == "leader" {
		if a := p.b.leaders[p.t].Load(); a != nil {
			return *a
		}
	}
	return p.addr
}

// moved reports whether leader routing now names another node than the
// one the session writes to (the session ends, and the producer dials
// the new leader).
func (p *producer) moved(c *conn) bool {
	return p.b.cfg.Route == "leader" && p.target() != c.addr
}

// reaskLeader, after a failed dial or connection under leader routing,
// asks where the leader is now (a failover moves it) rather than wait
// for the watcher's next round.
func (p *producer) reaskLeader(ctx context.Context) {
	if p.b.cfg.Route == "leader" && ctx.Err() == nil {
		p.b.askLeader(ctx, p.t)
	}
}

// askLeader asks which node leads topic t's active segment (LEADER, as
// the Go client asks it) and keeps the answer; a failed ask keeps the
// last one.
func (b *run) askLeader(ctx context.Context, t int) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, _, a, err := b.lookup.Leader(ctx, b.cfg.topic(t)); err == nil {
		b.leaders[t].Store(&a)
	}
}

// watchLeaders asks again every LeaderTTL, beside the load, as the Go
// client's cache refreshes while writes go on (a rollover moves the
// leader), until ctx ends.
func (b *run) watchLeaders(ctx context.Context) {
	tick := time.NewTicker(b.cfg.LeaderTTL)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		for t := range b.cfg.Topics {
			b.askLeader(ctx, t)
		}
	}
}

// session drives one connection until the run stops issuing, the
// connection fails, or the topic's leader moves (leader routing), sending
// on pace's slots in open loop (pace nil: closed loop). It returns
// whether the connection broke.
func (p *producer) session(issue, hard context.Context, c *conn, fr *frames, rec *worker, pace *pacer) bool {
	cfg := p.b.cfg
	if cfg.Inflight == 1 {
		return p.oneInFlightSession(issue, hard, c, fr, rec, pace)
	}
	tokens := make(chan struct{}, cfg.Inflight)
	for range cfg.Inflight {
		tokens <- struct{}{}
	}
	queue := make(chan pending, cfg.Inflight)
	broken := make(chan struct{})
	readerDone := make(chan struct{})
	var timedOut atomic.Bool
	_ = c.c.SetDeadline(time.Time{})
	go func() {
		defer close(readerDone)
		var dead string
		for pd := range queue {
			if dead != "" {
				rec.fail(dead, pd.n)
				continue
			}
			body, err := c.fr.ReadFrame()
			now := time.Now()
			if err != nil {
				dead = "conn: " + netKind(err)
				if timedOut.Load() {
					dead = "timeout: no reply"
				}
				close(broken)
				c.close()
				rec.fail(dead, pd.n)
				continue
			}
			p.onReply(rec, body, pd, now)
			tokens <- struct{}{}
		}
	}()

	broke := false
	// a node that never replies must not hang the run (--duration 0 has
	// no deadline): waiting longer than DrainTimeout for a reply slot
	// fails what is in flight as "timeout: no reply"
	stall := time.NewTimer(cfg.DrainTimeout)
	stall.Stop()
	defer stall.Stop()
loop:
	for issue.Err() == nil {
		if p.moved(c) {
			break // the next session writes to the new leader
		}
		n := p.b.claim(cfg.Batch)
		if n == 0 {
			break
		}
		var sched time.Time
		if pace != nil {
			var ok bool
			if sched, ok = pace.wait(issue); !ok {
				p.b.unclaim(n)
				break
			}
		}
		select {
		case <-tokens:
		default:
			stall.Reset(cfg.DrainTimeout)
			select {
			case <-tokens:
				stall.Stop()
			case <-broken:
				p.b.unclaim(n)
				broke = true
				break loop
			case <-issue.Done():
				p.b.unclaim(n)
				break loop
			case <-stall.C:
				timedOut.Store(true)
				c.close() // the reader fails what is pending
				p.b.unclaim(n)
				broke = true
				break loop
			}
		}
		if pace == nil {
			sched = time.Now()
		}
		queue <- pending{sched: sched, n: n}
		rec.sent(n)
		// a node that stops reading must not hang the run: the write gets
		// the time the run gives replies
		_ = c.c.SetWriteDeadline(time.Now().Add(cfg.DrainTimeout))
		if _, err := c.c.Write(fr.frame(n)); err != nil {
			// the reader fails what is pending once the close reaches it
			c.close()
			broke = true
			break
		}
	}
	close(queue)
	t := time.NewTimer(cfg.DrainTimeout)
	defer t.Stop()
	select {
	case <-readerDone:
	case <-t.C:
		timedOut.Store(true)
		c.close()
		<-readerDone
	case <-hard.Done():
		timedOut.Store(true)
		c.close()
		<-readerDone
	}
	c.close()
	select {
	case <-broken:
		broke = true
	default:
	}
	return broke
}

// oneInFlightSession is session for one request in flight, closed loop or
// open: this goroutine waits for each request's slot (open loop), writes
// it and reads its reply itself. The general session's writer and reader
// goroutines hand every request over twice through channels, which at
// one in flight is all cost (a wake-up per hand-off, on a machine whose
// cores the nodes need). The schedule is the same: a reply later than the
// next slot delays that request, whose latency still counts from its slot.
func (p *producer) oneInFlightSession(issue, hard context.Context, c *conn, fr *frames, rec *worker,
	pace *pacer) (broke bool) {
	cfg := p.b.cfg
	var gaveUp atomic.Bool
	stop := context.AfterFunc(hard, func() {
		gaveUp.Store(true)
		c.close()
	})
	defer stop()
	defer c.close()
	for issue.Err() == nil {
		if p.moved(c) {
			return false // the next session writes to the new leader
		}
		n := p.b.claim(cfg.Batch)
		if n == 0 {
			return false
		}
		sched := time.Now()
		if pace != nil {
			var ok bool
			if sched, ok = pace.wait(issue); !ok {
				p.b.unclaim(n)
				return false
			}
		}
		rec.sent(n)
		// a node that stops reading or never replies must not hang the
		// run: the write and the reply get the time the run gives replies
		_ = c.c.SetDeadline(time.Now().Add(cfg.DrainTimeout))
		if _, err := c.c.Write(fr.frame(n)); err != nil {
			rec.fail("conn: "+netKind(err), n)
			return true
		}
		body, err := c.fr.ReadFrame()
		now := time.Now()
		if err != nil {
			dead := "conn: " + netKind(err)
			if gaveUp.Load() || errors.Is(err, os.ErrDeadlineExceeded) {
				dead = "timeout: no reply"
			}
			rec.fail(dead, n)
			return true
		}
		p.onReply(rec, body, pending{sched: sched, n: n}, now)
	}
	return false
}

// onReply accounts one reply to a PUT or MPUT of pd.n messages.
func (p *producer) onReply(rec *worker, body []byte, pd pending, now time.Time) {
	r := wire.ParseReply(body)
	switch r.Kind {
	case wire.ReplyOK:
		if p.b.cfg.Batch > 1 {
			// "OK <first> <count>" with more pairs when a rollover split it
			if got, ok := mputCount(r.Payload); !ok || got != pd.n {
				rec.fail("bad reply: MPUT acknowledged "+strconv.Itoa(got)+" of "+strconv.Itoa(pd.n), pd.n)
				return
			}
		} else if r.Payload != nil {
			rec.fail("bad reply: PUT answered OK with a payload", pd.n)
			return
		}
		p.b.acked[p.t].Add(int64(pd.n))
		if lat := now.Sub(pd.sched); p.b.slow != nil && lat > p.b.cfg.SlowOver {
			p.b.slow.note(pd.sched.Sub(p.b.start), lat, p.id)
		}
		rec.ok(pd.n, int64(pd.n*p.b.cfg.Size), now.Sub(pd.sched), now)
	case wire.ReplyErr:
		rec.failReply(string(r.Payload), p.topic, pd.n)
	default:
		rec.fail("bad reply: "+truncate(string(body), 40), pd.n)
	}
}

// mputCount sums the counts of MPUT's reply pairs.
func mputCount(payload []byte) (int, bool) {
	f := bytes.Fields(payload)
	if len(f) == 0 || len(f)%2 != 0 {
		return 0, false
	}
	total := 0
	for i := 1; i < len(f); i += 2 {
		n, err := strconv.Atoi(string(f[i]))
		if err != nil || n < 0 {
			return 0, false
		}
		total += n
	}
	return total, true
}

// exhausted reports whether the --messages budget is used up.
func (b *run) exhausted() bool { return b.cfg.Messages > 0 && b.budget.Load() <= 0 }

// unclaim returns messages claimed but never sent to the --messages budget.
func (b *run) unclaim(n int) {
	if b.cfg.Messages > 0 {
		b.budget.Add(int64(n))
	}
}

// frames holds a producer's prebuilt request frames.
type frames struct {
	topic   string
	payload []byte
	full    []byte // a request of Batch messages
	batch   int
}

func newFrames(cfg Config, topic string, seed int) *frames {
	payload := make([]byte, cfg.Size)
	for i := range payload {
		payload[i] = 'a' + byte((i+seed)%26) // no trailing white space: PUT trims it
	}
	f := &frames{topic: topic, payload: payload, batch: cfg.Batch}
	f.full = f.build(cfg.Batch)
	return f
}

func (f *frames) frame(n int) []byte {
	if n == f.batch {
		return f.full
	}
	return f.build(n)
}

func (f *frames) build(n int) []byte {
	if f.batch == 1 {
		return request(&wire.Request{Cmd: wire.CmdPut, Topic: f.topic, Payload: f.payload, HasPayload: true})
	}
	entries := make([][]byte, n)
	for i := range entries {
		entries[i] = f.payload
	}
	return request(&wire.Request{Cmd: wire.CmdMPut, Topic: f.topic, Entries: entries})
}

func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
