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
// A consumer stops when it finds nothing more to read after the producers
// have finished, or when the run is cut short.
type consumer struct {
	b               *run
	addr, topic     string
	stripe, stripes int
	start           uint64
}

// pollWait is how long a consumer waits after EMPTY while producers run.
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
	for ctx.Err() == nil {
		if cn == nil {
			var err error
			if cn, err = dial(c.addr); err != nil {
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
		// a reply of EMPTY to a request sent after the producers finished
		// means everything acknowledged has been read
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
			if finished {
				c.b.cons.caughtUp.Add(1)
				return
			}
			sleepCtx(ctx, pollWait)
		case wire.ReplyErr:
			rec.failReply(string(r.Payload), c.topic, 1)
			sleepCtx(ctx, 10*time.Millisecond)
		case wire.ReplyOK:
			if cfg.Consume == "get" {
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
				// entries before first are gone (retention): count them
				rec.fail("gap: entries skipped", 1)
			}
			var bytes int64
			for _, e := range entries {
				bytes += int64(len(e))
			}
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
