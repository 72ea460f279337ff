// Package simnet is an in-memory network for deterministic simulation: every
// connection is a pair of byte pipes whose data the network delivers after a
// simulated latency, holds while a partition or a pause separates the two
// hosts, and throws away when a connection is reset.
//
// A Network must be created and used inside one testing/synctest bubble: its
// channels and timers belong to that bubble, readers block on channels (so a
// blocked reader is "durably blocked" and virtual time can advance), and the
// delivery of data is driven by time.AfterFunc on the bubble's fake clock.
//
// Semantics, chosen to be TCP's where TCP has an answer:
//
//   - Within one connection bytes arrive in order, exactly once (FIFO), with
//     a latency drawn per write from the seeded source. Across connections
//     nothing is ordered: two connections between the same hosts reorder.
//   - A partition (Block/Partition) or a pause (Pause) holds data in flight;
//     it is delivered, in order, once the hosts can talk again (TCP
//     retransmits). Dials across a cut wait (the SYN is lost) until the cut
//     heals or the dialer's context ends.
//   - Reset (a killed process, a dropped connection) fails both ends at once
//     with ECONNRESET and loses what was in flight. A dial to an address with
//     no listener fails with ECONNREFUSED.
//   - Connections that start with the byte 'W' carry Walrus peer frames
//     (docs/protocol.md section 2). The network parses them so that it can report
//     them to a tap and, when configured, apply message-level faults TCP
//     would never cause: drop a frame, deliver a frame twice, or deliver it
//     late (after frames sent after it). Duplicates and reordering apply only
//     to the kinds the caller declares idempotent (Config.Idempotent); a drop
//     looks to the caller like a reply that never came.
//
// Every random choice comes from Config.Seed, keyed by the identity of the
// event (connection number, direction, write number) rather than drawn from
// one shared stream, so that a change in the order of unrelated events does
// not shift the choices made for all later ones.
package simnet

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/walrus-go/walrus/seam"
)

// Config sets the network's behaviour. The zero value delivers everything
// with no latency.
type Config struct {
	Seed int64
	// Latency of one write is drawn uniformly from [MinLatency, MaxLatency].
	MinLatency, MaxLatency time.Duration
	// Frame-level faults on peer frames ('W' connections), as probabilities
	// per frame in [0, 1]. DupFrame and ReorderFrame apply only to kinds in
	// Idempotent.
	DropFrame, DupFrame, ReorderFrame float64
	// ReorderDelay is the extra delay of a reordered frame (default 20ms).
	ReorderDelay time.Duration
	// Idempotent lists the peer frame kinds that may be duplicated or
	// reordered.
	Idempotent map[uint8]bool
	// LengthFramedPorts lists ports whose connections carry client frames
	// (a 4-byte little-endian length, then the body) both ways: each frame
	// then gets its own latency, so how a writer happened to batch frames
	// into one write does not change when they arrive.
	LengthFramedPorts []string
}

// FrameEvent describes one peer frame as it was written.
type FrameEvent struct {
	From, To string // hosts
	Request  bool   // written by the dialer (a request), else a reply
	Kind     uint8
	ID       uint64
	Body     []byte // the frame's body; the tap must not keep it
	Fate     Fate
}

// Fate is what the network did with a frame.
type Fate uint8

const (
	Delivered Fate = iota
	Dropped
	Duplicated
	Reordered
)

func (f Fate) String() string {
	return [...]string{"delivered", "dropped", "duplicated", "reordered"}[f]
}

// Stats counts what the network did.
type Stats struct {
	Dials, Refused, Resets   int
	Writes, Bytes            int
	Frames, Dropped, Duped   int
	Reordered, HeldDelivers  int
	PartitionsSet, Heals     int
	DialsBlockedByPartition  int
	FramesDroppedByReset     int
	ChunksDiscardedByClosing int
}

// Network is the simulated network. Its methods are safe for concurrent use.
//
// Lock order: a pipe's mu may be held while taking Network.mu, never the
// other way round (Network methods collect pipes under mu, release it, then
// act on each pipe).
type Network struct {
	cfg Config

	mu        sync.Mutex
	closed    bool
	listeners map[string]*listener
	cut       map[[2]string]bool // from host -> to host: no delivery
	paused    map[string]bool
	dead      map[string]bool
	slow      map[[2]string]time.Duration // extra latency per directed link
	pipes     map[*pipe]struct{}
	held      map[*pipe]struct{}
	nextConn  uint64
	nextPort  map[string]int
	changed   chan struct{} // closed and replaced when links change
	tap       func(FrameEvent)
	stats     Stats
}

