package client

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walrus-go/walrus/wire"
)

// call is one request on a connection. Exactly one party completes it
// (sets reply or err, then closes done): the reader (reply), fail (broken
// connection) or the caller withdrawing it before it was written. Who may
// touch which field is decided under conn.mu; reply and err are read by the
// caller only after done is closed.
type call struct {
	frame []byte        // whole frame: length prefix + body
	wait  time.Duration // how long the server may hold it (GETW, GROUPREAD)
	sent  bool          // guarded by conn.mu: handed to the writer
	done  chan struct{}
	reply []byte // reply body (owned by the call)
	err   error  // the connection's failure
}

func newCall(frame []byte, wait time.Duration) *call {
	return &call{frame: frame, wait: max(wait, 0), done: make(chan struct{})}
}

// conn is one pipelined client connection. The writer goroutine moves
// queued calls to pending (in the order it then writes them) and writes
// them back to back; the reader goroutine completes pending calls with the
// replies in the same order. The server answers strictly in order, so the
// n-th reply belongs to the n-th request written.
type conn struct {
	nc net.Conn
	// writeTimeout bounds one flush: a server that stops reading breaks
	// the connection instead of blocking the writer forever.
	writeTimeout time.Duration

	mu       sync.Mutex
	queue    []*call       // accepted, not yet handed to the writer
	pending  []*call       // written (or being written), awaiting replies in order
	blocking int           // calls in queue+pending with a wait
	waits    time.Duration // sum of their waits: how long they may hold the calls behind them
	err      error         // non-nil once broken; then queue and pending are empty
	maxDepth int           // most calls ever in flight at once (for tests)

	wake     chan struct{} // cap 1: there is work for the writer
	done     chan struct{} // closed when broken
	lastUsed atomic.Int64  // unix nanoseconds of the last write
	wg       sync.WaitGroup
}

// errUnexpectedReply: a reply arrived with no request waiting for it.
var errUnexpectedReply = errors.New("walrus: reply without a request (protocol error)")

func newConn(nc net.Conn, maxFrame int, writeTimeout time.Duration) *conn {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	c := &conn{nc: nc, writeTimeout: writeTimeout,
		wake: make(chan struct{}, 1), done: make(chan struct{})}
	c.lastUsed.Store(time.Now().UnixNano())
	c.wg.Add(2)
	go c.writeLoop()
	go c.readLoop(maxFrame)
	return c
}

// submit queues cl for writing, or returns the connection's error (cl was
// not sent). ahead is how long calls already in flight may hold the server
// (their waits): cl's reply may be delayed that much beyond its own time.
func (c *conn) submit(cl *call) (ahead time.Duration, err error) {
	c.mu.Lock()
	if c.err != nil {
		err := c.err
		c.mu.Unlock()
		return 0, err
	}
	ahead = c.waits
	c.queue = append(c.queue, cl)
	c.track(cl, 1)
	c.maxDepth = max(c.maxDepth, len(c.queue)+len(c.pending))
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	return ahead, nil
}

// track counts cl in (sign 1) or out (sign -1) of the waits in flight.
// Called with c.mu held.
func (c *conn) track(cl *call, sign int) {
	if cl.wait > 0 {
		c.blocking += sign
		c.waits += time.Duration(sign) * cl.wait
	}
}

// withdraw removes cl if it has not been handed to the writer yet and
// reports whether it did; a withdrawn call is never sent nor completed.
func (c *conn) withdraw(cl *call) (withdrawn bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl.sent {
		return false
	}
	for i, q := range c.queue {
		if q == cl {
			c.queue = append(c.queue[:i], c.queue[i+1:]...)
			c.track(cl, -1)
			return true
		}
	}
	// not queued and not sent: fail already completed it
	return false
}

// wasSent reports whether cl was handed to the writer.
func (c *conn) wasSent(cl *call) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return cl.sent
}

// load is how busy the connection is, for picking one: calls in flight,
// heavily weighted when one of them may block the connection for long.
func (c *conn) load() (n int, broken bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue) + len(c.pending) + 1000*c.blocking, c.err != nil
}

func (c *conn) writeLoop() {
	defer c.wg.Done()
	w := bufio.NewWriterSize(c.nc, 64<<10)
	for {
		select {
		case <-c.wake:
		case <-c.done:
			return
		}
		c.mu.Lock()
		if c.err != nil {
			c.mu.Unlock()
			return
		}
		batch := c.queue
		c.queue = nil
		for _, cl := range batch {
			cl.sent = true
		}
		c.pending = append(c.pending, batch...)
		c.mu.Unlock()
		if len(batch) == 0 {
			continue
		}
		c.lastUsed.Store(time.Now().UnixNano())
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.writeTimeout))
		for _, cl := range batch {
			if _, err := w.Write(cl.frame); err != nil {
				c.fail(err)
				return
			}
		}
		if err := w.Flush(); err != nil {
			c.fail(err)
			return
		}
	}
}

func (c *conn) readLoop(maxFrame int) {
	defer c.wg.Done()
	fr := wire.NewFrameReader(bufio.NewReaderSize(c.nc, 64<<10), maxFrame)
	for {
		body, err := fr.ReadFrame()
		if err != nil {
			c.fail(err)
			return
		}
		reply := bytes.Clone(body)
		c.mu.Lock()
		if len(c.pending) == 0 {
			c.mu.Unlock()
			c.fail(errUnexpectedReply)
			return
		}
		cl := c.pending[0]
		c.pending[0] = nil
		c.pending = c.pending[1:]
		c.track(cl, -1)
		c.mu.Unlock()
		cl.reply = reply
		close(cl.done)
	}
}

// fail breaks the connection: every call in flight completes with err
// (each call's sent flag tells whether it may have reached the server).
func (c *conn) fail(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	calls := append(c.pending, c.queue...)
	c.queue, c.pending, c.blocking, c.waits = nil, nil, 0, 0
	c.mu.Unlock()
	close(c.done)
	_ = c.nc.Close()
	for _, cl := range calls {
		cl.err = err
		close(cl.done)
	}
}

// close breaks the connection with err and waits for its goroutines.
func (c *conn) close(err error) {
	c.fail(err)
	c.wg.Wait()
}
