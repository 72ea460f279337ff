package actors

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/walrus-go/walrus/seam"
	"github.com/walrus-go/walrus/wal"
)

// DefaultTrailingReplicaWait is Config.TrailingReplicaWait's default.
const DefaultTrailingReplicaWait = 5 * time.Millisecond

// TrailingReplicaWaitOf turns a wait as users give it, where 0 switches
// holding off, into Config.TrailingReplicaWait, whose zero means the
// default.
func TrailingReplicaWaitOf(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}

// Config is everything a node needs. cmd/walrus fills it from flags and the
// environment; the testkit fills it with simulated seams.
type Config struct {
	NodeID  uint64
	DataDir string // node state lives under <DataDir>/node_<NodeID>/

	ClientAddr string // client protocol listen address
	RaftAddr   string // internal port: raft transport + node-to-node RPC
	// AdvertiseRaftAddr / AdvertiseClientAddr are what other nodes and
	// clients are told (default: the listen addresses).
	AdvertiseRaftAddr   string
	AdvertiseClientAddr string
	HTTPAddr            string // metrics and health; empty disables
	AdvertiseHTTPAddr   string // what NODES reports (default: HTTPAddr)

	// Join lists raft addresses of existing members; a node without raft
	// state asks them to add it. Without Join a node without state
	// bootstraps a cluster of itself plus InitialPeers ("id@raftaddr").
	Join         []string
	InitialPeers []string

	MaxSegmentEntries uint64        // rollover threshold (WALRUS_MAX_SEGMENT_ENTRIES)
	MonitorInterval   time.Duration // rollover monitor period (WALRUS_MONITOR_CHECK_MS)
	ReplicationFactor int           // default replication factor for new topics
	MaxFrame          int           // largest client request accepted

	Sync         wal.SyncMode
	SyncInterval time.Duration
	// WALPrealloc is the step in which segment files grow with zeros
	// written ahead of their records (wal.Options.Prealloc, which refuses
	// one outside 0..wal.MaxPrealloc); 0: none.
	WALPrealloc int64
	// WALDropBehind is wal.Options.DropBehind: the page cache kept behind
	// each segment's synced end; 0: all (walrus --wal-drop-behind).
	WALDropBehind int64
	// WALSetAsideCorrupt: at start, a sealed segment file that fails its
	// checks is renamed aside and its entries copied back from the other
	// replicas (wal.Options.SetAsideCorrupt), instead of the node refusing
	// its whole disk.
	WALSetAsideCorrupt bool

	// TrailingReplicaWait: a follower outside a segment's write quorum (the
	// leader and the first Quorum-1 followers that keep up) gets writes in
	// batches at most this late, or once 256 entries wait for it, instead
	// of each small round at once; acknowledged writes are on a quorum,
	// synced, either way. 0: DefaultTrailingReplicaWait; negative: every
	// follower gets every round at once. See docs/replication.md.
	TrailingReplicaWait time.Duration

	// Timing of leases and failure detection (see docs/replication.md).
	PingInterval   time.Duration // every node pings the raft leader this often
	LeaseWindow    time.Duration // a ping answer keeps the write lease this long
	FailureTimeout time.Duration // silence after which the raft leader fails a node over
	RaftHeartbeat  time.Duration // hashicorp/raft heartbeat and election timeout
	RequestTimeout time.Duration // how long a client request may wait for routing/retries
	// ClientIdleTimeout closes a client connection that sends nothing for
	// this long, between requests or in the middle of a frame.
	ClientIdleTimeout time.Duration

	Clock   seam.Clock
	Network seam.Network
	FS      wal.FS
	// DiskWatch, if set, also counts the raft log's writes (the WAL's are
	// counted by FS wrapped in wal.Watched with the same watch), for a
	// disk-stall watchdog.
	DiskWatch *wal.IOWatch
	Rand      *rand.Rand
	Logger    *slog.Logger
	// LibLogLevel is the floor for protoactor's and raft's own logs.
	LibLogLevel slog.Level

	// AckBeforeQuorum plants a bug for the testkit's checker to find: the
	// segment leader acknowledges writes on its own copy alone.
	AckBeforeQuorum bool
}

func (c *Config) setDefaults() error {
	if c.NodeID == 0 {
		return errors.New("node id must be a positive integer")
	}
	if c.DataDir == "" {
		c.DataDir = "./data"
	}
	if c.ClientAddr == "" {
		c.ClientAddr = "127.0.0.1:9091"
	}
	if c.RaftAddr == "" {
		c.RaftAddr = "127.0.0.1:6001"
	}
	if c.AdvertiseRaftAddr == "" {
		c.AdvertiseRaftAddr = c.RaftAddr
	}
	if c.AdvertiseClientAddr == "" {
		c.AdvertiseClientAddr = c.ClientAddr
	}
	if c.MaxSegmentEntries == 0 {
		c.MaxSegmentEntries = 1_000_000
	}
	if c.MonitorInterval == 0 {
		c.MonitorInterval = 10 * time.Second
	}
	if c.MonitorInterval < 10*time.Millisecond {
		c.MonitorInterval = 10 * time.Millisecond
	}
	if c.ReplicationFactor == 0 {
		c.ReplicationFactor = 3
	}
	if c.MaxFrame == 0 {
		c.MaxFrame = 1 << 20
	}
	if c.TrailingReplicaWait == 0 {
		c.TrailingReplicaWait = DefaultTrailingReplicaWait
	}
	if c.PingInterval == 0 {
		c.PingInterval = 100 * time.Millisecond
	}
	if c.LeaseWindow == 0 {
		c.LeaseWindow = time.Second
	}
	if c.FailureTimeout == 0 {
		c.FailureTimeout = 2 * time.Second
	}
	if c.FailureTimeout <= c.LeaseWindow {
		return fmt.Errorf("failure timeout %v must exceed the lease window %v", c.FailureTimeout, c.LeaseWindow)
	}
	if c.RaftHeartbeat == 0 {
		c.RaftHeartbeat = 500 * time.Millisecond
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = 10 * time.Second
	}
	if c.ClientIdleTimeout == 0 {
		c.ClientIdleTimeout = 5 * time.Minute
	}
	if c.Clock == nil {
		c.Clock = seam.RealClock{}
	}
	if c.Network == nil {
		c.Network = seam.TCPNetwork{}
	}
	if c.Rand == nil {
		c.Rand = rand.New(rand.NewSource(int64(c.NodeID)))
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.LibLogLevel == 0 {
		c.LibLogLevel = slog.LevelWarn
	}
	return nil
}

// NodeDir is where this node keeps its state.
func (c *Config) NodeDir() string {
	return filepath.Join(c.DataDir, "node_"+strconv.FormatUint(c.NodeID, 10))
}

// ParsePeer parses an --initial-peer value: "id@raftaddr" (or "id=raftaddr").
func ParsePeer(s string) (id uint64, addr string, err error) {
	i := strings.IndexAny(s, "@=")
	if i <= 0 {
		return 0, "", fmt.Errorf("initial peer %q: want id@raft-address, e.g. 2@127.0.0.1:6002", s)
	}
	id, err = strconv.ParseUint(s[:i], 10, 64)
	if err != nil || id == 0 {
		return 0, "", fmt.Errorf("initial peer %q: bad node id", s)
	}
	return id, s[i+1:], nil
}
