package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/walrus-go/walrus/messages"
	"github.com/walrus-go/walrus/raftfsm"
	"github.com/walrus-go/walrus/transport"
	"github.com/walrus-go/walrus/wal"
)

// Node is one Walrus node: storage engine, raft host, internal port, client
// port and the actor tree. Start wires them; Stop tears them down in the
// reverse order.
type Node struct {
	cfg Config
	log *slog.Logger

	wal      *wal.WAL
	raftLn   net.Listener
	mux      *transport.Mux
	host     *raftHost
	peers    *peerSet
	lease    *leaseKeeper
	clientLn net.Listener
	http     *httpServer

	system *actor.ActorSystem
	root   *actor.PID
	// hotProps puts an actor of the write and read paths on this node's
	// worker pool (dispatch.go).
	hotProps actor.PropsOption

	// leaders maps a topic to the PID of the segment actor leading its
	// active segment here: the hot path of a local PUT skips the topic
	// actor. Written only by segment actors (on lead / stop).
	leaders sync.Map // string -> *actor.PID
	// topics maps a topic to its topic actor. Written only by the root.
	topics sync.Map // string -> *actor.PID
	// segments maps a segment replica to its actor: replication batches
	// skip the topic actor. Written only by segment actors (start / stop).
	segments sync.Map // wal.SegmentKey -> *actor.PID
	// hwms holds the high-water mark of each topic whose active segment
	// this node leads (topic-global offset), for STATE.
	hwms sync.Map // string -> *atomic.Uint64

	metaPending atomic.Bool
	// joining: a join is under way (no catch-up before it answers);
	// rejoined: the join said this node was already a member.
	joining, rejoined atomic.Bool
	crashed           atomic.Bool               // Crash: actors must not flush or propose while dying
	stopping          atomic.Bool               // Stop or Crash has begun (raft's complaints are demoted: NewRaftLogger)
	readyTerm         atomic.Uint64             // the raft term whose barrier this node (as leader) has passed
	rootPID           atomic.Pointer[actor.PID] // set once the root runs (the apply hook may fire earlier)
	listenerPID       atomic.Pointer[actor.PID] // the client connections' parent
	caughtUp          atomic.Bool
	holdMeta          atomic.Bool // testkit only (HoldMetadata): the root does not fan metadata out
	ctx               context.Context
	cancel            context.CancelFunc
	wg                sync.WaitGroup
	stopOnce          sync.Once
	connSeq           atomic.Uint64
	metrics           *nodeMetrics
	// getIDs numbers the GETs this node forwards to the cursor owner
	// (GetReq.ID), from the start time in nanoseconds, so that a restarted
	// node never reuses an id of its earlier life that may still be open
	// at the owner; remoteGets are the GETs other nodes forwarded here,
	// which they may withdraw.
	getIDs     atomic.Uint64
	remoteGets remoteGets

	// recovering holds the segments whose recovery runs on this node.
	recovering sync.Map // wal.SegmentKey -> bool
	// inheritedSegs are open segments this node led before it lost its
	// state (set once, on catch-up); guarded by inheritMu.
	inheritMu     sync.Mutex
	inheritedSegs map[topicSeg]bool
}

