package testkit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing/synctest"
	"time"

	"github.com/walrus-go/walrus/actors"
	"github.com/walrus-go/walrus/internal/poll"
	"github.com/walrus-go/walrus/messages"
	"github.com/walrus-go/walrus/seam"
	"github.com/walrus-go/walrus/testkit/simfs"
	"github.com/walrus-go/walrus/testkit/simnet"
	"github.com/walrus-go/walrus/transport"
	"github.com/walrus-go/walrus/wal"
)

// Ports every simulated node uses on its own host ("n<id>").
const (
	raftPort   = 7000
	clientPort = 9000
)

// ClusterConfig describes a simulated cluster.
type ClusterConfig struct {
	Nodes   int
	Seed    int64
	DataDir string // real directory for raft's bolt stores and snapshots
	Net     simnet.Config
	Logger  *slog.Logger // nil: discard
	// Tweak adjusts each node's configuration after the defaults.
	Tweak func(*actors.Config)
	// AckBeforeQuorum plants the known bug (see actors.Config).
	AckBeforeQuorum bool
	// Joined makes node 1 bootstrap a cluster of itself and the others join
	// it (so node 1 leads raft at first); by default all bootstrap together.
	Joined bool
	// RawCrash makes Crash call actors.Node.Crash alone, leaving the dead
	// node's actors running (see Node.HaltActors): it reproduces the
	// cursor-commit busy loop.
	RawCrash bool
}

// ErrHung marks a node process whose teardown never finished.
var ErrHung = errors.New("hung")

// Node is one simulated machine: its disk outlives its process.
type Node struct {
	ID   uint64
	Host string
	FS   *simfs.FS
	Cfg  actors.Config
	N    *actors.Node // nil while down
	// dying is closed once the last process's teardown finished; until
	// then stopping is that process (a graceful stop can take a while, and
	// meanwhile it may lead raft and serve the cursors)
	dying    chan struct{}
	stopping *actors.Node
	// Refused holds the last start error (a corrupt WAL, say).
	Refused error
	Removed bool
}

// Cluster is a set of real nodes on a simulated network and disks. Use it
// inside a testing/synctest bubble; every method runs on the caller's
// goroutine unless it says otherwise.
type Cluster struct {
	mu    sync.Mutex // guards Node.N and Node.stopping of every node
	cfg   ClusterConfig
	Net   *simnet.Network
	Nodes map[uint64]*Node
	log   *slog.Logger
	rng   *rand.Rand // for torn writes at power cuts
	hosts []string
}

// NodeHost is the host name of node id.
func NodeHost(id uint64) string { return "n" + strconv.FormatUint(id, 10) }

// NewCluster creates (does not start) the nodes.
func NewCluster(cfg ClusterConfig) *Cluster {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := &Cluster{cfg: cfg, Net: simnet.New(cfg.Net), Nodes: map[uint64]*Node{}, log: cfg.Logger,
		rng: rand.New(rand.NewSource(cfg.Seed ^ 0x5eed))}
	var peers []string
	for id := uint64(1); id <= uint64(cfg.Nodes); id++ {
		peers = append(peers, fmt.Sprintf("%d@%s:%d", id, NodeHost(id), raftPort))
	}
	for id := uint64(1); id <= uint64(cfg.Nodes); id++ {
		switch {
		case !cfg.Joined:
			c.Nodes[id] = c.newNode(id, peers, nil)
		case id == 1:
			c.Nodes[id] = c.newNode(id, nil, nil)
		default:
			c.Nodes[id] = c.newNode(id, nil, []string{fmt.Sprintf("%s:%d", NodeHost(1), raftPort)})
		}
	}
	return c
}

