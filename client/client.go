package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walrus-go/walrus/internal/backoff"
	"github.com/walrus-go/walrus/wire"
)

// Client is a connection pool to a Walrus cluster. It is safe for
// concurrent use by any number of goroutines. Close it when done.
type Client struct {
	cfg    config
	ctx    context.Context // done once Close is called
	cancel context.CancelFunc

	mu      sync.Mutex
	pools   map[string]*nodePool
	order   []*nodePool // seeds first, then addresses learned from LEADER
	leaders map[string]*leaderEntry
	// noLeaderCmd: a node answered LEADER with "unknown command" (a
	// reference server): smart routing is off for good.
	noLeaderCmd atomic.Bool
	rr          atomic.Uint64 // round-robin position over order

	randMu sync.Mutex
	rnd    *rand.Rand

	closeOnce sync.Once
}

// leaderEntry caches where a topic's writes go. While a lookup runs with
// nothing known, fetching is non-nil and is closed when it ends; callers
// that find it wait for that lookup instead of starting their own. Once
// a known leader's entry expires, writes keep going there while one
// lookup runs beside them (refreshing): no write waits for it.
type leaderEntry struct {
	addr       string // "" when the lookup failed: any node
	expires    time.Time
	fetching   chan struct{}
	refreshing bool
}

// errIdle retires a connection idle for longer than the idle timeout.
var errIdle = errors.New("walrus: connection idle for too long")

// errConnSilent breaks a connection on which a request got no reply in
// time.
var errConnSilent = errors.New("walrus: connection presumed dead: a request on it got no reply in time")

// Dial returns a client of the cluster whose nodes listen for clients at
// addrs (any subset of the nodes: the client sends requests to these, and
// to segment leaders it learns about). It connects to the first reachable
// address before returning, so a wrong address list fails here; ctx bounds
// that. The other connections are opened when needed.
func Dial(ctx context.Context, addrs []string, opts ...Option) (*Client, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.rand == nil {
		now := uint64(time.Now().UnixNano())
		cfg.rand = rand.NewPCG(now, now>>32|1)
	}
	c := &Client{cfg: cfg, pools: map[string]*nodePool{}, leaders: map[string]*leaderEntry{}, rnd: rand.New(cfg.rand)}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	for _, a := range addrs {
		c.poolFor(a)
	}
	if len(c.order) == 0 {
		c.Close()
		return nil, ErrNoNodes
	}
	var errs []error
	for _, p := range c.order {
		if _, err := p.get(ctx); err != nil {
			errs = append(errs, err)
			continue
		}
		return c, nil
	}
	c.Close()
	return nil, fmt.Errorf("walrus: no node reachable: %w", errors.Join(errs...))
}

// Close closes every connection and waits for the client's goroutines to
// exit. Calls in flight fail (with an error matching ErrClosed); later
// calls fail with ErrClosed. Close is idempotent and always returns nil.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.cancel()
		c.mu.Lock()
		pools := c.order
		c.mu.Unlock()
		for _, p := range pools {
			p.close()
		}
	})
	return nil
}

// poolFor returns the pool of addr, creating it (and adding addr to the
// rotation) on first use.
func (c *Client) poolFor(addr string) *nodePool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p, ok := c.pools[addr]; ok {
		return p
	}
	p := &nodePool{addr: addr, cl: c}
	if c.ctx.Err() != nil {
		p.closed = true
	}
	c.pools[addr] = p
	c.order = append(c.order, p)
	return p
}

// op is one logical request.
type op struct {
	kind  opKind
	body  []byte        // request body (no frame header)
	topic string        // for routing writes to the segment leader
	wait  time.Duration // how long the server may hold it (GETW, GROUPREAD)
}

// do runs o until it gets a reply, retrying per the policy, and returns
// the reply body. An ERR reply is returned as a *ServerError.
func (c *Client) do(ctx context.Context, o *op) ([]byte, error) {
	if c.ctx.Err() != nil {
		return nil, ErrClosed
	}
	if len(o.body) > c.cfg.maxFrame {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(o.body), c.cfg.maxFrame)
	}
	frame := wire.AppendFrame(make([]byte, 0, wire.FrameHeaderLen+len(o.body)), o.body)
	tried := map[string]bool{}
	unknown := false // an earlier attempt of this write may have taken effect
	for attempt := 1; ; attempt++ {
		if err := ctx.Err(); err != nil && attempt == 1 {
			return nil, err // nothing sent
		}
		addr := c.route(ctx, o, tried)
		body, err := c.roundTrip(ctx, addr, frame, o)
		if err == nil {
			r := wire.ParseReply(body)
			if r.Kind != wire.ReplyErr {
				return body, nil
			}
			err = &ServerError{Msg: string(r.Payload)}
		}
		c.noteFailure(o, addr, err, tried)
		if !retryable(o.kind, err, c.cfg.retryUnknownWrites) {
			return nil, unknownBefore(err, unknown)
		}
		if p := c.cfg.retry; p.Attempts > 0 && attempt >= p.Attempts {
			return nil, unknownBefore(err, unknown)
		}
		unknown = unknown || (o.kind == opWrite && IsOutcomeUnknown(err))
		if serr := c.sleep(ctx, c.backoff(attempt)); serr != nil {
			return nil, unknownBefore(&gaveUpError{last: err, why: serr}, unknown)
		}
	}
}

