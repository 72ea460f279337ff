package transport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walrus-go/walrus/internal/backoff"
	"github.com/walrus-go/walrus/wire"
)

// Client is a pipelined, reconnecting RPC client to one peer's Mux.
//
// All calls share one connection: a writer goroutine coalesces the frames
// queued since its last write into one write, and a reader goroutine
// matches replies to calls by id. The connection is dialed lazily on the
// first call. When it fails, every call in flight fails with
// ErrPeerUnavailable (wrapping the cause); the next call re-dials. After
// repeated failures the client backs off exponentially (capped): during
// the back-off window calls fail fast with ErrPeerUnavailable instead of
// waiting. A call issued while the connection is being dialed waits for
// it (within the call's own deadline).
//
// A Client is safe for concurrent use. Close it to release its goroutines.
type Client struct {
	addr   string
	dial   DialFunc
	logger *slog.Logger
	cfg    clientConfig

	nextID atomic.Uint64

	mu       sync.Mutex
	cur      *clientConn // nil before the first call
	closed   bool
	failures int       // consecutive connection failures
	retryAt  time.Time // no dial before this
	lastErr  error     // cause of the last failure
	wg       sync.WaitGroup
}

type clientConfig struct {
	dialTimeout  time.Duration
	writeTimeout time.Duration
	backoffMin   time.Duration
	backoffMax   time.Duration
	maxFrame     int
}

// ClientOption configures a Client.
type ClientOption func(*clientConfig)

// WithDialTimeout bounds one dial, 'W' byte included (default 5s).
func WithDialTimeout(d time.Duration) ClientOption {
	return func(c *clientConfig) { c.dialTimeout = d }
}

// WithBackoff sets the re-dial back-off: none after a first failure, then
// min, 2*min, 4*min ... capped at max (defaults 25ms and 1s).
func WithBackoff(min, max time.Duration) ClientOption {
	return func(c *clientConfig) { c.backoffMin, c.backoffMax = min, max }
}

// WithClientMaxFrame sets the frame limit (default
// wire.DefaultMaxPeerFrame): a larger reply fails the connection, and a
// request that would not fit fails with ErrTooLarge without being sent. It
// must match the server's WithServerMaxFrame.
func WithClientMaxFrame(n int) ClientOption {
	return func(c *clientConfig) { c.maxFrame = n }
}

// WithClientWriteTimeout bounds each write (default 10s); a peer that
// stops reading fails the connection.
func WithClientWriteTimeout(d time.Duration) ClientOption {
	return func(c *clientConfig) { c.writeTimeout = d }
}

// NewClient returns a client of the Mux at addr. Nothing is dialed until
// the first call. A nil logger discards.
func NewClient(addr string, dial DialFunc, logger *slog.Logger, opts ...ClientOption) *Client {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	c := &Client{
		addr:   addr,
		dial:   dial,
		logger: logger.With("peer", addr),
		cfg: clientConfig{
			dialTimeout:  5 * time.Second,
			writeTimeout: 10 * time.Second,
			backoffMin:   25 * time.Millisecond,
			backoffMax:   time.Second,
			maxFrame:     wire.DefaultMaxPeerFrame,
		},
	}
	for _, o := range opts {
		o(&c.cfg)
	}
	return c
}

// Addr is the peer's address.
func (c *Client) Addr() string { return c.addr }

// Call sends one request and waits for its reply, ctx's cancellation or
// deadline, or the connection's failure. A reply of kind KindError comes
// back as a *RemoteError. body may be reused once Call returns; the
// returned body is the caller's.
func (c *Client) Call(ctx context.Context, kind uint8, body []byte) (uint8, []byte, error) {
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	cl := &call{ch: make(chan result, 1)}
	cc, err := c.start(kind, body, nil, cl, time.Time{})
	if err != nil {
		return 0, nil, err
	}
	select {
	case r := <-cl.ch:
		return r.kind, r.body, r.err
	case <-ctx.Done():
		if cc.forget(cl.id) {
			return 0, nil, ctx.Err()
		}
		r := <-cl.ch // the reply (or failure) won the race: it is on its way
		return r.kind, r.body, r.err
	}
}

// Go sends one request without waiting. cb runs exactly once with the
// reply or the error: the reply on the connection's reader goroutine, a
// passed deadline (context.DeadlineExceeded) on a timer goroutine, a
// connection failure on whichever goroutine saw it, and an immediate
// failure (closed client, back-off) on the caller's goroutine before Go
// returns. cb must not block and must not call Close. A zero deadline means
// none. body may be reused once Go returns.
func (c *Client) Go(kind uint8, body []byte, deadline time.Time, cb func(kind uint8, body []byte, err error)) {
	if !deadline.IsZero() && !time.Now().Before(deadline) {
		cb(0, nil, context.DeadlineExceeded)
		return
	}
	if _, err := c.start(kind, body, nil, &call{cb: cb}, deadline); err != nil {
		cb(0, nil, err)
	}
}

