package transport

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walrus-go/walrus/wire"
)

// outbox serialises frames onto one connection. Producers append encoded
// frames to a shared buffer; one writer goroutine swaps the buffer out and
// writes everything queued since its last write in a single Write. So
// frames queued while a write is in progress are coalesced, and a lone
// frame goes out at once (no timer, no Nagle).
type outbox struct {
	mu    sync.Mutex
	space sync.Cond // signalled when the writer takes the buffer, or on close
	buf   []byte    // frames queued, not yet handed to the writer
	spare []byte    // the writer's previous buffer, for reuse
	err   error     // set once: closed or a write failed; nothing is queued after
	limit int       // put blocks while len(buf) >= limit (0: never)

	wake chan struct{} // capacity 1: buf went from empty to non-empty, or close

	// lastID is the id of the last frame queued; frames are queued in id
	// order (a client's calls take their id and queue their frame under
	// one lock). sent is the highest id whose frame may have reached the
	// peer: stored before the write that carries it, so a call above it
	// was certainly not sent.
	lastID uint64
	sent   atomic.Uint64
}

// maxChunk bounds one Write, so the write deadline measures progress.
const maxChunk = 1 << 20

// maxRetain bounds the buffer the writer keeps for reuse.
const maxRetain = 4 << 20

func newOutbox(limit int, prefix []byte) *outbox {
	o := &outbox{limit: limit, wake: make(chan struct{}, 1)}
	o.space.L = &o.mu
	if len(prefix) > 0 {
		o.buf = append(o.buf, prefix...)
		o.wake <- struct{}{}
	}
	return o
}

// put queues one frame. With a limit, it blocks while the queue is full
// (but always accepts a frame into an empty queue). It fails once the
// outbox is closed.
func (o *outbox) put(kind uint8, id uint64, body []byte) error {
	if err := o.lockRoom(); err != nil {
		return err
	}
	wasEmpty := len(o.buf) == 0
	o.buf = wire.AppendPeerFrame(o.buf, kind, id, body)
	o.lastID = max(o.lastID, id)
	o.unlock(wasEmpty)
	return nil
}

// putAppend is put with a body that app appends to the buffer itself
// (encoding straight into it). A body longer than maxBody is taken back
// out and put fails with ErrTooLarge; the outbox stays usable.
func (o *outbox) putAppend(kind uint8, id uint64, app func([]byte) []byte, maxBody int) error {
	if err := o.lockRoom(); err != nil {
		return err
	}
	wasEmpty := len(o.buf) == 0
	start := len(o.buf)
	o.buf = wire.AppendPeerFrame(o.buf, kind, id, nil)
	o.buf = app(o.buf)
	n := len(o.buf) - start - wire.PeerHeaderLen
	if n > maxBody {
		o.buf = o.buf[:start]
		o.mu.Unlock()
		return fmt.Errorf("%w: %d-byte body, limit %d", ErrTooLarge, n, maxBody)
	}
	wire.SetPeerFrameLen(o.buf[start:], n)
	o.lastID = max(o.lastID, id)
	o.unlock(wasEmpty)
	return nil
}

// lockRoom takes the lock once the buffer has room (or the outbox failed:
// then it returns the error, unlocked).
func (o *outbox) lockRoom() error {
	o.mu.Lock()
	for o.limit > 0 && len(o.buf) >= o.limit && o.err == nil {
		o.space.Wait()
	}
	if o.err != nil {
		err := o.err
		o.mu.Unlock()
		return err
	}
	return nil
}

// unlock releases the lock after a frame was added, waking the writer if
// the buffer had been empty (otherwise it is awake already).
func (o *outbox) unlock(wasEmpty bool) {
	o.mu.Unlock()
	if wasEmpty {
		o.signal()
	}
}

func (o *outbox) signal() {
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

// close stops the outbox: queued frames are dropped, put fails with err,
// and the writer returns. The first error wins.
func (o *outbox) close(err error) {
	o.mu.Lock()
	if o.err == nil {
		o.err = err
	}
	o.buf = nil
	o.space.Broadcast()
	o.mu.Unlock()
	o.signal()
}

// run is the writer loop. It returns nil once the outbox is closed, or the
// first write error (after closing the outbox with it).
func (o *outbox) run(conn net.Conn, writeTimeout time.Duration) error {
	for range o.wake {
		o.mu.Lock()
		if o.err != nil {
			o.mu.Unlock()
			return nil
		}
		out, last := o.buf, o.lastID
		o.buf, o.spare = o.spare[:0], nil
		o.space.Broadcast()
		o.mu.Unlock()
		if len(out) == 0 {
			continue
		}
		o.sent.Store(last)
		for p := out; len(p) > 0; {
			n := min(len(p), maxChunk)
			if writeTimeout > 0 {
				_ = conn.SetWriteDeadline(time.Now().Add(writeTimeout))
			}
			if _, err := conn.Write(p[:n]); err != nil {
				o.close(err)
				return err
			}
			p = p[n:]
		}
		o.mu.Lock()
		if cap(out) <= maxRetain {
			o.spare = out[:0]
		}
		o.mu.Unlock()
	}
	return nil
}

// readBufSize is the read buffer of an RPC connection: frames up to this
// size are decoded in place, and one read syscall can fetch many.
const readBufSize = 64 << 10