// unknownBefore marks err as leaving the outcome open when an earlier
// attempt's outcome was unknown (a write retried under RetryUnknownWrites
// that then failed for good may still have been appended by that attempt).
func unknownBefore(err error, unknown bool) error {
	if !unknown || IsOutcomeUnknown(err) {
		return err
	}
	return &earlierUnknownError{err}
}

type earlierUnknownError struct{ err error }

func (e *earlierUnknownError) Error() string {
	return e.err.Error() + " (an earlier attempt's outcome is unknown)"
}
func (e *earlierUnknownError) Unwrap() []error { return []error{e.err, ErrOutcomeUnknown} }

// gaveUpError: the context ended or the client closed while waiting to
// retry after last.
type gaveUpError struct{ last, why error }

func (e *gaveUpError) Error() string {
	return e.last.Error() + " (gave up retrying: " + e.why.Error() + ")"
}
func (e *gaveUpError) Unwrap() []error { return []error{e.last, e.why} }

// noteFailure updates routing after a failed attempt at addr.
func (c *Client) noteFailure(o *op, addr string, err error, tried map[string]bool) {
	var se *ServerError
	if errors.As(err, &se) {
		if IsNotLeader(err) && o.topic != "" {
			c.forgetLeader(o.topic)
		}
		return
	}
	var te *transportError
	if errors.As(err, &te) {
		tried[addr] = true
		if o.topic != "" {
			c.forgetLeader(o.topic)
		}
	}
}

// roundTrip sends one request to addr and waits for its reply.
func (c *Client) roundTrip(ctx context.Context, addr string, frame []byte, o *op) ([]byte, error) {
	cn, err := c.poolFor(addr).get(ctx)
	if err != nil {
		if errors.Is(err, ErrClosed) {
			return nil, ErrClosed
		}
		return nil, &transportError{addr: addr, err: err}
	}
	cl := newCall(frame, o.wait)
	ahead, err := cn.submit(cl)
	if err != nil {
		return nil, &transportError{addr: addr, err: err}
	}
	// the server answers within its own deadline, plus the time it may
	// hold this request (GETW, GROUPREAD) and those ahead of it
	timer := time.NewTimer(c.cfg.requestTimeout + cl.wait + ahead)
	defer timer.Stop()
	select {
	case <-cl.done:
		return finished(addr, cl)
	case <-ctx.Done():
		return abandon(addr, cn, cl, ctx.Err())
	case <-timer.C:
		reply, err := abandon(addr, cn, cl, ErrTimeout)
		var te *transportError
		if errors.As(err, &te) && te.sent {
			// a live server would have answered: presume the connection
			// dead (calls behind this one fail with unknown outcome)
			cn.fail(errConnSilent)
		}
		return reply, err
	}
}

func finished(addr string, cl *call) ([]byte, error) {
	if cl.err != nil {
		return nil, &transportError{addr: addr, sent: cl.sent, err: cl.err}
	}
	return cl.reply, nil
}

// abandon gives up waiting for cl: withdrawn if not yet written, else left
// to complete unseen (its late reply is discarded).
func abandon(addr string, cn *conn, cl *call, why error) ([]byte, error) {
	if cn.withdraw(cl) {
		return nil, &transportError{addr: addr, err: why}
	}
	select {
	case <-cl.done:
		// it completed meanwhile: a reply is better than an error (a GET's
		// entry would otherwise be lost)
		return finished(addr, cl)
	default:
	}
	return nil, &transportError{addr: addr, sent: cn.wasSent(cl), err: why}
}

// route picks the node for the next attempt: the topic's segment leader
// for writes (smart routing), else the next node in rotation that this
// call has not failed on and that is not known to be down.
func (c *Client) route(ctx context.Context, o *op, tried map[string]bool) string {
	if o.kind == opWrite && o.topic != "" && c.cfg.smartRouting && !c.noLeaderCmd.Load() {
		if addr := c.leaderAddr(ctx, o.topic); addr != "" && !tried[addr] {
			return addr
		}
	}
	return c.anyNode(tried)
}

func (c *Client) anyNode(tried map[string]bool) string {
	c.mu.Lock()
	order := c.order
	c.mu.Unlock()
	n := uint64(len(order))
	start := c.rr.Add(1)
	now := time.Now()
	fallback := ""
	for i := range n {
		p := order[(start+i)%n]
		if tried[p.addr] {
			continue
		}
		if !p.isDown(now) {
			return p.addr
		}
		if fallback == "" {
			fallback = p.addr
		}
	}
	if fallback != "" {
		return fallback
	}
	// every node failed once in this call: start another round
	clear(tried)
	return order[start%n].addr
}