// Start opens the node's state, joins or forms the cluster and starts
// serving. It returns once every port is listening.
func Start(cfg Config) (n *Node, err error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	n = &Node{cfg: cfg, log: cfg.Logger.With("node", cfg.NodeID), inheritedSegs: map[topicSeg]bool{}}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	n.metrics = newNodeMetrics()
	n.hotProps = newHotProps()
	// forwarded GETs' ids start at the start time (see getIDs)
	n.getIDs.Store(uint64(n.now().UnixNano()))
	started := n // the returns below set n to nil
	defer func() {
		if err != nil {
			started.Stop()
		}
	}()
	if err := os.MkdirAll(cfg.NodeDir(), 0o755); err != nil {
		return nil, err
	}
	n.wal, err = wal.Open(filepath.Join(cfg.NodeDir(), "wal"), wal.Options{
		FS: cfg.FS, Sync: cfg.Sync, SyncInterval: cfg.SyncInterval, Prealloc: cfg.WALPrealloc, DropBehind: cfg.WALDropBehind,
		SetAsideCorrupt: cfg.WALSetAsideCorrupt, Logger: n.log.With("part", "wal"),
	})
	if err != nil {
		return nil, fmt.Errorf("open wal: %w", err)
	}
	n.raftLn, err = cfg.Network.Listen(cfg.RaftAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on raft port: %w", err)
	}
	if n.cfg.AdvertiseRaftAddr == cfg.RaftAddr {
		// a listen address with port 0 advertises the port it got
		n.cfg.AdvertiseRaftAddr = n.raftLn.Addr().String()
	}
	n.clientLn, err = cfg.Network.Listen(cfg.ClientAddr)
	if err != nil {
		return nil, fmt.Errorf("listen on client port: %w", err)
	}
	if n.cfg.AdvertiseClientAddr == cfg.ClientAddr {
		n.cfg.AdvertiseClientAddr = n.clientLn.Addr().String()
	}
	n.mux = transport.NewMux(n.raftLn, n.log.With("part", "mux"))
	n.peers = newPeerSet(n)
	n.lease = &leaseKeeper{}
	n.lease.init(cfg.LeaseWindow)
	go n.mux.Serve()

	n.system = NewActorSystem(n.log, cfg.LibLogLevel)
	n.host, err = newRaftHost(n, n.metaChanged)
	if err != nil {
		return nil, err
	}
	n.root, err = n.system.Root.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return newRootActor(n) },
		actor.WithSupervisor(actor.NewOneForOneStrategy(10, 10*time.Second, actor.DefaultDecider))), "node")
	if err != nil {
		return nil, err
	}
	n.rootPID.Store(n.root)
	// RPCs before this point are answered "not ready" by the mux
	n.mux.SetRPCHandler(rpcHandler{n})
	n.host.observe()
	if !n.host.hadState && len(cfg.Join) > 0 {
		n.joining.Store(true)
		n.goBackground(func() { n.host.join(n.ctx) })
	}
	n.goBackground(n.pingLoop)

	n.goBackground(n.acceptClients)
	if cfg.HTTPAddr != "" {
		if n.http, err = startHTTP(n); err != nil {
			return nil, err
		}
	}
	n.metaChanged(n.host.State())
	n.log.Info("node started", "client", n.clientLn.Addr().String(), "raft", n.raftLn.Addr().String(),
		"had_state", n.host.hadState, "fsync", fsyncFlag(cfg))
	return n, nil
}

// fsyncFlag names the node's WAL sync mode as --fsync spells it (always,
// interval:<d>, never), for the start line an operator checks it by.
func fsyncFlag(cfg Config) string {
	switch cfg.Sync {
	case wal.SyncEveryBatch:
		return "always"
	case wal.SyncInterval:
		d := cfg.SyncInterval
		if d <= 0 {
			d = wal.DefaultSyncInterval
		}
		return "interval:" + d.String()
	}
	return cfg.Sync.String()
}

// Stop shuts the node down: client port first, then the open segments it
// leads are sealed so that their writers go on at once on another node
// (handOverSegments), then actors (cursor positions are flushed through
// raft while it still runs), then raft, the internal port and the WAL.
func (n *Node) Stop() { n.stop(true) }

// Crash stops the node the way a power cut or kill -9 would, as far as a
// process can: no graceful actor shutdown (cursor positions are not
// flushed), no leadership hand-over. What the WAL had not synced is lost
// only if its FS loses it (the testkit's simulated disk does; a real
// process keeps the page cache). For tests and the testkit.
func (n *Node) Crash() { n.stop(false) }