// New returns a network. Call it inside the synctest bubble that uses it.
func New(cfg Config) *Network {
	if cfg.ReorderDelay == 0 {
		cfg.ReorderDelay = 20 * time.Millisecond
	}
	return &Network{
		cfg:       cfg,
		listeners: map[string]*listener{},
		cut:       map[[2]string]bool{},
		paused:    map[string]bool{},
		dead:      map[string]bool{},
		slow:      map[[2]string]time.Duration{},
		pipes:     map[*pipe]struct{}{},
		held:      map[*pipe]struct{}{},
		nextPort:  map[string]int{},
		changed:   make(chan struct{}),
	}
}

// SetTap installs a function called for every peer frame written (under the
// writing connection's lock: it must be quick and must not call the
// network).
func (n *Network) SetTap(f func(FrameEvent)) {
	n.mu.Lock()
	n.tap = f
	n.mu.Unlock()
}

// SetFrameFaults changes the frame-level fault probabilities.
func (n *Network) SetFrameFaults(drop, dup, reorder float64) {
	n.mu.Lock()
	n.cfg.DropFrame, n.cfg.DupFrame, n.cfg.ReorderFrame = drop, dup, reorder
	n.mu.Unlock()
}

// Stats returns a copy of the counters.
func (n *Network) Stats() Stats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stats
}

// Host returns the seam.Network through which host listens and dials.
// Addresses are "host:port"; the host part names the machine.
func (n *Network) Host(host string) seam.Network { return hostNet{n: n, host: host} }

type hostNet struct {
	n    *Network
	host string
}

func (h hostNet) Listen(addr string) (net.Listener, error) { return h.n.listen(h.host, addr) }
func (h hostNet) Dial(ctx context.Context, addr string) (net.Conn, error) {
	return h.n.dial(ctx, h.host, addr)
}

// HostOf returns the host part of an address.
func HostOf(addr string) string {
	if i := strings.LastIndexByte(addr, ':'); i >= 0 {
		return addr[:i]
	}
	return addr
}

// ---- link state ----

func (n *Network) blockedLocked(from, to string) bool {
	return n.cut[[2]string{from, to}] || n.paused[from] || n.paused[to]
}

// linkChangedLocked wakes waiting dials and returns the pipes holding data,
// to be kicked once mu is released.
func (n *Network) linkChangedLocked() []*pipe {
	close(n.changed)
	n.changed = make(chan struct{})
	out := make([]*pipe, 0, len(n.held))
	for p := range n.held {
		out = append(out, p)
	}
	clear(n.held)
	sort.Slice(out, func(i, j int) bool { return out[i].key() < out[j].key() })
	return out
}

func kick(ps []*pipe) {
	for _, p := range ps {
		p.mu.Lock()
		p.armLocked(true)
		p.mu.Unlock()
	}
}

// Block stops delivery from host a to host b (one direction).
func (n *Network) Block(a, b string) {
	n.mu.Lock()
	n.cut[[2]string{a, b}] = true
	n.stats.PartitionsSet++
	ps := n.linkChangedLocked()
	n.mu.Unlock()
	kick(ps)
}

// Partition cuts every link between a host of side and a host not in side
// (both directions); hosts lists every host of the network.
func (n *Network) Partition(side []string, hosts []string) {
	in := map[string]bool{}
	for _, h := range side {
		in[h] = true
	}
	n.mu.Lock()
	for _, a := range hosts {
		for _, b := range hosts {
			if a != b && in[a] != in[b] {
				n.cut[[2]string{a, b}] = true
			}
		}
	}
	n.stats.PartitionsSet++
	ps := n.linkChangedLocked()
	n.mu.Unlock()
	kick(ps)
}

// Heal removes every cut (pauses stay).
func (n *Network) Heal() {
	n.mu.Lock()
	clear(n.cut)
	n.stats.Heals++
	ps := n.linkChangedLocked()
	n.mu.Unlock()
	kick(ps)
}