func (c *Cluster) newNode(id uint64, peers, join []string) *Node {
	h := NodeHost(id)
	c.hosts = append(c.hosts, h)
	fs := simfs.New()
	cfg := actors.Config{
		NodeID:            id,
		DataDir:           c.cfg.DataDir,
		ClientAddr:        fmt.Sprintf("%s:%d", h, clientPort),
		RaftAddr:          fmt.Sprintf("%s:%d", h, raftPort),
		InitialPeers:      peers,
		Join:              join,
		MaxSegmentEntries: 8,
		// a smaller step than a node's 64 KiB keeps the simulated disks
		// small while most writes still land in space written ahead,
		// where a power cut tears sector by sector (simfs)
		WALPrealloc:       4096,
		MonitorInterval:   50 * time.Millisecond,
		ReplicationFactor: 3,
		PingInterval:      50 * time.Millisecond,
		LeaseWindow:       400 * time.Millisecond,
		FailureTimeout:    time.Second,
		RaftHeartbeat:     200 * time.Millisecond,
		RequestTimeout:    3 * time.Second,
		Clock:             seam.RealClock{}, // virtual inside the bubble
		Network:           c.Net.Host(h),
		FS:                walFS{fs},
		Rand:              rand.New(rand.NewSource(c.cfg.Seed*31 + int64(id))),
		Logger:            c.log,
		LibLogLevel:       slog.LevelWarn,
		AckBeforeQuorum:   c.cfg.AckBeforeQuorum,
	}
	if c.cfg.Tweak != nil {
		c.cfg.Tweak(&cfg)
	}
	return &Node{ID: id, Host: h, FS: fs, Cfg: cfg}
}

// Members lists the ids of nodes not removed from the cluster.
func (c *Cluster) Members() []uint64 {
	var out []uint64
	for _, id := range c.IDs() {
		if !c.Nodes[id].Removed {
			out = append(out, id)
		}
	}
	return out
}

// AddNode creates a node with a fresh id that joins the running cluster
// (it is not started: call Start).
func (c *Cluster) AddNode() uint64 {
	var join []string
	var max uint64
	for _, id := range c.IDs() {
		max = id
		if !c.Nodes[id].Removed {
			join = append(join, c.Nodes[id].Cfg.RaftAddr)
		}
	}
	id := max + 1
	nd := c.newNode(id, nil, join)
	c.mu.Lock()
	c.Nodes[id] = nd
	c.mu.Unlock()
	return id
}

// Remove asks the cluster (through any running member) to take node id out
// of raft and the metadata for good (walrus-cli remove-node).
func (c *Cluster) Remove(id uint64) error {
	body, err := messages.Encode(&messages.RemoveReq{ID: id})
	if err != nil {
		return err
	}
	var last error = errors.New("no member is running")
	for _, via := range c.Up() {
		if via == id {
			continue
		}
		cl := transport.NewClient(c.Nodes[via].Cfg.RaftAddr, c.Net.Host("c0").Dial, nil)
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		kind, rb, err := cl.Call(ctx, uint8(messages.KindRemove), body)
		cancel()
		cl.Close()
		if err != nil {
			last = err
			continue
		}
		var resp messages.ProposeResp
		if err := messages.Decode(messages.Kind(kind), rb, &resp); err != nil {
			last = err
			continue
		}
		if err := resp.Err.AsError(); err != nil {
			last = err
			continue
		}
		c.Nodes[id].Removed = true
		return nil
	}
	return last
}

// Hosts lists every node host.
func (c *Cluster) Hosts() []string { return append([]string(nil), c.hosts...) }

// IDs lists node ids in order.
func (c *Cluster) IDs() []uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := make([]uint64, 0, len(c.Nodes))
	for id := range c.Nodes {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}

// Start starts node id's process (again). It waits for the previous
// process's teardown first.
func (c *Cluster) Start(id uint64) error {
	nd := c.Nodes[id]
	if nd.N != nil {
		return nil
	}
	if !c.WaitTimeout(id, time.Minute) {
		return fmt.Errorf("%w: the previous process of n%d did not finish stopping within a minute", ErrHung, id)
	}
	c.Net.Revive(nd.Host)
	n, err := startNode(nd.Cfg)
	if err != nil {
		if errors.Is(err, ErrStartPanicked) {
			// the panic hides the cause (KB7); the usual one is the WAL
			if w, werr := wal.Open(filepath.Join(nd.Cfg.NodeDir(), "wal"), wal.Options{FS: walFS{nd.FS}}); werr != nil {
				err = fmt.Errorf("%w; the WAL says: %w", err, werr)
			} else {
				_ = w.Close()
			}
		}
		nd.Refused = err
		return err
	}
	nd.Refused = nil
	c.mu.Lock()
	nd.N = n
	c.mu.Unlock()
	return nil
}