func (n *Node) stop(graceful bool) {
	n.stopOnce.Do(func() {
		n.stopping.Store(true)
		if n.clientLn != nil {
			n.clientLn.Close()
		}
		if graceful && n.host != nil {
			n.handOverSegments()
		}
		if graceful && n.host != nil {
			// have the raft leader commit every cursor position while this
			// node still takes part in raft: when the whole cluster stops at
			// once, the leader's own flush would find no quorum otherwise
			ctx, cancel := ctxTimeout(n, 2*time.Second)
			if leader, _ := n.host.Leader(); leader != 0 {
				var resp messages.FlushResp
				if err := n.call(ctx, leader, messages.KindFlush, &messages.FlushReq{}, &resp); err != nil {
					// the leader is gone or stopping too (a whole cluster
					// stopped at once): a leader that stops gracefully
					// flushes its cursors itself, and one that died leaves
					// the at-least-once window, which no retry here changes
					n.log.Info("graceful stop: the raft leader could not be asked to flush cursor positions (stopping or gone)", "leader", leader, "err", err)
				} else if err := resp.Err.AsError(); err != nil {
					// the leader answered and could not commit them: the
					// cursors' at-least-once window covers what was not
					// committed; say so, and go on stopping
					n.log.Warn("graceful stop: flushing cursor positions through the raft leader failed", "leader", leader, "err", err)
				}
			}
			cancel()
		}
		if n.http != nil {
			n.http.stop()
		}
		if !graceful {
			// as abrupt as a process can be: drop every client connection,
			// stop the actors without flushing anything (cursor actors see
			// crashed), then tear the rest down
			n.crashed.Store(true)
			n.cancel()
			if pid := n.listenerPID.Load(); pid != nil {
				n.system.Root.Stop(pid)
			}
			if n.root != nil {
				n.system.Root.Stop(n.root)
			}
		}
		if n.root != nil && graceful {
			// graceful: topic actors flush cursors while raft still runs
			if err := n.system.Root.StopFuture(n.root).Wait(); err != nil {
				n.log.Warn("actors did not stop in time", "err", err, "alive", n.liveActors())
			}
		}
		if graceful && n.host != nil && n.host.IsLeader() {
			// hand raft leadership to the most up-to-date follower, so the
			// cluster has its next leader (and cursor owner) at once, not
			// after an election timeout
			n.host.transferLeadership(n.cfg.RaftHeartbeat)
		}
		n.cancel()
		if n.host != nil {
			n.host.shutdown()
		}
		if n.mux != nil {
			n.mux.Close()
		}
		if n.peers != nil {
			n.peers.closeAll()
		}
		n.wg.Wait()
		if n.system != nil {
			n.system.Shutdown()
		}
		if n.wal != nil {
			if err := n.wal.Close(); err != nil {
				n.log.Warn("wal close", "err", err)
			}
		}
		n.log.Info("node stopped")
	})
}

// liveActors lists the actors still registered (for a stop that hangs).
func (n *Node) liveActors() []string {
	var out []string
	for _, m := range n.system.ProcessRegistry.LocalPIDs.LocalPIDs {
		out = append(out, m.Keys()...)
	}
	return out
}