// GoAppend is Go with a body that appendBody appends to the send buffer
// itself: the request is encoded straight into the connection's outgoing
// buffer, with no intermediate body to allocate and copy. appendBody runs
// once, before GoAppend returns (unless the call fails first), on the
// caller's goroutine with the connection's send buffer locked: it must
// only append. A body over the frame limit fails with ErrTooLarge and
// nothing is sent.
func (c *Client) GoAppend(kind uint8, appendBody func(dst []byte) []byte, deadline time.Time, cb func(kind uint8, body []byte, err error)) {
	if !deadline.IsZero() && !time.Now().Before(deadline) {
		cb(0, nil, context.DeadlineExceeded)
		return
	}
	if _, err := c.start(kind, nil, appendBody, &call{cb: cb}, deadline); err != nil {
		cb(0, nil, err)
	}
}

// Close fails every call in flight with ErrClosed, closes the connection
// and waits for the client's goroutines. Later calls fail with ErrClosed.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	cc := c.cur
	c.mu.Unlock()
	if cc != nil {
		cc.fail(ErrClosed)
	}
	c.wg.Wait()
	return nil
}

// start registers cl on a live connection (dialing one if needed) and
// queues its frame.
func (c *Client) start(kind uint8, body []byte, app func([]byte) []byte, cl *call, deadline time.Time) (*clientConn, error) {
	if len(body) > c.maxBody() {
		// The peer would drop the connection, failing every call on it.
		return nil, fmt.Errorf("%w: %d-byte body, limit %d", ErrTooLarge, len(body), c.cfg.maxFrame-(wire.PeerHeaderLen-4))
	}
	for {
		cc, err := c.conn()
		if err != nil {
			return nil, err
		}
		err = cc.send(kind, body, app, cl, deadline)
		if err == nil {
			return cc, nil
		}
		if !errors.Is(err, errConnDown) {
			return nil, err
		}
		// The connection failed between conn() and send(): c.cur is
		// already marked, so the next conn() decides afresh.
	}
}

// maxBody is the largest request body the peer accepts.
func (c *Client) maxBody() int { return c.cfg.maxFrame - (wire.PeerHeaderLen - 4) }

// errConnDown marks a send on a connection that has already failed.
var errConnDown = errors.New("connection down")

// conn returns the live connection, starts a new one, or fails fast.
func (c *Client) conn() (*clientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.cur != nil && !c.cur.down.Load() {
		return c.cur, nil
	}
	if wait := time.Until(c.retryAt); wait > 0 {
		return nil, fmt.Errorf("%w: %w: %s: backing off %v after %d failures: %w",
			ErrPeerUnavailable, ErrNotSent, c.addr, wait.Round(time.Millisecond), c.failures, c.lastErr)
	}
	cc := &clientConn{
		client:  c,
		out:     newOutbox(0, []byte{RPCByte}),
		pending: make(map[uint64]*call),
	}
	cc.dialCtx, cc.dialCancel = context.WithTimeout(context.Background(), c.cfg.dialTimeout)
	c.cur = cc
	c.wg.Add(1)
	go cc.run()
	return cc, nil
}

// connFailed records a failed connection for the back-off.
func (c *Client) connFailed(cc *clientConn, cause error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cc.established.Load() {
		c.failures = 0
	}
	c.failures++
	c.lastErr = cause
	if c.failures > 1 {
		d := backoff.Exp(c.cfg.backoffMin, c.failures-2, c.cfg.backoffMax)
		if d <= 0 { // no minimum set
			d = c.cfg.backoffMax
		}
		c.retryAt = time.Now().Add(d)
	}
}

// call is one request in flight.
type call struct {
	id    uint64
	cb    func(kind uint8, body []byte, err error) // Go
	ch    chan result                              // Call
	timer *time.Timer                              // Go with a deadline
}

type result struct {
	kind uint8
	body []byte
	err  error
}

func (cl *call) deliver(kind uint8, body []byte, err error) {
	if cl.timer != nil {
		cl.timer.Stop()
	}
	if cl.cb != nil {
		cl.cb(kind, body, err)
		return
	}
	cl.ch <- result{kind, body, err}
}

// clientConn is one connection attempt and, once dialed, the connection.
type clientConn struct {
	client      *Client
	out         *outbox
	dialCtx     context.Context
	dialCancel  context.CancelFunc
	down        atomic.Bool // failed: no new calls
	established atomic.Bool // a reply arrived: the peer is really there

	// mu may be held while taking Client.mu (fail counts the failure),
	// never the other way round.
	mu      sync.Mutex
	pending map[uint64]*call // nil once failed
	conn    net.Conn         // nil until dialed
}

