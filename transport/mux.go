package transport

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walrus-go/walrus/wire"
)

// First bytes of a connection on the internal port.
const (
	RaftByte byte = 'R' // hashicorp/raft NetworkTransport stream
	RPCByte  byte = 'W' // our node-to-node RPC
)

// DialFunc opens a connection to addr (seam.Network.Dial fits).
type DialFunc func(ctx context.Context, addr string) (net.Conn, error)

// Handler serves RPC requests.
//
// Handle is called concurrently, from many goroutines, once per request;
// body is the handler's to keep. ctx is cancelled when the connection
// closes or the Mux is closed: Handle must then return promptly, as
// Mux.Close waits for it. A non-nil error goes back as a *RemoteError
// carrying err.Error(), and respKind/respBody are ignored. A panic is
// recovered and goes back as a *RemoteError "panic: ...".
type Handler interface {
	Handle(ctx context.Context, kind uint8, body []byte) (respKind uint8, respBody []byte, err error)
}

// OrderedHandler is an optional extension of Handler for requests whose
// order matters (pipelined replication batches, forwarded writes). The
// server calls Dispatch on the connection's reader goroutine, in arrival
// order, before anything else. If Dispatch returns true it has taken the
// request and calls reply exactly once, from any goroutine; if false, the
// request goes to Handle as usual. Dispatch must not block: it hands the
// request to whoever serves it (an actor's mailbox keeps the order).
type OrderedHandler interface {
	Handler
	Dispatch(kind uint8, body []byte, reply func(respKind uint8, respBody []byte, err error)) bool
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, kind uint8, body []byte) (uint8, []byte, error)

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, kind uint8, body []byte) (uint8, []byte, error) {
	return f(ctx, kind, body)
}

// Mux demultiplexes the internal port. Create it with NewMux, start Serve
// in a goroutine, attach raft with RaftStreamLayer and our RPC with
// SetRPCHandler (in any order, before or after Serve), and Close it once.
type Mux struct {
	ln     net.Listener
	addr   net.Addr
	logger *slog.Logger
	cfg    muxConfig

	handler atomic.Pointer[handlerBox]
	ctx     context.Context // cancelled by Close: handlers' parent context
	cancel  context.CancelFunc

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{} // accepted and still open
	raft   *RaftLayer
	wg     sync.WaitGroup // Serve and every per-connection goroutine
}

type handlerBox struct{ h Handler }

type muxConfig struct {
	handshakeTimeout time.Duration
	writeTimeout     time.Duration
	maxFrame         int
	maxInFlight      int
	maxQueued        int
}

// MuxOption configures a Mux.
type MuxOption func(*muxConfig, *Mux)

// WithHandshakeTimeout bounds how long a new connection may take to send
// its first byte (default 5s).
func WithHandshakeTimeout(d time.Duration) MuxOption {
	return func(c *muxConfig, _ *Mux) { c.handshakeTimeout = d }
}

// WithServerMaxFrame sets the largest request frame the RPC server accepts
// (default wire.DefaultMaxPeerFrame). A larger one disconnects the peer.
func WithServerMaxFrame(n int) MuxOption {
	return func(c *muxConfig, _ *Mux) { c.maxFrame = n }
}

// WithMaxInFlight bounds the requests one connection may have running at
// once (default 256). Past it the server stops reading that connection
// until one completes: TCP pushes back on the client. Likewise, handlers
// wait to queue their reply while 16 MiB of replies are waiting to be
// written to a slow reader.
func WithMaxInFlight(n int) MuxOption {
	return func(c *muxConfig, _ *Mux) { c.maxInFlight = n }
}

// WithServerWriteTimeout bounds each write of replies (default 10s); a
// peer that stops reading is disconnected.
func WithServerWriteTimeout(d time.Duration) MuxOption {
	return func(c *muxConfig, _ *Mux) { c.writeTimeout = d }
}

// WithAdvertiseAddr sets the address the raft stream layer reports as its
// own (raft's LocalAddr), when peers must reach this node at another
// address than the listener's (--raft-advertise-host).
func WithAdvertiseAddr(a net.Addr) MuxOption {
	return func(_ *muxConfig, m *Mux) { m.addr = a }
}