// Pause holds all traffic to and from host until Resume (a stopped
// process: nothing it sends leaves, nothing sent to it is read).
func (n *Network) Pause(host string) {
	n.mu.Lock()
	n.paused[host] = true
	ps := n.linkChangedLocked()
	n.mu.Unlock()
	kick(ps)
}

// Resume ends a Pause.
func (n *Network) Resume(host string) {
	n.mu.Lock()
	delete(n.paused, host)
	ps := n.linkChangedLocked()
	n.mu.Unlock()
	kick(ps)
}

// SetSlow adds extra latency to every write from a to b (0 removes it).
func (n *Network) SetSlow(a, b string, extra time.Duration) {
	n.mu.Lock()
	if extra <= 0 {
		delete(n.slow, [2]string{a, b})
	} else {
		n.slow[[2]string{a, b}] = extra
	}
	n.mu.Unlock()
}

// Kill takes host off the network at once, as a power cut would: every
// connection with an end on it is reset, its listeners stop accepting,
// dials to it are refused and dials from it fail until Revive.
func (n *Network) Kill(host string) {
	n.mu.Lock()
	n.dead[host] = true
	var lns []*listener
	for addr, l := range n.listeners {
		if HostOf(addr) == host {
			lns = append(lns, l)
		}
	}
	n.mu.Unlock()
	sort.Slice(lns, func(i, j int) bool { return lns[i].addr < lns[j].addr })
	for _, l := range lns {
		l.Close()
	}
	n.ResetHost(host)
}

// Revive lets a killed host listen and dial again (its process restarts).
func (n *Network) Revive(host string) {
	n.mu.Lock()
	delete(n.dead, host)
	n.mu.Unlock()
}

// ResetHost resets every connection with an end on host (a killed
// process: the kernel resets its sockets).
func (n *Network) ResetHost(host string) {
	n.resetWhere(func(p *pipe) bool { return p.from == host || p.to == host })
}

// ResetLink resets every connection between hosts a and b.
func (n *Network) ResetLink(a, b string) {
	n.resetWhere(func(p *pipe) bool { return (p.from == a && p.to == b) || (p.from == b && p.to == a) })
}

func (n *Network) resetWhere(match func(*pipe) bool) {
	n.mu.Lock()
	var ps []*pipe
	for p := range n.pipes {
		if match(p) {
			ps = append(ps, p)
		}
	}
	n.mu.Unlock()
	sort.Slice(ps, func(i, j int) bool { return ps[i].key() < ps[j].key() })
	for _, p := range ps {
		p.reset(errReset())
	}
}

// Close resets every connection and closes every listener. Call it at the
// end of a run so no goroutine stays blocked in the bubble.
func (n *Network) Close() {
	n.mu.Lock()
	n.closed = true
	lns := make([]*listener, 0, len(n.listeners))
	for _, l := range n.listeners {
		lns = append(lns, l)
	}
	n.mu.Unlock()
	for _, l := range lns {
		l.Close()
	}
	n.resetWhere(func(*pipe) bool { return true })
}

// ---- randomness keyed by event ----

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// draw returns a number in [0,1) determined by the seed and the event key.
func (n *Network) draw(keys ...uint64) float64 {
	h := uint64(n.cfg.Seed)
	for _, k := range keys {
		h = splitmix(h ^ k)
	}
	return float64(h>>11) / (1 << 53)
}

// hashString folds a string into a key.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h = (h ^ uint64(s[i])) * 1099511628211
	}
	return h
}

// hashBytes folds bytes into a key.
func hashBytes(h uint64, b []byte) uint64 {
	for _, c := range b {
		h = (h ^ uint64(c)) * 1099511628211
	}
	return h
}

// latency draws the delay of one write. The key is the link, the virtual
// time and the bytes written (without a peer frame's request id), not the
// connection number or a running counter: when goroutines of the bubble
// interleave differently, the same write still gets the same delay.
func (n *Network) latency(p *pipe, content uint64, salt uint64) time.Duration {
	d := n.cfg.MinLatency
	if span := n.cfg.MaxLatency - n.cfg.MinLatency; span > 0 {
		k := hashString(p.from) ^ splitmix(hashString(p.to)) ^ uint64(p.dir)<<1
		d += time.Duration(n.draw(k, uint64(time.Now().UnixNano()), content, salt) * float64(span))
	}
	n.mu.Lock()
	d += n.slow[[2]string{p.from, p.to}]
	n.mu.Unlock()
	return d
}

