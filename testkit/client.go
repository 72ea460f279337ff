package testkit

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/walrus-go/walrus/testkit/simnet"
	"github.com/walrus-go/walrus/wire"
)

// Client speaks the client protocol to one node over the simulated
// network, one request at a time. After a failure it drops the connection;
// the next request dials again.
type Client struct {
	net     *simnet.Network
	host    string
	addr    string
	timeout time.Duration
	mu      sync.Mutex // guards conn's changes, for HangUp from another goroutine
	conn    net.Conn
	fr      *wire.FrameReader
	w       *bufio.Writer
}

// NewClient returns a client on host (its own machine) that talks to the
// node whose client address is addr.
func NewClient(n *simnet.Network, host, addr string, timeout time.Duration) *Client {
	return &Client{net: n, host: host, addr: addr, timeout: timeout}
}

// Retarget points the client at another node (closing the connection).
func (c *Client) Retarget(addr string) {
	if addr != c.addr {
		c.Close()
		c.addr = addr
	}
}

// Addr is the node address the client talks to.
func (c *Client) Addr() string { return c.addr }

// Close drops the connection.
func (c *Client) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		_ = c.conn.Close()
		c.conn = nil
	}
}

// HangUp closes the connection under a request in flight (the client goes
// away while it waits): Do then fails with ErrNoReply. Safe to call from
// another goroutine than Do's.
func (c *Client) HangUp() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.conn != nil {
		_ = c.conn.Close()
	}
}

// ErrNoReply marks a request whose reply never came (the connection failed
// or the timeout passed after it was sent): its outcome is unknown.
var ErrNoReply = errors.New("no reply")

// ErrNotSent marks a request that never left the client (dial failed).
var ErrNotSent = errors.New("not sent")

// Do sends one request and returns the reply body.
func (c *Client) Do(req []byte) ([]byte, error) {
	if c.conn == nil {
		ctx, cancel := context.WithTimeout(context.Background(), c.timeout)
		conn, err := c.net.Host(c.host).Dial(ctx, c.addr)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrNotSent, err)
		}
		c.mu.Lock()
		c.conn = conn
		c.mu.Unlock()
		c.fr = wire.NewFrameReader(conn, 64<<20)
		c.w = bufio.NewWriter(conn)
	}
	deadline := time.Now().Add(c.timeout)
	_ = c.conn.SetDeadline(deadline)
	if err := wire.WriteFrame(c.w, req); err == nil {
		err = c.w.Flush()
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("%w: %v", ErrNoReply, err)
		}
	} else {
		c.Close()
		return nil, fmt.Errorf("%w: %v", ErrNoReply, err)
	}
	b, err := c.fr.ReadFrame()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("%w: %v", ErrNoReply, err)
	}
	return append([]byte(nil), b...), nil
}
