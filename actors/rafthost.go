package actors

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"

	"github.com/walrus-go/walrus/messages"
	"github.com/walrus-go/walrus/raftfsm"
)

// Errors a proposal can end with, besides the FSM's own (raftfsm.Err*).
var (
	// ErrNoLeader means no raft leader is known right now (an election is
	// running, or this node cannot reach a quorum).
	ErrNoLeader = errors.New("no raft leader")
	// ErrProposalTimeout means the proposal did not commit in time; it may
	// still commit later.
	ErrProposalTimeout = errors.New("proposal timed out")
	// ErrShutdown means the node is stopping.
	ErrShutdown = errors.New("node shutting down")
)

// fsmAdapter is the raft.FSM over raftfsm.FSM. raft calls Apply, Snapshot
// and Restore from its single FSM goroutine, so the inner FSM needs no lock;
// readers on other goroutines use state, an atomic pointer to the immutable
// snapshot the FSM publishes after every change.
type fsmAdapter struct {
	f        *raftfsm.FSM
	state    atomic.Pointer[raftfsm.State]
	onChange func(*raftfsm.State)
}

func (a *fsmAdapter) Apply(l *raft.Log) interface{} {
	if l.Type != raft.LogCommand {
		return nil
	}
	res := a.f.Apply(l.Index, l.Data)
	st := a.f.State()
	a.state.Store(st)
	a.onChange(st)
	return res
}

func (a *fsmAdapter) Snapshot() (raft.FSMSnapshot, error) {
	b, err := a.f.Snapshot()
	if err != nil {
		return nil, err
	}
	return fsmSnapshot(b), nil
}

func (a *fsmAdapter) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return err
	}
	if err := a.f.Restore(b); err != nil {
		return err
	}
	st := a.f.State()
	a.state.Store(st)
	a.onChange(st)
	return nil
}

type fsmSnapshot []byte

func (s fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		_ = sink.Cancel()
		return err
	}
	return sink.Close()
}
func (s fsmSnapshot) Release() {}

// advertisedLayer reports the address other nodes reach us at (raft
// hands its transport's address to followers as the leader's address).
type advertisedLayer struct {
	raft.StreamLayer
	addr net.Addr
}

func (l advertisedLayer) Addr() net.Addr { return l.addr }

type advertised string

func (a advertised) Network() string { return "tcp" }
func (a advertised) String() string  { return string(a) }

// raftHost owns hashicorp/raft for the node: stores, transport, the FSM
// adapter, bootstrap and join, proposals (forwarded to the leader when this
// node follows) and the METRICS view.
type raftHost struct {
	n         *Node
	r         *raft.Raft
	fsm       *fsmAdapter
	store     *raftboltdb.BoltStore
	transport *raft.NetworkTransport
	// hadState is false when this node started without raft state: a new
	// node, or one whose data directory was lost.
	hadState bool

	applied signal // notified after every applied entry

	mu sync.Mutex // guards reported
	// reported is each node's last log index as its pings said (METRICS
	// "replication" on the leader).
	reported map[uint64]uint64
}

func serverID(id uint64) raft.ServerID { return raft.ServerID(strconv.FormatUint(id, 10)) }

func parseServerID(s raft.ServerID) uint64 {
	v, _ := strconv.ParseUint(string(s), 10, 64)
	return v
}