// contentKey is the key of a write's bytes; for a peer frame, the request
// id (bytes 5..12) is left out: ids are handed out in call order, which
// depends on scheduling.
func contentKey(data []byte, frame bool) uint64 {
	if frame && len(data) >= 13 {
		return hashBytes(hashBytes(14695981039346656037, data[:5]), data[13:])
	}
	return hashBytes(14695981039346656037, data)
}

// ---- listeners and dials ----

type simAddr string

func (a simAddr) Network() string { return "sim" }
func (a simAddr) String() string  { return string(a) }

type listener struct {
	n    *Network
	addr string
	mu   sync.Mutex
	q    []*conn
	wake chan struct{}
	done chan struct{}
	shut bool
}

func (n *Network) listen(host, addr string) (net.Listener, error) {
	if HostOf(addr) != host {
		return nil, fmt.Errorf("simnet: host %s cannot listen on %s", host, addr)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return nil, &net.OpError{Op: "listen", Net: "sim", Addr: simAddr(addr), Err: net.ErrClosed}
	}
	if n.dead[host] {
		return nil, &net.OpError{Op: "listen", Net: "sim", Addr: simAddr(addr), Err: syscall.ENETDOWN}
	}
	if _, ok := n.listeners[addr]; ok {
		return nil, &net.OpError{Op: "listen", Net: "sim", Addr: simAddr(addr), Err: syscall.EADDRINUSE}
	}
	l := &listener{n: n, addr: addr, wake: make(chan struct{}, 1), done: make(chan struct{})}
	n.listeners[addr] = l
	return l, nil
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		l.mu.Lock()
		if l.shut {
			l.mu.Unlock()
			return nil, &net.OpError{Op: "accept", Net: "sim", Addr: simAddr(l.addr), Err: net.ErrClosed}
		}
		if len(l.q) > 0 {
			c := l.q[0]
			l.q = l.q[1:]
			l.mu.Unlock()
			return c, nil
		}
		l.mu.Unlock()
		select {
		case <-l.wake:
		case <-l.done:
		}
	}
}

func (l *listener) Close() error {
	l.n.mu.Lock()
	if l.n.listeners[l.addr] == l {
		delete(l.n.listeners, l.addr)
	}
	l.n.mu.Unlock()
	l.mu.Lock()
	if l.shut {
		l.mu.Unlock()
		return nil
	}
	l.shut = true
	q := l.q
	l.q = nil
	close(l.done)
	l.mu.Unlock()
	for _, c := range q {
		c.in.reset(errReset())
	}
	return nil
}

func (l *listener) Addr() net.Addr { return simAddr(l.addr) }

func errReset() error   { return &net.OpError{Op: "read", Net: "sim", Err: syscall.ECONNRESET} }
func errRefused() error { return syscall.ECONNREFUSED }

func (n *Network) dial(ctx context.Context, from, addr string) (net.Conn, error) {
	to := HostOf(addr)
	opErr := func(err error) error { return &net.OpError{Op: "dial", Net: "sim", Addr: simAddr(addr), Err: err} }
	for {
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			return nil, opErr(net.ErrClosed)
		}
		n.stats.Dials++
		if n.dead[from] {
			n.mu.Unlock()
			return nil, opErr(syscall.ENETDOWN)
		}
		if n.blockedLocked(from, to) || n.blockedLocked(to, from) {
			n.stats.DialsBlockedByPartition++
			ch := n.changed
			n.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return nil, opErr(os.ErrDeadlineExceeded)
			}
		}
		n.nextConn++
		id := n.nextConn
		n.nextPort[from]++
		port := 40000 + n.nextPort[from]
		n.mu.Unlock()

		// one round trip for the handshake
		c, s := n.newConnPair(id, from, to, from+":"+strconv.Itoa(port), addr)
		rtt := 2 * n.cfg.MinLatency
		t := time.NewTimer(rtt)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			n.forget(c.out, s.out)
			return nil, opErr(os.ErrDeadlineExceeded)
		}
		n.mu.Lock()
		l := n.listeners[addr]
		blocked := n.blockedLocked(from, to) || n.blockedLocked(to, from)
		if blocked {
			n.mu.Unlock()
			n.forget(c.out, s.out)
			continue
		}
		if l == nil || n.dead[to] || n.dead[from] {
			n.stats.Refused++
			n.mu.Unlock()
			n.forget(c.out, s.out)
			return nil, opErr(errRefused())
		}
		n.mu.Unlock()
		l.mu.Lock()
		if l.shut {
			l.mu.Unlock()
			n.forget(c.out, s.out)
			return nil, opErr(errRefused())
		}
		l.q = append(l.q, s)
		l.mu.Unlock()
		select {
		case l.wake <- struct{}{}:
		default:
		}
		return c, nil
	}
}

