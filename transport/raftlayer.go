package transport

import (
	"context"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// RaftLayer is the raft.StreamLayer of a Mux: Accept yields the Mux's 'R'
// connections, Dial opens one to another node's Mux.
type RaftLayer struct {
	m    *Mux
	dial DialFunc

	incoming chan net.Conn
	done     chan struct{}
	once     sync.Once

	mu     sync.Mutex
	dialed map[net.Conn]struct{} // outbound connections still open
	closed bool
}

var _ raft.StreamLayer = (*RaftLayer)(nil)

// RaftStreamLayer returns the Mux's raft stream layer, creating it on the
// first call (later calls return the same layer and ignore dial). Hand it
// to raft.NewNetworkTransport*. Closing it (raft's transport does, on
// shutdown) unblocks Accept and closes the connections it dialed; the Mux
// keeps serving RPC.
func (m *Mux) RaftStreamLayer(dial DialFunc) *RaftLayer {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.raft == nil {
		m.raft = &RaftLayer{
			m:        m,
			dial:     dial,
			incoming: make(chan net.Conn),
			done:     make(chan struct{}),
			dialed:   make(map[net.Conn]struct{}),
		}
		if m.closed {
			m.raft.shut()
		}
	}
	return m.raft
}

// deliver hands an accepted 'R' connection to Accept, or closes it if the
// layer or the Mux closes first.
func (l *RaftLayer) deliver(c net.Conn) {
	select {
	case l.incoming <- c:
	case <-l.done:
		_ = c.Close()
	case <-l.m.ctx.Done():
		_ = c.Close()
	}
}

// Accept waits for the next raft connection. After Close it returns an
// error wrapping net.ErrClosed.
func (l *RaftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.incoming:
		return c, nil
	case <-l.done:
		return nil, fmt.Errorf("transport: raft stream layer: %w", net.ErrClosed)
	}
}

// Close unblocks Accept for good and closes the connections this layer
// dialed. It is idempotent.
func (l *RaftLayer) Close() error {
	l.shut()
	l.mu.Lock()
	l.closed = true
	dialed := l.dialed
	l.dialed = nil
	l.mu.Unlock()
	for c := range dialed {
		_ = c.Close()
	}
	return nil
}

func (l *RaftLayer) shut() { l.once.Do(func() { close(l.done) }) }

// Addr is the Mux's address (advertised, if set): raft's LocalAddr.
func (l *RaftLayer) Addr() net.Addr { return l.m.Addr() }

// Dial opens a raft stream to the Mux at address: it connects and sends
// RaftByte, all within timeout (none if timeout <= 0).
func (l *RaftLayer) Dial(address raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithCancel(context.Background())
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), timeout)
	}
	defer cancel()
	c, err := l.dial(ctx, string(address))
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = c.SetWriteDeadline(dl)
	}
	if _, err := c.Write([]byte{RaftByte}); err != nil {
		_ = c.Close()
		return nil, err
	}
	_ = c.SetWriteDeadline(time.Time{})
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		_ = c.Close()
		return nil, fmt.Errorf("transport: raft stream layer: %w", net.ErrClosed)
	}
	tc := &dialedConn{Conn: c, l: l}
	l.dialed[tc] = struct{}{}
	l.mu.Unlock()
	return tc, nil
}

// dialedConn forgets itself in its layer when closed.
type dialedConn struct {
	net.Conn
	l    *RaftLayer
	once sync.Once
}

func (d *dialedConn) Close() error {
	err := d.Conn.Close()
	d.once.Do(func() {
		d.l.mu.Lock()
		delete(d.l.dialed, d)
		d.l.mu.Unlock()
	})
	return err
}