// ErrStartPanicked marks an actors.Start that panicked instead of
// returning its error.
var ErrStartPanicked = errors.New("actors.Start panicked")

// startNode is actors.Start, turning a panic into an error. (actors.Start
// has a named result n that a failing "return nil, err" sets to nil before
// its deferred cleanup calls n.Stop(): every start error panics.)
func startNode(cfg actors.Config) (n *actors.Node, err error) {
	defer func() {
		if p := recover(); p != nil {
			n, err = nil, fmt.Errorf("%w: %v", ErrStartPanicked, p)
		}
	}()
	return actors.Start(cfg)
}

// StartAll starts every node that is down.
func (c *Cluster) StartAll() error {
	for _, id := range c.IDs() {
		if c.Nodes[id].Removed {
			continue
		}
		if err := c.Start(id); err != nil {
			return fmt.Errorf("start node %d: %w", id, err)
		}
	}
	return nil
}

// CrashKeeping is Crash where keep(n) says how many of each file's n
// unsynced bytes reach the disk.
func (c *Cluster) CrashKeeping(id uint64, keep func(int) int) {
	nd := c.Nodes[id]
	if nd.N == nil {
		return
	}
	c.Net.Kill(nd.Host)
	c.Net.Resume(nd.Host)
	nd.FS.Unstall()
	nd.FS.PowerCutKeeping(keep)
	c.teardown(id, false)
}

// Crash cuts node id's power: it leaves the network at once, its disk keeps
// only what was synced (plus, with torn, a random part of the unsynced
// tail), and its process is torn down in the background without flushing.
func (c *Cluster) Crash(id uint64, torn bool) {
	nd := c.Nodes[id]
	if nd.N == nil {
		return
	}
	c.Net.Kill(nd.Host)
	c.Net.Resume(nd.Host) // a paused process that dies is not paused any more
	nd.FS.Unstall()
	var rng *rand.Rand
	if torn {
		rng = c.rng
	}
	nd.FS.PowerCut(rng)
	c.teardown(id, false)
}

// teardown ends node id's process in the background (gracefully or not).
func (c *Cluster) teardown(id uint64, graceful bool) {
	nd := c.Nodes[id]
	c.mu.Lock()
	n := nd.N
	nd.N = nil
	nd.stopping = n
	c.mu.Unlock()
	done := make(chan struct{})
	nd.dying = done
	raw := c.cfg.RawCrash
	go func() {
		defer close(done)
		defer func() {
			c.mu.Lock()
			if nd.stopping == n {
				nd.stopping = nil
			}
			c.mu.Unlock()
		}()
		if graceful {
			n.Stop()
			return
		}
		if !raw {
			n.HaltActors()
		}
		n.Crash()
	}()
}

// Stop stops node id gracefully (cursor positions are flushed) in the
// background; Start waits for it.
func (c *Cluster) Stop(id uint64) {
	nd := c.Nodes[id]
	if nd.N == nil {
		return
	}
	c.Net.Resume(nd.Host)
	nd.FS.Unstall()
	c.teardown(id, true)
}

// Wait waits until node id's last process has finished its teardown.
func (c *Cluster) Wait(id uint64) {
	if d := c.Nodes[id].dying; d != nil {
		<-d
		c.Nodes[id].dying = nil
	}
}

// WaitTimeout is Wait bounded by d of virtual time; it reports whether
// the teardown finished.
func (c *Cluster) WaitTimeout(id uint64, d time.Duration) bool {
	ch := c.Nodes[id].dying
	if ch == nil {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ch:
		c.Nodes[id].dying = nil
		return true
	case <-t.C:
		return false
	}
}