// newRaftHost starts raft. onChange runs on raft's FSM goroutine after
// every applied entry (possibly before newRaftHost returns: raft restores
// its snapshot and may replay entries while starting).
func newRaftHost(n *Node, onChange func(*raftfsm.State)) (*raftHost, error) {
	dir := filepath.Join(n.cfg.NodeDir(), "raft")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	store, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
	if err != nil {
		return nil, fmt.Errorf("open raft store: %w", err)
	}
	logger := NewRaftLogger(n.log, n.cfg.LibLogLevel, n.stopping.Load, n.now)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, logger)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("open raft snapshots: %w", err)
	}
	h := &raftHost{n: n, store: store, reported: map[uint64]uint64{}}
	h.fsm = &fsmAdapter{f: raftfsm.New(), onChange: func(st *raftfsm.State) {
		h.applied.notify()
		onChange(st)
	}}
	h.fsm.state.Store(h.fsm.f.State())

	h.transport = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  advertisedLayer{n.mux.RaftStreamLayer(n.cfg.Network.Dial), advertised(n.cfg.AdvertiseRaftAddr)},
		MaxPool: 3,
		// 1 disables raft's pipelined replication: with the default 2, a
		// follower answering Success=false can deadlock the pipeline (the
		// follower silently stops getting log entries and Shutdown hangs;
		// our testkit hit it, and grafana/pyroscope#5518 describes the
		// mechanism). Metadata traffic is small: no throughput is lost.
		MaxRPCsInFlight: 1,
		Timeout:         10 * time.Second,
		Logger:          logger,
	})

	rc := raft.DefaultConfig()
	rc.LocalID = serverID(n.cfg.NodeID)
	rc.Logger = logger
	rc.HeartbeatTimeout = n.cfg.RaftHeartbeat
	rc.ElectionTimeout = n.cfg.RaftHeartbeat
	rc.LeaderLeaseTimeout = n.cfg.RaftHeartbeat / 2
	rc.CommitTimeout = 5 * time.Millisecond
	rc.SnapshotThreshold = 8192
	rc.SnapshotInterval = 30 * time.Second
	rc.TrailingLogs = 10240

	var logs raft.LogStore = store
	var stable raft.StableStore = store
	if n.cfg.DiskWatch != nil {
		ws := watchedRaftStore{log: store, stable: store, w: n.cfg.DiskWatch}
		logs, stable = ws, ws
	}
	h.hadState, err = raft.HasExistingState(logs, stable, snaps)
	if err != nil {
		store.Close()
		return nil, err
	}
	r, err := raft.NewRaft(rc, h.fsm, logs, stable, snaps, h.transport)
	if err != nil {
		store.Close()
		h.transport.Close()
		return nil, fmt.Errorf("start raft: %w", err)
	}
	h.r = r
	if !h.hadState && len(n.cfg.Join) == 0 {
		servers := []raft.Server{{ID: rc.LocalID, Address: raft.ServerAddress(n.cfg.AdvertiseRaftAddr), Suffrage: raft.Voter}}
		for _, p := range n.cfg.InitialPeers {
			id, addr, err := ParsePeer(p)
			if err != nil {
				return nil, err
			}
			if id == n.cfg.NodeID {
				continue
			}
			servers = append(servers, raft.Server{ID: serverID(id), Address: raft.ServerAddress(addr), Suffrage: raft.Voter})
		}
		if err := r.BootstrapCluster(raft.Configuration{Servers: servers}).Error(); err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
			return nil, fmt.Errorf("bootstrap: %w", err)
		}
	}
	return h, nil
}

// State is the latest applied metadata (immutable: never modify it).
func (h *raftHost) State() *raftfsm.State { return h.fsm.state.Load() }

// IsLeader reports whether this node is the raft leader now.
func (h *raftHost) IsLeader() bool { return h.r.State() == raft.Leader }

// Leader returns the current raft leader's id and address (0, "" if none).
func (h *raftHost) Leader() (uint64, string) {
	addr, id := h.r.LeaderWithID()
	return parseServerID(id), string(addr)
}

// Propose commits cmd through raft, forwarding to the leader when this node
// follows, and returns the FSM's result error (nil, or a raftfsm sentinel).
func (h *raftHost) Propose(ctx context.Context, cmd raftfsm.Command) error {
	data, err := raftfsm.Encode(cmd)
	if err != nil {
		return err
	}
	return h.proposeBytes(ctx, data)
}