func (n *Network) forget(ps ...*pipe) {
	n.mu.Lock()
	for _, p := range ps {
		delete(n.pipes, p)
		delete(n.held, p)
	}
	n.mu.Unlock()
}

// ---- connections ----

// conn is one end of a connection: it reads from in and writes to out.
type conn struct {
	in, out       *pipe
	local, remote simAddr
	mu            sync.Mutex
	wdeadline     time.Time
}

func (n *Network) newConnPair(id uint64, from, to, caddr, saddr string) (client, server *conn) {
	up := newPipe(n, id, 0, from, to)   // client -> server
	down := newPipe(n, id, 1, to, from) // server -> client
	up.peer, down.peer = down, up
	n.mu.Lock()
	n.pipes[up] = struct{}{}
	n.pipes[down] = struct{}{}
	n.mu.Unlock()
	for _, port := range n.cfg.LengthFramedPorts {
		if strings.HasSuffix(saddr, ":"+port) {
			up.lenFramed, down.lenFramed = true, true
			up.decided, down.decided = true, true
		}
	}
	client = &conn{in: down, out: up, local: simAddr(caddr), remote: simAddr(saddr)}
	server = &conn{in: up, out: down, local: simAddr(saddr), remote: simAddr(caddr)}
	return client, server
}

func (c *conn) Read(b []byte) (int, error) { return c.in.read(b) }
func (c *conn) LocalAddr() net.Addr        { return c.local }
func (c *conn) RemoteAddr() net.Addr       { return c.remote }
func (c *conn) SetReadDeadline(t time.Time) error {
	c.in.setDeadline(t)
	return nil
}
func (c *conn) SetWriteDeadline(t time.Time) error {
	c.mu.Lock()
	c.wdeadline = t
	c.mu.Unlock()
	return nil
}
func (c *conn) SetDeadline(t time.Time) error {
	_ = c.SetReadDeadline(t)
	return c.SetWriteDeadline(t)
}

func (c *conn) Write(b []byte) (int, error) {
	c.mu.Lock()
	dl := c.wdeadline
	c.mu.Unlock()
	if !dl.IsZero() && !time.Now().Before(dl) {
		return 0, &net.OpError{Op: "write", Net: "sim", Err: os.ErrDeadlineExceeded}
	}
	return c.out.write(b)
}

// Close closes this end: reads fail at once, a FIN follows the data
// already written (the peer reads EOF after it).
func (c *conn) Close() error {
	c.in.closeReader()
	c.out.closeWriter()
	return nil
}

type chunk struct {
	at   time.Time
	seq  uint64
	data []byte
	fin  bool
}

// pipe is one direction of a connection.
type pipe struct {
	n        *Network
	conn     uint64
	dir      uint8
	from, to string
	peer     *pipe

	mu      sync.Mutex
	queue   []chunk // in flight, sorted by (at, seq)
	floor   time.Time
	seq     uint64
	timer   *time.Timer
	timerAt time.Time

	buf      []byte // delivered, unread
	eof      bool
	err      error
	rclosed  bool
	wclosed  bool
	notify   chan struct{}
	deadline time.Time

	// framing of 'W' connections (framed) and client-port connections
	// (lenFramed)
	decided   bool
	framed    bool
	lenFramed bool
	fbuf      []byte
}

func newPipe(n *Network, id uint64, dir uint8, from, to string) *pipe {
	return &pipe{n: n, conn: id, dir: dir, from: from, to: to, notify: make(chan struct{})}
}

func (p *pipe) key() uint64 { return p.conn<<1 | uint64(p.dir) }

func (p *pipe) wakeLocked() {
	close(p.notify)
	p.notify = make(chan struct{})
}

func (p *pipe) setDeadline(t time.Time) {
	p.mu.Lock()
	p.deadline = t
	p.wakeLocked()
	p.mu.Unlock()
}