// Shutdown stops every node (gracefully when graceful), closes the
// network and waits out the libraries' timers (protoactor's dead-letter
// throttle, idle mailbox workers: 5 s of virtual time), so that no
// goroutine of the cluster is left in the bubble and synctest.Test can
// return. It returns the ids of nodes whose teardown did not finish within
// a minute of virtual time (their goroutines are stuck, and stay).
func (c *Cluster) Shutdown(graceful bool) (hung []uint64) {
	for _, id := range c.IDs() {
		if graceful {
			c.Stop(id)
		} else {
			c.Crash(id, false)
		}
	}
	for _, id := range c.IDs() {
		if !c.WaitTimeout(id, time.Minute) {
			hung = append(hung, id)
		}
	}
	c.Net.Close()
	if len(hung) == 0 {
		time.Sleep(shutdownLinger)
		synctest.Wait()
	}
	return hung
}

// shutdownLinger outlasts the timers the node's libraries leave running
// after a stop: protoactor's dead-letter throttle and the idle mailbox
// workers of actors' dispatcher (they exit after 1 s).
const shutdownLinger = 5 * time.Second

// Leader returns the node whose running process leads raft (0 if none);
// a deposed leader may not know yet, so the highest term wins.
func (c *Cluster) Leader() uint64 {
	id, _ := c.raftLeader(false)
	return id
}

// raftLeader returns the node leading raft and its term, the highest term
// among the processes that claim to lead. withStopping counts processes
// whose teardown has begun but not ended too: a graceful stop can take a
// while, and meanwhile the process may lead raft and serve the cursors.
func (c *Cluster) raftLeader(withStopping bool) (leader, term uint64) {
	c.mu.Lock()
	var procs []*actors.Node
	var ids []uint64
	for id, nd := range c.Nodes {
		for _, n := range []*actors.Node{nd.N, nd.stopping} {
			if n != nil && (n == nd.N || withStopping) {
				procs, ids = append(procs, n), append(ids, id)
			}
		}
	}
	c.mu.Unlock()
	for i, n := range procs {
		if !n.IsRaftLeader() {
			continue
		}
		if t := n.RaftTerm(); leader == 0 || t > term || t == term && ids[i] < leader {
			leader, term = ids[i], t
		}
	}
	return leader, term
}

// Proc returns node id's running process (nil while down). Safe to call
// from any goroutine.
func (c *Cluster) Proc(id uint64) *actors.Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	if nd := c.Nodes[id]; nd != nil {
		return nd.N
	}
	return nil
}

// Up lists the ids of nodes whose process runs.
func (c *Cluster) Up() []uint64 {
	var out []uint64
	for _, id := range c.IDs() {
		if c.Proc(id) != nil {
			out = append(out, id)
		}
	}
	return out
}

// WaitFor polls cond every 10ms of virtual time until it holds or d has
// passed; it reports whether it held.
func WaitFor(d time.Duration, cond func() bool) bool {
	return poll.Until(d, 10*time.Millisecond, cond)
}

// WaitReady waits until one raft leader exists and every running node's
// metadata lists all members.
func (c *Cluster) WaitReady(d time.Duration) bool {
	return WaitFor(d, func() bool {
		l := c.Leader()
		if l == 0 {
			return false
		}
		for _, id := range c.Up() {
			n := c.Proc(id)
			if n == nil || !n.CaughtUp() || len(n.State().Nodes) < len(c.Up()) {
				return false
			}
		}
		return true
	})
}

// Describe summarises each member's view (for failure messages).
func (c *Cluster) Describe() string {
	var b strings.Builder
	for _, id := range c.Members() {
		n := c.Proc(id)
		if n == nil {
			fmt.Fprintf(&b, "n%d down; ", id)
			continue
		}
		st := n.State()
		fmt.Fprintf(&b, "n%d leader=%v term=%d caught-up=%v applied=%d nodes=%d; ", id, n.IsRaftLeader(), n.RaftTerm(),
			n.CaughtUp(), st.LastApplied, len(st.Nodes))
	}
	return b.String()
}

// TempDataDir makes a directory for raft's stores, preferring a RAM-backed
// one (bolt fsyncs every write).
func TempDataDir(pattern string) (string, error) {
	base := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	d, err := os.MkdirTemp(base, pattern)
	if err != nil {
		return "", err
	}
	return filepath.Clean(d), nil
}
