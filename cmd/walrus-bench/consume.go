package main

import (
	"context"
	"strconv"
	"time"

	"github.com/walrus-go/walrus/wire"
)

// consumer reads one topic. READ consumers of a topic split its offsets
// into stripes of ReadMax entries (consumer k of c reads windows k, k+c,
// k+2c, ... from the start offset), so together they read every entry once;
// GET consumers share the topic's cursor, which hands each entry out once.
//
// When it stops: with producers in the run, once the producers have
// finished and the topic's consumers have read as many entries as were
// acknowledged (what the run wrote); a read answered EMPTY before that is
// counted (earlyEmpty) and polled again for up to Settle. Without producers,
// at the first EMPTY: the end of what was there. Always when the run is cut
// short.
type consumer struct {
	b               *run
	addr, topic     string
	t               int // topic index
	stripe, stripes int
	start           uint64
}

// pollWait is how long a consumer waits after EMPTY before asking again.
const pollWait = time.Millisecond

func (c *consumer) run(ctx context.Context) {
	rec := c.b.cons.worker()
	var cn *conn
	stop := func() bool { return false }
	defer func() {
		stop()
		if cn != nil {
			cn.close()
		}
	}()
	cfg := c.b.cfg
	window := uint64(cfg.ReadMax)
	w := uint64(c.stripe)
	pos := c.start + w*window
	end := pos + window
	get := request(&wire.Request{Cmd: wire.CmdGet, Topic: c.topic})
	var emptySince time.Time // first early EMPTY after the producers finished
	for ctx.Err() == nil {
		if c.done() {
			c.b.cons.caughtUp.Add(1)
			return
		}
		if cn == nil {
			var err error
			if cn, err = dial(c.addr, c.b.cfg.PlainSyscalls); err != nil {
				rec.fail("dial: "+netKind(err), 1)
				sleepCtx(ctx, 100*time.Millisecond)
				continue
			}
			stop = context.AfterFunc(ctx, cn.close)
		}
		frame := get
		if cfg.Consume == "read" {
			frame = request(&wire.Request{Cmd: wire.CmdRead, Topic: c.topic, Offset: pos, Max: int(min(window, end-pos))})
		}
		// acknowledged counts are final once the producers are done: an
		// EMPTY to a request sent after that is the end, or a read that
		// does not see acknowledged writes
		finished := !c.b.producing()
		sent := time.Now()
		body, err := cn.do(frame, 30*time.Second)
		now := time.Now()
		if err != nil {
			if ctx.Err() == nil {
				rec.fail("conn: "+netKind(err), 1)
			}
			stop()
			cn.close()
			cn = nil
			continue
		}
		r := wire.ParseReply(body)
		switch r.Kind {
		case wire.ReplyEmpty:
			if !finished {
				sleepCtx(ctx, pollWait)
				continue
			}
			if cfg.Producers == 0 {
				c.b.cons.caughtUp.Add(1)
				return
			}
			if !c.unread(pos) {
				// a READ stripe past the end: wait for the other stripes
				sleepCtx(ctx, pollWait)
				continue
			}
			c.b.earlyEmpty.Add(1)
			if emptySince.IsZero() {
				emptySince = now
			} else if now.Sub(emptySince) > cfg.Settle {
				return // gave up: not caught up
			}
			sleepCtx(ctx, pollWait)
		case wire.ReplyErr:
			rec.failReply(string(r.Payload), c.topic, 1)
			sleepCtx(ctx, 10*time.Millisecond)
		case wire.ReplyOK:
			emptySince = time.Time{}
			if cfg.Consume == "get" {
				c.b.consumed[c.t].Add(1)
				rec.ok(1, int64(len(r.Payload)), now.Sub(sent), now)
				continue
			}
			first, entries, err := wire.ParseBatchReply(r.Payload)
			if err != nil || first < pos || len(entries) == 0 || first+uint64(len(entries)) > end {
				rec.fail("bad reply: READ "+strconv.FormatUint(pos, 10)+": "+truncate(string(body), 40), 1)
				sleepCtx(ctx, 10*time.Millisecond)
				continue
			}
			if first > pos {
				// entries before first are gone (retention)
				rec.fail("gap: entries skipped", 1)
			}
			var bytes int64
			for _, e := range entries {
				bytes += int64(len(e))
			}
			c.b.consumed[c.t].Add(int64(len(entries)))
			rec.ok(len(entries), bytes, now.Sub(sent), now)
			pos = first + uint64(len(entries))
			if pos >= end {
				w += uint64(c.stripes)
				pos = c.start + w*window
				end = pos + window
			}
		default:
			rec.fail("bad reply: "+truncate(string(body), 40), 1)
		}
	}
}

// done: the producers finished and this topic's consumers have read what
// they acknowledged.
func (c *consumer) done() bool {
	return c.b.cfg.Producers > 0 && !c.b.producing() && c.b.consumed[c.t].Load() >= c.b.acked[c.t].Load()
}

// unread reports whether acknowledged entries remain where this consumer
// reads: below the topic's acknowledged end for READ at pos, or not yet
// handed out for GET.
func (c *consumer) unread(pos uint64) bool {
	acked := c.b.acked[c.t].Load()
	if c.b.cfg.Consume == "read" {
		return pos < c.start+uint64(acked)
	}
	return c.b.consumed[c.t].Load() < acked
}