// proposeBytes proposes until a leader takes it, then waits until this
// node's own metadata has applied it: a client that registers a topic
// through a follower can use it there at once (read your writes).
func (h *raftHost) proposeBytes(ctx context.Context, data []byte) error {
	for {
		idx, err := h.proposeOnce(ctx, data)
		if !errors.Is(err, ErrNoLeader) && !errors.Is(err, errNotLeaderRetry) {
			if idx > 0 {
				if werr := h.waitApplied(ctx, idx); werr != nil && err == nil {
					return werr
				}
			}
			return err
		}
		// an election is under way: wait a little and try again until the
		// caller's deadline
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %v", ErrNoLeader, ctx.Err())
		case <-h.n.after(50 * time.Millisecond):
		}
	}
}

var errNotLeaderRetry = errors.New("leader moved")

// proposeOnce makes one attempt; it returns the entry's raft index when it
// committed (whatever the FSM's verdict).
func (h *raftHost) proposeOnce(ctx context.Context, data []byte) (uint64, error) {
	if h.IsLeader() {
		timeout := 5 * time.Second
		if dl, ok := ctx.Deadline(); ok {
			timeout = time.Until(dl)
			if timeout <= 0 {
				return 0, ErrProposalTimeout
			}
		}
		f := h.r.Apply(data, timeout)
		if err := f.Error(); err != nil {
			switch {
			case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost), errors.Is(err, raft.ErrLeadershipTransferInProgress):
				return 0, errNotLeaderRetry
			case errors.Is(err, raft.ErrEnqueueTimeout):
				return 0, ErrProposalTimeout
			case errors.Is(err, raft.ErrRaftShutdown):
				return 0, ErrShutdown
			}
			return 0, err
		}
		if res, ok := f.Response().(raftfsm.Result); ok && res.Err != nil {
			return f.Index(), res.Err
		}
		return f.Index(), nil
	}
	leader, _ := h.Leader()
	if leader == 0 {
		return 0, ErrNoLeader
	}
	var resp messages.ProposeResp
	if err := h.n.call(ctx, leader, messages.KindPropose, &messages.ProposeReq{Cmd: data}, &resp); err != nil {
		// the leader we knew is gone or moved: ask again once raft names
		// another (commands are guarded, so a repeat is harmless)
		if isCode(err, messages.CodeNotLeader) || isCode(err, messages.CodeUnavailable) || isCode(err, messages.CodeNotSent) {
			return 0, errNotLeaderRetry
		}
		return 0, err
	}
	return resp.Index, fsmErrFromWire(resp.Err)
}

// waitApplied blocks until this node's metadata has applied index.
func (h *raftHost) waitApplied(ctx context.Context, index uint64) error {
	for {
		ch := h.applied.wait()
		if h.State().LastApplied >= index {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("waiting for metadata index %d: %w", index, ctx.Err())
		}
	}
}

// syncMeta waits until this node has applied everything the raft leader had
// committed when asked (a read barrier before answering "unknown topic").
func (h *raftHost) syncMeta(ctx context.Context) error {
	for {
		err := h.syncMetaOnce(ctx)
		if !errors.Is(err, ErrNoLeader) && !isCode(err, messages.CodeNotLeader) && !isCode(err, messages.CodeUnavailable) &&
			!isCode(err, messages.CodeNotSent) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-h.n.after(50 * time.Millisecond):
		}
	}
}

func (h *raftHost) syncMetaOnce(ctx context.Context) error {
	if h.IsLeader() {
		// Barrier returns once the FSM applied everything before it
		if err := h.r.Barrier(time.Second).Error(); err != nil {
			return ErrNoLeader
		}
		return nil
	}
	leader, _ := h.Leader()
	if leader == 0 {
		return ErrNoLeader
	}
	var resp messages.PingResp
	req := &messages.PingReq{From: h.n.cfg.NodeID, Applied: h.appliedIndex(), LastLogIndex: h.r.LastIndex()}
	if err := h.n.call(ctx, leader, messages.KindPing, req, &resp); err != nil {
		return err
	}
	if err := resp.Err.AsError(); err != nil {
		return err
	}
	return h.waitApplied(ctx, resp.LeaderApplied)
}