// flushCursors commits every running cursor's position (raft leader only).
func (n *Node) flushCursors(ctx context.Context) error {
	var pending []chan error
	n.topics.Range(func(_, pid any) bool {
		ch := make(chan error, 1)
		pending = append(pending, ch)
		n.system.Root.Send(pid.(*actor.PID), cursorReq{group: "", existing: true,
			msg:  flushMsg{reply: func(err error) { ch <- err }},
			fail: func(err error) { ch <- err }})
		return true
	})
	var first error
	for _, ch := range pending {
		select {
		case err := <-ch:
			if err != nil && first == nil {
				first = err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return first
}

// ID is this node's id.
func (n *Node) ID() uint64 { return n.cfg.NodeID }

// ClientAddr is the address the client port listens on.
func (n *Node) ClientAddr() string { return n.clientLn.Addr().String() }

// RaftAddr is the address the internal port listens on.
func (n *Node) RaftAddr() string { return n.raftLn.Addr().String() }

// State returns the node's current metadata (read-only).
func (n *Node) State() *raftfsm.State { return n.host.State() }

// IsRaftLeader reports whether this node leads the raft group.
func (n *Node) IsRaftLeader() bool { return n.host.IsLeader() }

func (n *Node) goBackground(f func()) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
}

// after returns a channel that fires after d on the node's clock.
func (n *Node) after(d time.Duration) <-chan struct{} {
	ch := make(chan struct{})
	n.cfg.Clock.AfterFunc(d, func() { close(ch) })
	return ch
}

func (n *Node) now() time.Time { return n.cfg.Clock.Now() }

func (n *Node) selfAddrs() messages.NodeAddrs {
	http := n.cfg.AdvertiseHTTPAddr
	if http == "" {
		http = n.cfg.HTTPAddr
	}
	return messages.NodeAddrs{ID: n.cfg.NodeID, RaftAddr: n.cfg.AdvertiseRaftAddr,
		ClientAddr: n.cfg.AdvertiseClientAddr, HTTPAddr: http}
}

// metaChanged is called (on raft's FSM goroutine) after every applied
// command. It coalesces: the root is told once, and reads the newest state.
func (n *Node) metaChanged(st *raftfsm.State) {
	n.lease.applied(st.LastApplied)
	if root := n.rootPID.Load(); root != nil && n.metaPending.CompareAndSwap(false, true) {
		n.system.Root.Send(root, metaChangedMsg{})
	}
}

// call sends an RPC to node id (handled in-process when id is this node)
// and decodes the response into resp.
func (n *Node) call(ctx context.Context, id uint64, kind messages.Kind, req, resp any) error {
	body, err := messages.Encode(req)
	if err != nil {
		return err
	}
	var rk uint8
	var rb []byte
	if id == n.cfg.NodeID {
		rk, rb, err = rpcHandler{n}.Handle(ctx, uint8(kind), body)
	} else {
		c, cerr := n.peers.get(id)
		if cerr != nil {
			return cerr
		}
		rk, rb, err = c.Call(ctx, uint8(kind), body)
	}
	if err != nil {
		return wrapTransportErr(err)
	}
	return messages.Decode(messages.Kind(rk), rb, resp)
}

// callAddr is call to a raft address that may not be a known member yet
// (joining).
func (n *Node) callAddr(ctx context.Context, addr string, kind messages.Kind, req, resp any) error {
	body, err := messages.Encode(req)
	if err != nil {
		return err
	}
	c := transport.NewClient(addr, n.cfg.Network.Dial, n.log)
	defer c.Close()
	rk, rb, err := c.Call(ctx, uint8(kind), body)
	if err != nil {
		return wrapTransportErr(err)
	}
	return messages.Decode(messages.Kind(rk), rb, resp)
}

// goCall is the asynchronous call: done runs once, on a transport goroutine
// (or the caller's, for a local call); it must not block.
func (n *Node) goCall(id uint64, kind messages.Kind, req any, timeout time.Duration, newResp func() any, done func(resp any, err error)) {
	finish := func(rk uint8, rb []byte, err error) {
		if err != nil {
			done(nil, wrapTransportErr(err))
			return
		}
		resp := newResp()
		if err := messages.Decode(messages.Kind(rk), rb, resp); err != nil {
			done(nil, err)
			return
		}
		done(resp, nil)
	}
	if id != n.cfg.NodeID {
		c, err := n.peers.get(id)
		if err != nil {
			done(nil, err)
			return
		}
		if app, ok := messages.Appender(req); ok {
			// encoded straight into the connection's send buffer
			c.GoAppend(uint8(kind), app, n.now().Add(timeout), finish)
			return
		}
		body, err := messages.Encode(req)
		if err != nil {
			done(nil, err)
			return
		}
		c.Go(uint8(kind), body, n.now().Add(timeout), finish)
		return
	}
	body, err := messages.Encode(req)
	if err != nil {
		done(nil, err)
		return
	}
	go func() {
		ctx, cancel := context.WithTimeout(n.ctx, timeout)
		defer cancel()
		finish(rpcHandler{n}.Handle(ctx, uint8(kind), body))
	}()
}

func wrapTransportErr(err error) error {
	var me *messages.Err
	if errors.As(err, &me) {
		return err
	}
	if errors.Is(err, transport.ErrNotSent) {
		return &messages.Err{Code: messages.CodeNotSent, Msg: err.Error()}
	}
	if errors.Is(err, transport.ErrPeerUnavailable) || errors.Is(err, transport.ErrClosed) {
		return &messages.Err{Code: messages.CodeUnavailable, Msg: err.Error()}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return &messages.Err{Code: messages.CodeTimeout, Msg: err.Error()}
	}
	var re *transport.RemoteError
	if errors.As(err, &re) {
		return &messages.Err{Code: messages.CodeInternal, Msg: re.Error()}
	}
	return &messages.Err{Code: messages.CodeUnavailable, Msg: err.Error()}
}

func isCode(err error, c messages.Code) bool {
	var me *messages.Err
	return errors.As(err, &me) && me.Code == c
}

// notServingYet: the leader of an active segment answered a read with "not
// the leader" (it has not taken up the leadership, or is about to be
// fenced) or "unavailable" (it has not applied the metadata that made it
// the leader: a segment that opened a moment ago). Both pass; readers wait
// for the segment, bounded by their deadline, rather than fail at once.
func notServingYet(err error) bool {
	return isCode(err, messages.CodeNotLeader) || isCode(err, messages.CodeUnavailable)
}

// errToWire turns any error into the wire error a peer can act on.
func errToWire(err error) messages.Err {
	var me *messages.Err
	switch {
	case err == nil:
		return messages.Err{}
	case errors.As(err, &me):
		return *me
	case errors.Is(err, ErrNoLeader):
		return messages.Err{Code: messages.CodeUnavailable, Msg: err.Error()}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, ErrProposalTimeout):
		return messages.Err{Code: messages.CodeTimeout, Msg: err.Error()}
	case errors.Is(err, wal.ErrDiskFull):
		return messages.Err{Code: messages.CodeDiskFull, Msg: err.Error()}
	case errors.Is(err, raftfsm.ErrUnknownTopic):
		return messages.Err{Code: messages.CodeUnknownTopic, Msg: err.Error()}
	}
	return messages.Err{Code: messages.CodeInternal, Msg: err.Error()}
}