// NewMux returns a Mux over ln. It takes ownership of ln. A nil logger
// discards.
func NewMux(ln net.Listener, logger *slog.Logger, opts ...MuxOption) *Mux {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	m := &Mux{
		ln:     ln,
		addr:   ln.Addr(),
		logger: logger,
		cfg: muxConfig{
			handshakeTimeout: 5 * time.Second,
			writeTimeout:     10 * time.Second,
			maxFrame:         wire.DefaultMaxPeerFrame,
			maxInFlight:      256,
			maxQueued:        16 << 20,
		},
		conns: make(map[net.Conn]struct{}),
	}
	for _, o := range opts {
		o(&m.cfg, m)
	}
	m.ctx, m.cancel = context.WithCancel(context.Background())
	return m
}

// Addr is the address peers dial: the advertised address if one was set,
// else the listener's.
func (m *Mux) Addr() net.Addr { return m.addr }

// SetRPCHandler installs (or replaces) the RPC handler. Until the first
// call, requests get a *RemoteError "not ready".
func (m *Mux) SetRPCHandler(h Handler) { m.handler.Store(&handlerBox{h}) }

// Serve accepts connections until the listener fails or Close is called.
// It returns nil after Close, else the listener's error. Call it once.
func (m *Mux) Serve() error {
	if !m.enter() {
		return nil
	}
	defer m.wg.Done()
	var delay time.Duration
	for {
		c, err := m.ln.Accept()
		if err != nil {
			if m.isClosed() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors and the like: back off and retry.
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			m.logger.Warn("internal port: accept failed", "err", err, "retry_in", delay)
			select {
			case <-time.After(delay):
			case <-m.ctx.Done():
				return nil
			}
			continue
		}
		delay = 0
		if !m.track(c) {
			_ = c.Close()
			return nil
		}
		go m.handleConn(c)
	}
}

// Close stops Serve, closes the raft stream layer (unblocking its Accept),
// closes every connection the Mux accepted, then cancels running handlers
// and waits for them and every goroutine the Mux started. Replies of
// requests in flight are not sent. It is idempotent.
func (m *Mux) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		m.wg.Wait()
		return nil
	}
	m.closed = true
	conns := make([]net.Conn, 0, len(m.conns))
	for c := range m.conns {
		conns = append(conns, c)
	}
	rl := m.raft
	m.mu.Unlock()

	// Connections first, handlers' contexts second: a handler that returns
	// because it was cancelled finds its connection gone, so nothing is
	// sent after Close has begun.
	err := m.ln.Close()
	if rl != nil {
		_ = rl.Close()
	}
	for _, c := range conns {
		_ = c.Close()
	}
	m.cancel()
	m.wg.Wait()
	return err
}

// enter registers a goroutine with the Mux unless it is closed.
func (m *Mux) enter() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.wg.Add(1)
	return true
}

func (m *Mux) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// track records an accepted connection and registers its goroutine.
func (m *Mux) track(c net.Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return false
	}
	m.conns[c] = struct{}{}
	m.wg.Add(1)
	return true
}

func (m *Mux) untrack(c net.Conn) {
	m.mu.Lock()
	delete(m.conns, c)
	m.mu.Unlock()
}

// handleConn reads the first byte and routes the connection.
func (m *Mux) handleConn(c net.Conn) {
	defer m.wg.Done()
	log := m.logger.With("remote", c.RemoteAddr().String())
	var first [1]byte
	_ = c.SetReadDeadline(time.Now().Add(m.cfg.handshakeTimeout))
	if _, err := io.ReadFull(c, first[:]); err != nil {
		if !m.isClosed() {
			log.Warn("internal port: no first byte", "err", err)
		}
		m.closeConn(c)
		return
	}
	_ = c.SetReadDeadline(time.Time{})
	switch first[0] {
	case RaftByte:
		m.mu.Lock()
		rl := m.raft
		m.mu.Unlock()
		if rl == nil {
			log.Warn("internal port: raft connection before raft is attached")
			m.closeConn(c)
			return
		}
		rl.deliver(&trackedConn{Conn: c, m: m})
	case RPCByte:
		m.serveRPC(c, log)
		m.closeConn(c)
	default:
		log.Warn("internal port: unknown first byte, closing", "byte", first[0])
		m.closeConn(c)
	}
}

func (m *Mux) closeConn(c net.Conn) {
	_ = c.Close()
	m.untrack(c)
}

// trackedConn is an accepted connection handed to raft: closing it also
// forgets it in the Mux.
type trackedConn struct {
	net.Conn
	m    *Mux
	once sync.Once
}

func (t *trackedConn) Close() error {
	err := t.Conn.Close()
	t.once.Do(func() { t.m.untrack(t.Conn) })
	return err
}