// signal is a broadcast: wait returns a channel closed at the next notify.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ch == nil {
		s.ch = make(chan struct{})
	}
	return s.ch
}

func (s *signal) notify() {
	s.mu.Lock()
	if s.ch != nil {
		close(s.ch)
		s.ch = nil
	}
	s.mu.Unlock()
}

// fsmErrs are the FSM results that cross the wire by name, so a forwarded
// proposal returns the same sentinel as a local one.
var fsmErrs = []error{raftfsm.ErrStale, raftfsm.ErrUnknownTopic, raftfsm.ErrInvalid, raftfsm.ErrNoNodes, raftfsm.ErrUnknownNode}

func fsmErrToWire(err error) messages.Err {
	if err == nil {
		return messages.Err{}
	}
	return messages.Err{Code: messages.CodeInternal, Msg: err.Error()}
}

func fsmErrFromWire(e messages.Err) error {
	if e.Code == messages.CodeOK {
		return nil
	}
	for _, s := range fsmErrs {
		if e.Msg == s.Error() {
			return s
		}
		if len(e.Msg) > len(s.Error()) && e.Msg[:len(s.Error())+2] == s.Error()+": " {
			return fmt.Errorf("%w%s", s, e.Msg[len(s.Error()):])
		}
	}
	if e.Code == messages.CodeNotLeader {
		return errNotLeaderRetry
	}
	return &e
}

// handlePropose runs on the leader for a follower's forwarded proposal.
func (h *raftHost) handlePropose(ctx context.Context, req *messages.ProposeReq) messages.ProposeResp {
	if !h.IsLeader() {
		l, _ := h.Leader()
		return messages.ProposeResp{Err: messages.Err{Code: messages.CodeNotLeader, Msg: "not the raft leader", Leader: l}}
	}
	idx, err := h.proposeOnce(ctx, req.Cmd)
	if errors.Is(err, errNotLeaderRetry) {
		return messages.ProposeResp{Err: messages.Err{Code: messages.CodeNotLeader, Msg: "not the raft leader"}}
	}
	return messages.ProposeResp{Err: fsmErrToWire(err), Index: idx}
}

// handleJoin adds a node as a non-voter (the controller promotes it once it
// has caught up) and records its addresses. Forwarded to the leader.
func (h *raftHost) handleJoin(ctx context.Context, req *messages.JoinReq) messages.JoinResp {
	if !h.IsLeader() {
		leader, _ := h.Leader()
		if leader == 0 {
			return messages.JoinResp{Err: messages.Err{Code: messages.CodeUnavailable, Msg: "no raft leader yet"}}
		}
		var resp messages.JoinResp
		if err := h.n.call(ctx, leader, messages.KindJoin, req, &resp); err != nil {
			return messages.JoinResp{Err: errToWire(err)}
		}
		return resp
	}
	node := req.Node
	if node.ID == 0 || node.RaftAddr == "" {
		return messages.JoinResp{Err: messages.Err{Code: messages.CodeInvalid, Msg: "join needs a node id and raft address"}}
	}
	cf := h.r.GetConfiguration()
	if err := cf.Error(); err != nil {
		return messages.JoinResp{Err: errToWire(err)}
	}
	known := false
	for _, s := range cf.Configuration().Servers {
		if s.ID == serverID(node.ID) {
			if s.Address != raft.ServerAddress(node.RaftAddr) {
				return messages.JoinResp{Err: messages.Err{Code: messages.CodeInvalid,
					Msg: fmt.Sprintf("node %d is already a member at %s", node.ID, s.Address)}}
			}
			known = true
		}
	}
	if !known {
		if err := h.r.AddNonvoter(serverID(node.ID), raft.ServerAddress(node.RaftAddr), 0, 10*time.Second).Error(); err != nil {
			return messages.JoinResp{Err: errToWire(err)}
		}
	}
	err := h.Propose(ctx, &raftfsm.UpsertNode{Node: raftfsm.NodeInfo{ID: raftfsm.NodeID(node.ID), RaftAddr: node.RaftAddr,
		ClientAddr: node.ClientAddr, HTTPAddr: node.HTTPAddr, Live: true}})
	return messages.JoinResp{Err: fsmErrToWire(err), Rejoined: known}
}

