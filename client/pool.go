package client

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walrus-go/walrus/internal/rawio"
)

// nodePool holds the connections to one node. Connections are dialled on
// demand: a new one only when every live one is busy (and the pool is not
// full), and a broken one is replaced on the next use.
type nodePool struct {
	addr string
	cl   *Client

	mu     sync.Mutex // held while dialling: callers for this node wait
	conns  []*conn    // len <= poolSize; broken ones are replaced lazily
	closed bool
	// downUntil (unix nanoseconds): the last dial failed; until then,
	// routing prefers other nodes (a call may still try this one when
	// nothing else is left). Atomic, not under mu: routing reads it for
	// every node on every attempt and must not wait behind a slow dial.
	downUntil atomic.Int64
}

// get returns a connection for one request: the least loaded live one,
// unless it is busy and there is room to dial another.
func (p *nodePool) get(ctx context.Context) (*conn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	var best *conn
	bestLoad := 0
	free := -1 // a slot to dial into
	now := time.Now()
	for i, c := range p.conns {
		load, broken := c.load()
		if !broken && load == 0 && now.Sub(time.Unix(0, c.lastUsed.Load())) > p.cl.cfg.idleTimeout {
			// the server may be about to close it: replace it
			c.fail(errIdle)
			broken = true
		}
		if broken {
			if free < 0 {
				free = i
			}
			continue
		}
		if best == nil || load < bestLoad {
			best, bestLoad = c, load
		}
	}
	if free < 0 && len(p.conns) < p.cl.cfg.poolSize {
		free = len(p.conns)
	}
	if free < 0 || (best != nil && bestLoad == 0) {
		return best, nil // the pool is full of live connections, or one is idle
	}
	c, err := p.dial(ctx)
	if err != nil {
		if best != nil {
			return best, nil
		}
		return nil, err
	}
	if free == len(p.conns) {
		p.conns = append(p.conns, c)
	} else {
		p.conns[free] = c // the broken one's goroutines are exiting
	}
	return c, nil
}

// dial opens one connection. Called with p.mu held.
func (p *nodePool) dial(ctx context.Context) (*conn, error) {
	cfg := &p.cl.cfg
	dctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(p.cl.ctx, cancel) // Close aborts a dial
	defer stop()
	nc, err := cfg.dialer.DialContext(dctx, "tcp", p.addr)
	if err != nil {
		if p.cl.ctx.Err() != nil {
			return nil, ErrClosed
		}
		p.downUntil.Store(time.Now().Add(cfg.retry.MinBackoff + 100*time.Millisecond).UnixNano())
		return nil, err
	}
	p.downUntil.Store(0)
	if !cfg.plainSyscalls {
		// reads and writes as raw system calls (a TCPConn only;
		// internal/rawio says why): fewer wake-ups of Go's runtime per request
		nc = rawio.Conn(nc)
	}
	return newConn(nc, cfg.maxFrame, cfg.requestTimeout), nil
}

// isDown reports whether the last dial failed recently.
func (p *nodePool) isDown(now time.Time) bool {
	return now.UnixNano() < p.downUntil.Load()
}

// close breaks every connection with ErrClosed and waits for their
// goroutines. Later gets fail with ErrClosed.
func (p *nodePool) close() {
	p.mu.Lock()
	p.closed = true
	conns := p.conns
	p.conns = nil
	p.mu.Unlock()
	for _, c := range conns {
		c.close(ErrClosed)
	}
}

// maxDepth is the deepest pipeline any connection of the pool has seen.
func (p *nodePool) maxDepth() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	d := 0
	for _, c := range p.conns {
		c.mu.Lock()
		d = max(d, c.maxDepth)
		c.mu.Unlock()
	}
	return d
}