// send registers cl and queues its frame.
func (cc *clientConn) send(kind uint8, body []byte, app func([]byte) []byte, cl *call, deadline time.Time) error {
	cc.mu.Lock()
	if cc.pending == nil {
		cc.mu.Unlock()
		return errConnDown
	}
	cl.id = cc.client.nextID.Add(1)
	var err error
	if app != nil {
		err = cc.out.putAppend(kind, cl.id, app, cc.client.maxBody())
	} else {
		err = cc.out.put(kind, cl.id, body)
	}
	if errors.Is(err, ErrTooLarge) {
		cc.mu.Unlock()
		return err
	}
	if err != nil {
		// The writer failed and is about to fail the connection: do it
		// now so the caller's retry does not find it still up.
		cc.mu.Unlock()
		cc.fail(err)
		return errConnDown
	}
	cc.pending[cl.id] = cl
	if !deadline.IsZero() {
		id := cl.id
		cl.timer = time.AfterFunc(time.Until(deadline), func() {
			if cc.forget(id) {
				cl.cb(0, nil, context.DeadlineExceeded)
			}
		})
	}
	cc.mu.Unlock()
	return nil
}

// forget removes a call that gave up. It reports false if the call was no
// longer pending (its reply or failure is being delivered).
func (cc *clientConn) forget(id uint64) bool {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if _, ok := cc.pending[id]; !ok {
		return false
	}
	delete(cc.pending, id)
	return true
}

// take removes and returns a pending call.
func (cc *clientConn) take(id uint64) *call {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	cl := cc.pending[id]
	delete(cc.pending, id)
	return cl
}

// run dials, then reads replies until the connection fails; the writer
// runs alongside.
func (cc *clientConn) run() {
	c := cc.client
	defer c.wg.Done()
	conn, err := c.dial(cc.dialCtx, c.addr)
	cc.dialCancel()
	if err != nil {
		c.logger.Debug("rpc client: dial failed", "err", err)
		cc.fail(err)
		return
	}
	cc.mu.Lock()
	if cc.pending == nil { // failed (closed) while dialing
		cc.mu.Unlock()
		_ = conn.Close()
		return
	}
	cc.conn = conn
	cc.mu.Unlock()

	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		if err := cc.out.run(conn, c.cfg.writeTimeout); err != nil {
			cc.fail(err)
		}
	}()

	pr := wire.NewPeerReader(bufio.NewReaderSize(conn, readBufSize), c.cfg.maxFrame)
	for {
		f, err := pr.ReadPeerFrame()
		if err != nil {
			cc.fail(err)
			return
		}
		cc.established.Store(true)
		cl := cc.take(f.ID)
		if cl == nil {
			continue // it gave up (deadline, cancellation)
		}
		if f.Kind == KindError {
			cl.deliver(0, nil, &RemoteError{Msg: string(f.Body)})
			continue
		}
		cl.deliver(f.Kind, bytes.Clone(f.Body), nil)
	}
}

// fail takes the connection down once: no new calls, the connection
// closed, every pending call failed (in id order) with ErrClosed or
// ErrPeerUnavailable wrapping cause.
func (cc *clientConn) fail(cause error) {
	c := cc.client
	cc.mu.Lock()
	if cc.pending == nil {
		cc.mu.Unlock()
		return
	}
	if cause != ErrClosed {
		// Count the failure before the connection shows as down: a caller
		// that finds it down (conn, under c.mu) must also find the back-off
		// it earned, or it would dial again at once.
		c.connFailed(cc, cause)
	}
	cc.down.Store(true)
	pending := cc.pending
	cc.pending = nil
	conn := cc.conn
	cc.mu.Unlock()

	err, notSent := cause, cause
	if cause != ErrClosed {
		err = fmt.Errorf("%w: %s: %w", ErrPeerUnavailable, c.addr, cause)
		notSent = fmt.Errorf("%w: %w: %s: %w", ErrPeerUnavailable, ErrNotSent, c.addr, cause)
		if len(pending) > 0 || cc.established.Load() {
			lvl := slog.LevelInfo
			if cause == io.EOF || errors.Is(cause, net.ErrClosed) {
				lvl = slog.LevelDebug
			}
			c.logger.Log(context.Background(), lvl, "rpc client: connection failed", "err", cause, "failed_calls", len(pending))
		}
	}
	cc.dialCancel()
	cc.out.close(err)
	// closed before reading what was sent: no write starts after this,
	// and one under way stored its calls as sent before it began
	if conn != nil {
		_ = conn.Close()
	}
	sent := cc.out.sent.Load()
	if conn == nil {
		sent = 0 // never connected: nothing was written
	}
	ids := make([]uint64, 0, len(pending))
	for id := range pending {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if id > sent && cause != ErrClosed {
			// its frame never went out (queued behind the failure):
			// safe to retry
			pending[id].deliver(0, nil, notSent)
			continue
		}
		pending[id].deliver(0, nil, err)
	}
}