// RemoveNode takes a node out of the raft configuration and the metadata
// for good (walrus-cli remove-node). Its segments are re-replicated. It
// waits out an election in progress until ctx ends.
func (h *raftHost) RemoveNode(ctx context.Context, id uint64) error {
	for {
		err := h.removeNodeOnce(ctx, id)
		if err == nil {
			// the operator's record: the removed node itself, cut off
			// from raft, may never learn it (it logs raft's "not part of
			// a stable configuration" and should be stopped)
			h.n.log.Info("node removed from the cluster; its segments are re-replicated", "removed", id)
			return nil
		}
		if !errors.Is(err, ErrNoLeader) && !errors.Is(err, errNotLeaderRetry) &&
			!isCode(err, messages.CodeNotSent) && !isCode(err, messages.CodeNotLeader) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-h.n.after(100 * time.Millisecond):
		}
	}
}

func (h *raftHost) removeNodeOnce(ctx context.Context, id uint64) error {
	if id == h.n.cfg.NodeID && h.IsLeader() {
		// hand leadership over first so the cluster keeps a leader
		if err := h.r.LeadershipTransfer().Error(); err != nil {
			return fmt.Errorf("transfer leadership before removing self: %w", err)
		}
	}
	if !h.IsLeader() {
		leader, _ := h.Leader()
		if leader == 0 {
			return ErrNoLeader
		}
		var resp messages.ProposeResp
		if err := h.n.call(ctx, leader, messages.KindRemove, &messages.RemoveReq{ID: id}, &resp); err != nil {
			return err
		}
		return fsmErrFromWire(resp.Err)
	}
	if err := h.r.RemoveServer(serverID(id), 0, 10*time.Second).Error(); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) {
			return errNotLeaderRetry
		}
		return err
	}
	return h.Propose(ctx, &raftfsm.RemoveNode{ID: raftfsm.NodeID(id)})
}