func (p *pipe) read(b []byte) (int, error) {
	for {
		p.mu.Lock()
		switch {
		case p.rclosed:
			p.mu.Unlock()
			return 0, &net.OpError{Op: "read", Net: "sim", Err: net.ErrClosed}
		case len(p.buf) > 0:
			k := copy(b, p.buf)
			p.buf = p.buf[k:]
			if len(p.buf) == 0 {
				p.buf = nil
			}
			p.mu.Unlock()
			return k, nil
		case p.err != nil:
			err := p.err
			p.mu.Unlock()
			return 0, err
		case p.eof:
			p.mu.Unlock()
			return 0, io.EOF
		}
		dl := p.deadline
		now := time.Now()
		if !dl.IsZero() && !now.Before(dl) {
			p.mu.Unlock()
			return 0, &net.OpError{Op: "read", Net: "sim", Err: os.ErrDeadlineExceeded}
		}
		ch := p.notify
		p.mu.Unlock()
		if dl.IsZero() {
			<-ch
			continue
		}
		t := time.NewTimer(dl.Sub(now))
		select {
		case <-ch:
		case <-t.C:
		}
		t.Stop()
	}
}

func (p *pipe) write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err != nil {
		return 0, p.err
	}
	if p.wclosed {
		return 0, &net.OpError{Op: "write", Net: "sim", Err: net.ErrClosed}
	}
	if len(b) == 0 {
		return 0, nil
	}
	n := p.n
	n.mu.Lock()
	n.stats.Writes++
	n.stats.Bytes += len(b)
	n.mu.Unlock()
	data := append([]byte(nil), b...)
	if !p.decided && p.dir == 0 && !p.lenFramed {
		p.decided = true
		p.framed = data[0] == 'W'
		p.peer.mu.Lock()
		p.peer.decided, p.peer.framed = true, p.framed
		p.peer.mu.Unlock()
		if p.framed {
			p.enqueueLocked(data[:1], false)
			data = data[1:]
		}
	}
	switch {
	case p.framed:
		p.fbuf = append(p.fbuf, data...)
		p.framesLocked()
	case p.lenFramed:
		p.fbuf = append(p.fbuf, data...)
		for len(p.fbuf) >= 4 {
			l := int(binary.LittleEndian.Uint32(p.fbuf))
			if len(p.fbuf) < 4+l {
				break
			}
			p.enqueueLocked(p.fbuf[:4+l:4+l], false)
			p.fbuf = p.fbuf[4+l:]
		}
	default:
		p.enqueueLocked(data, false)
	}
	p.armLocked(false)
	return len(b), nil
}

// framesLocked cuts complete peer frames off fbuf and enqueues each with
// its fate.
func (p *pipe) framesLocked() {
	n := p.n
	for len(p.fbuf) >= 4 {
		l := int(binary.LittleEndian.Uint32(p.fbuf))
		if l < 9 || l > 1<<30 {
			// not a frame we understand: pass the rest through untouched
			p.enqueueLocked(p.fbuf, false)
			p.fbuf = nil
			return
		}
		if len(p.fbuf) < 4+l {
			return
		}
		frame := p.fbuf[: 4+l : 4+l]
		p.fbuf = p.fbuf[4+l:]
		kind := frame[4]
		id := binary.LittleEndian.Uint64(frame[5:13])
		p.seq++
		seq := p.seq
		n.mu.Lock()
		cfg := n.cfg
		tap := n.tap
		n.stats.Frames++
		n.mu.Unlock()
		fate := Delivered
		r := n.draw(hashString(p.from), hashString(p.to), uint64(p.dir), uint64(time.Now().UnixNano()), contentKey(frame, true), 7)
		_ = seq
		switch {
		case r < cfg.DropFrame:
			fate = Dropped
		case cfg.Idempotent[kind] && r < cfg.DropFrame+cfg.DupFrame:
			fate = Duplicated
		case cfg.Idempotent[kind] && r < cfg.DropFrame+cfg.DupFrame+cfg.ReorderFrame:
			fate = Reordered
		}
		if tap != nil {
			tap(FrameEvent{From: p.from, To: p.to, Request: p.dir == 0, Kind: kind, ID: id, Body: frame[13:], Fate: fate})
		}
		n.mu.Lock()
		switch fate {
		case Dropped:
			n.stats.Dropped++
		case Duplicated:
			n.stats.Duped++
		case Reordered:
			n.stats.Reordered++
		}
		n.mu.Unlock()
		switch fate {
		case Delivered:
			p.enqueueLocked(frame, false)
		case Duplicated:
			p.enqueueLocked(frame, false)
			p.enqueueLocked(frame, false)
		case Reordered:
			p.enqueueLocked(frame, true)
		}
	}
}

