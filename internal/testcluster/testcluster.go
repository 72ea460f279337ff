// Package testcluster starts in-process Walrus clusters for the tests of
// what is built on the node (the client package, walrus-cli,
// walrus-bench): real nodes (actors.Start) on loopback TCP, raft with bolt
// stores and WAL files in a temporary directory. Node 1 bootstraps, the
// others join it. (The actors package has its own: it cannot import this
// one.)
package testcluster

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/walrus-go/walrus/actors"
	"github.com/walrus-go/walrus/internal/poll"
	"github.com/walrus-go/walrus/wire"
)

// Cluster is a running test cluster. Stopped nodes keep their address.
type Cluster struct {
	tb    testing.TB
	Dir   string
	size  int
	nodes map[uint64]*actors.Node
	addrs map[uint64]string
}

// Start starts size nodes and returns once every node is a raft voter and
// knows every other. tweak adjusts each node's config. The nodes stop with
// the test (before its temporary directory is removed). WALRUS_TEST_LOG=1
// prints the nodes' logs.
func Start(tb testing.TB, size int, tweak func(*actors.Config)) *Cluster {
	tb.Helper()
	c := &Cluster{tb: tb, Dir: tb.TempDir(), size: size, nodes: map[uint64]*actors.Node{}, addrs: map[uint64]string{}}
	tb.Cleanup(c.StopAll) // registered after TempDir: runs before its removal
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	libLevel := slog.LevelWarn
	if os.Getenv("WALRUS_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		libLevel = slog.LevelDebug
	}
	for id := uint64(1); id <= uint64(size); id++ {
		cfg := actors.Config{NodeID: id, DataDir: c.Dir, ClientAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0",
			Logger: logger, LibLogLevel: libLevel, MonitorInterval: 50 * time.Millisecond, RaftHeartbeat: 300 * time.Millisecond}
		if id > 1 {
			cfg.Join = []string{c.nodes[1].RaftAddr()}
		}
		if tweak != nil {
			tweak(&cfg)
		}
		n, err := actors.Start(cfg)
		if err != nil {
			tb.Fatalf("start node %d: %v", id, err)
		}
		c.nodes[id], c.addrs[id] = n, n.ClientAddr()
		if id == 1 {
			c.WaitFor("node 1 to lead the raft group", 10*time.Second, n.IsRaftLeader)
		}
	}
	c.WaitFor("every node to know every node", 20*time.Second, func() bool {
		for _, n := range c.nodes {
			if len(n.State().Nodes) != size {
				return false
			}
		}
		return true
	})
	// membership as the raft leader reports it (METRICS, COMPAT.md)
	c.WaitFor("every node to be a raft voter", 20*time.Second, func() bool {
		m, err := Request(c.addrs[1], "METRICS")
		return err == nil && strings.Count(between(m, `"configs":[[`, `]]`), ",") == size-1
	})
	return c
}

// Node is node id, or nil once it was stopped.
func (c *Cluster) Node(id uint64) *actors.Node { return c.nodes[id] }

// Addrs are the client addresses of nodes 1..size, stopped nodes included.
func (c *Cluster) Addrs() []string {
	out := make([]string, 0, c.size)
	for id := uint64(1); id <= uint64(c.size); id++ {
		out = append(out, c.addrs[id])
	}
	return out
}

// Addr is node id's client address.
func (c *Cluster) Addr(id uint64) string { return c.addrs[id] }

// Stop stops node id; its data stays.
func (c *Cluster) Stop(id uint64) {
	if n := c.nodes[id]; n != nil {
		n.Stop()
		delete(c.nodes, id)
	}
}

// StopAll stops every running node.
func (c *Cluster) StopAll() {
	for id := range c.nodes {
		c.Stop(id)
	}
}

// WaitFor polls cond until it holds, or fails the test naming what it
// waited for once d has passed.
func (c *Cluster) WaitFor(what string, d time.Duration, cond func() bool) {
	c.tb.Helper()
	if !poll.Until(d, 20*time.Millisecond, cond) {
		c.tb.Fatalf("timed out after %v waiting for %s", d, what)
	}
}

// Request sends one request line to a node's client port on a fresh
// connection and returns the reply's body.
func Request(addr, req string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(wire.AppendFrame(nil, []byte(req))); err != nil {
		return "", err
	}
	body, err := wire.NewFrameReader(bufio.NewReader(conn), wire.DefaultMaxFrame).ReadFrame()
	return string(body), err
}

// between returns the text of s between the first from and the next to.
func between(s, from, to string) string {
	_, rest, ok := strings.Cut(s, from)
	if !ok {
		return ""
	}
	in, _, _ := strings.Cut(rest, to)
	return in
}