// join asks the members in cfg.Join to add this node, until one says yes.
func (h *raftHost) join(ctx context.Context) {
	req := &messages.JoinReq{Node: h.n.selfAddrs()}
	for attempt := 0; ; attempt++ {
		for _, addr := range h.n.cfg.Join {
			var resp messages.JoinResp
			err := h.n.callAddr(ctx, addr, messages.KindJoin, req, &resp)
			if err == nil {
				err = resp.Err.AsError()
			}
			if err == nil {
				h.n.rejoined.Store(resp.Rejoined)
				h.n.joining.Store(false)
				h.n.log.Info("joined the cluster", "via", addr, "rejoined", resp.Rejoined)
				return
			}
			if attempt%20 == 0 {
				h.n.log.Warn("join attempt failed, retrying", "via", addr, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-h.n.after(250 * time.Millisecond):
		}
	}
}

func (h *raftHost) recordReported(id, lastIndex uint64) {
	h.mu.Lock()
	h.reported[id] = lastIndex
	h.mu.Unlock()
}

// Metrics builds the METRICS JSON object (COMPAT.md: the keys the
// reference's raft library exposes, with the same shapes).
func (h *raftHost) Metrics() map[string]any {
	var leader any
	if id, _ := h.Leader(); id != 0 {
		leader = id
	}
	stats := h.r.Stats()
	lastLog, _ := strconv.ParseUint(stats["last_log_index"], 10, 64)
	m := map[string]any{
		"id":             h.n.cfg.NodeID,
		"state":          h.stateName(),
		"current_term":   h.r.CurrentTerm(),
		"current_leader": leader,
		"last_log_index": lastLog,
		"last_applied":   h.r.AppliedIndex(),
		"commit_index":   h.r.CommitIndex(),
	}
	voters := []uint64{}
	nodes := map[string]string{}
	learners := []uint64{}
	if cf := h.r.GetConfiguration(); cf.Error() == nil {
		for _, s := range cf.Configuration().Servers {
			id := parseServerID(s.ID)
			nodes[strconv.FormatUint(id, 10)] = string(s.Address)
			if s.Suffrage == raft.Voter {
				voters = append(voters, id)
			} else {
				learners = append(learners, id)
			}
		}
	}
	m["under_replicated_segments"] = len(h.State().UnderReplicated())
	m["membership_config"] = map[string]any{
		"log_id":     nil,
		"membership": map[string]any{"configs": [][]uint64{voters}, "nodes": nodes, "learners": learners},
	}
	if h.IsLeader() {
		rep := map[string]any{}
		h.mu.Lock()
		for id, idx := range h.reported {
			rep[strconv.FormatUint(id, 10)] = map[string]uint64{"index": idx}
		}
		h.mu.Unlock()
		rep[strconv.FormatUint(h.n.cfg.NodeID, 10)] = map[string]uint64{"index": lastLog}
		m["replication"] = rep
	} else {
		m["replication"] = nil
	}
	return m
}

// suffrages maps each member of raft's configuration to "voter" or
// "nonvoter".
func (h *raftHost) suffrages() map[uint64]string {
	out := map[uint64]string{}
	if cf := h.r.GetConfiguration(); cf.Error() == nil {
		for _, s := range cf.Configuration().Servers {
			v := "nonvoter"
			if s.Suffrage == raft.Voter {
				v = "voter"
			}
			out[parseServerID(s.ID)] = v
		}
	}
	return out
}

// hasOtherVoter reports whether raft's configuration has a voter besides
// this node.
func (h *raftHost) hasOtherVoter() bool {
	for id, v := range h.suffrages() {
		if id != h.n.cfg.NodeID && v == "voter" {
			return true
		}
	}
	return false
}

// stateName is raft's state as the reference names it; a follower that is
// not a voter is a "Learner".
func (h *raftHost) stateName() string {
	st := raftStateName(h.r.State())
	if st == "Follower" && h.suffrages()[h.n.cfg.NodeID] == "nonvoter" {
		return "Learner"
	}
	return st
}

func raftStateName(s raft.RaftState) string {
	switch s {
	case raft.Leader:
		return "Leader"
	case raft.Follower:
		return "Follower"
	case raft.Candidate:
		return "Candidate"
	default:
		return "Shutdown"
	}
}

// transferLeadership hands raft leadership to the most up-to-date
// follower and waits, at most max (raft gives up after an election
// timeout), until another node leads. It watches the leadership rather
// than raft's future: a future raft never got to before it shut down is
// never answered, and a goroutine waiting on it would never end. A leader
// whose peers are stopping too steps down for want of a quorum and sees no
// successor; it says so instead of naming one.
func (h *raftHost) transferLeadership(max time.Duration) {
	if !h.hasOtherVoter() {
		return // a cluster of one: there is no one to hand over to
	}
	_ = h.r.LeadershipTransfer()
	deadline := h.n.now().Add(max)
	for {
		leader, _ := h.Leader()
		switch {
		case !h.IsLeader() && leader != 0 && leader != h.n.cfg.NodeID:
			h.n.log.Info("graceful stop: raft leadership handed over", "to", leader)
			return
		case !h.n.now().Before(deadline) && h.IsLeader():
			h.n.log.Warn("graceful stop: raft leadership not handed over (no follower took it in time)", "waited", max)
			return
		case !h.n.now().Before(deadline):
			h.n.log.Info("graceful stop: stepped down as raft leader; no other node leads yet (are the others stopping too?)", "waited", max)
			return
		}
		<-h.n.after(5 * time.Millisecond)
	}
}

func (h *raftHost) shutdown() {
	if err := h.r.Shutdown().Error(); err != nil {
		h.n.log.Warn("raft shutdown", "err", err)
	}
	h.transport.Close()
	h.store.Close()
}