// enqueueLocked schedules data for delivery: after the previous chunk
// (FIFO), unless late is set (a reordered frame, delivered after chunks
// written later).
func (p *pipe) enqueueLocked(data []byte, late bool) {
	p.seq++
	at := time.Now().Add(p.n.latency(p, contentKey(data, p.framed), 0))
	if late {
		at = at.Add(p.n.cfg.ReorderDelay)
	} else {
		if at.Before(p.floor) {
			at = p.floor
		}
		p.floor = at
	}
	c := chunk{at: at, seq: p.seq, data: data}
	i := sort.Search(len(p.queue), func(i int) bool {
		q := p.queue[i]
		return q.at.After(at) || (q.at.Equal(at) && q.seq > c.seq)
	})
	p.queue = append(p.queue, chunk{})
	copy(p.queue[i+1:], p.queue[i:])
	p.queue[i] = c
}

// armLocked makes sure a timer will deliver the head of the queue (now,
// with force, for a pipe released from hold).
func (p *pipe) armLocked(force bool) {
	if len(p.queue) == 0 || p.err != nil {
		return
	}
	at := p.queue[0].at
	if p.timer != nil {
		if !force && !p.timerAt.After(at) {
			return
		}
		p.timer.Stop()
	}
	d := time.Until(at)
	if d < 0 {
		d = 0
	}
	p.timerAt = at
	p.timer = time.AfterFunc(d, p.deliver)
}

// deliver moves due chunks to the reader, or holds them while the hosts
// cannot talk.
func (p *pipe) deliver() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.timer = nil
	if p.err != nil || len(p.queue) == 0 {
		return
	}
	n := p.n
	n.mu.Lock()
	if n.blockedLocked(p.from, p.to) {
		n.held[p] = struct{}{}
		n.stats.HeldDelivers++
		n.mu.Unlock()
		return
	}
	n.mu.Unlock()
	now := time.Now()
	moved := false
	for len(p.queue) > 0 && !p.queue[0].at.After(now) {
		c := p.queue[0]
		p.queue = p.queue[1:]
		if c.fin {
			p.eof = true
			moved = true
			continue
		}
		if p.rclosed {
			continue
		}
		p.buf = append(p.buf, c.data...)
		moved = true
	}
	if moved {
		p.wakeLocked()
	}
	if len(p.queue) == 0 && p.eof {
		n.forget(p)
	}
	p.armLocked(false)
}

func (p *pipe) closeReader() {
	p.mu.Lock()
	p.rclosed = true
	p.buf = nil
	p.wakeLocked()
	p.mu.Unlock()
}

func (p *pipe) closeWriter() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.wclosed || p.err != nil {
		return
	}
	p.wclosed = true
	if len(p.fbuf) > 0 {
		p.enqueueLocked(p.fbuf, false)
		p.fbuf = nil
	}
	p.seq++
	at := time.Now().Add(p.n.latency(p, 0, 3))
	if at.Before(p.floor) {
		at = p.floor
	}
	p.floor = at
	p.queue = append(p.queue, chunk{at: at, seq: p.seq, fin: true})
	sort.SliceStable(p.queue, func(i, j int) bool { return p.queue[i].at.Before(p.queue[j].at) })
	p.armLocked(false)
}

// reset fails both directions of the connection at once.
func (p *pipe) reset(err error) {
	for _, q := range []*pipe{p, p.peer} {
		q.mu.Lock()
		if q.err == nil {
			q.err = err
			if q.timer != nil {
				q.timer.Stop()
				q.timer = nil
			}
			q.queue = nil
			q.buf = nil
			q.wakeLocked()
		}
		q.mu.Unlock()
	}
	p.n.mu.Lock()
	p.n.stats.Resets++
	p.n.mu.Unlock()
	p.n.forget(p, p.peer)
}

// IsReset reports whether err is a connection reset.
func IsReset(err error) bool { return errors.Is(err, syscall.ECONNRESET) }