// leaderAddr returns the cached client address of the node leading the
// topic's active segment, looking it up (LEADER) when the cache has
// nothing fresh. "" means no preference. An expired entry that names a
// node is still returned while a lookup refreshes it in the background.
func (c *Client) leaderAddr(ctx context.Context, topic string) string {
	c.mu.Lock()
	e := c.leaders[topic]
	if e != nil && e.fetching == nil {
		fresh := time.Now().Before(e.expires)
		if !fresh && e.addr != "" && !e.refreshing {
			e.refreshing = true
			go c.refreshLeader(topic, e)
		}
		if fresh || e.refreshing {
			c.mu.Unlock()
			return e.addr
		}
	}
	if e != nil && e.fetching != nil {
		ch := e.fetching
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ""
		}
		c.mu.Lock()
		defer c.mu.Unlock()
		if e := c.leaders[topic]; e != nil && e.fetching == nil {
			return e.addr
		}
		return ""
	}
	ch := make(chan struct{})
	c.leaders[topic] = &leaderEntry{fetching: ch}
	c.mu.Unlock()

	addr, ttl := c.lookupLeader(ctx, topic)
	c.mu.Lock()
	if cur := c.leaders[topic]; cur != nil && cur.fetching == ch {
		c.leaders[topic] = &leaderEntry{addr: addr, expires: time.Now().Add(ttl)}
	}
	c.mu.Unlock()
	close(ch)
	return addr
}

// refreshLeader looks up the leader of topic beside the writes that keep
// going to stale's node, and replaces stale with the answer unless the
// entry changed meanwhile (a NotLeader reply forgot it, or a Leader call
// remembered a newer one). A failed lookup keeps stale's node for another
// second rather than send writes through any node.
func (c *Client) refreshLeader(topic string, stale *leaderEntry) {
	ctx, cancel := context.WithTimeout(c.ctx, c.cfg.requestTimeout)
	defer cancel()
	addr, ttl := c.lookupLeader(ctx, topic)
	if addr == "" {
		addr = stale.addr
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leaders[topic] == stale {
		c.leaders[topic] = &leaderEntry{addr: addr, expires: time.Now().Add(ttl)}
	}
}

// lookupLeader asks any node (LEADER) which node leads topic's active
// segment: its client address and how long to cache the answer ("" and a
// second when the lookup failed; a node without LEADER turns smart
// routing off).
func (c *Client) lookupLeader(ctx context.Context, topic string) (string, time.Duration) {
	addr, ttl := "", time.Second // a failed lookup is not repeated for a second
	body := wire.AppendRequest(nil, &wire.Request{Cmd: wire.CmdLeader, Topic: topic})
	frame := wire.AppendFrame(nil, body)
	reply, err := c.roundTrip(ctx, c.anyNode(map[string]bool{}), frame, &op{kind: opIdempotent})
	if err == nil {
		r := wire.ParseReply(reply)
		switch {
		case r.Kind == wire.ReplyErr && string(r.Payload) == wire.ErrUnknownCommand.Msg:
			c.noLeaderCmd.Store(true)
		case r.Kind == wire.ReplyOK:
			if _, _, a, perr := wire.ParseLeaderReply(r.Payload); perr == nil { // the parser refuses an empty address
				addr, ttl = a, c.cfg.leaderTTL
				c.poolFor(a)
			}
		}
	}
	return addr, ttl
}

// rememberLeader caches addr as the topic's write target.
func (c *Client) rememberLeader(topic, addr string) {
	if addr == "" {
		return
	}
	c.poolFor(addr)
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.leaders[topic]; e == nil || e.fetching == nil {
		c.leaders[topic] = &leaderEntry{addr: addr, expires: time.Now().Add(c.cfg.leaderTTL)}
	}
}

// forgetLeader drops the cached leader of topic (a lookup in flight
// finishes and caches its own answer).
func (c *Client) forgetLeader(topic string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.leaders[topic]; e != nil && e.fetching == nil {
		delete(c.leaders, topic)
	}
}

// backoff is the sleep before attempt+1: uniform in [min, min(max, min*2^(attempt-1))].
func (c *Client) backoff(attempt int) time.Duration {
	p := c.cfg.retry
	lo := max(p.MinBackoff, 0)
	hi := max(p.MaxBackoff, lo)
	top := backoff.Exp(lo, attempt-1, hi)
	if top <= lo {
		return lo
	}
	c.randMu.Lock()
	defer c.randMu.Unlock()
	return lo + time.Duration(c.rnd.Int64N(int64(top-lo)+1))
}

// sleep waits d, or less if ctx ends (its error) or the client closes
// (ErrClosed).
func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.ctx.Done():
		return ErrClosed
	}
}
