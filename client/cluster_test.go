package client

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/walrus-go/walrus/actors"
)

// cluster is a real Walrus cluster of in-process nodes on loopback TCP
// (raft, WAL files and all), for testing the client end to end. Node 1
// bootstraps, the others join it. Stopped with the test.
type cluster struct {
	t     *testing.T
	dir   string
	nodes map[uint64]*actors.Node
	addrs map[uint64]string // client addresses, kept after a node stops
}

// startCluster starts size nodes and waits until every one of them is a
// voting member that knows every other. tweak adjusts each node's config
// (e.g. MaxSegmentEntries, WALRUS_MAX_SEGMENT_ENTRIES on the command line).
func startCluster(t *testing.T, size int, tweak func(*actors.Config)) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir(), nodes: map[uint64]*actors.Node{}, addrs: map[uint64]string{}}
	t.Cleanup(c.stopAll)
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	libLevel := slog.LevelWarn
	if os.Getenv("WALRUS_TEST_LOG") != "" {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		libLevel = slog.LevelDebug
	}
	for id := uint64(1); id <= uint64(size); id++ {
		cfg := actors.Config{NodeID: id, DataDir: c.dir, ClientAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0",
			Logger: logger, LibLogLevel: libLevel, MonitorInterval: 50 * time.Millisecond, RaftHeartbeat: 300 * time.Millisecond}
		if id > 1 {
			cfg.Join = []string{c.nodes[1].RaftAddr()}
		}
		if tweak != nil {
			tweak(&cfg)
		}
		n, err := actors.Start(cfg)
		if err != nil {
			t.Fatalf("start node %d: %v", id, err)
		}
		c.nodes[id], c.addrs[id] = n, n.ClientAddr()
		if id == 1 {
			c.waitFor("node 1 leads the raft group", 10*time.Second, n.IsRaftLeader)
		}
	}
	c.waitFor("every node knows every node", 20*time.Second, func() bool {
		for _, n := range c.nodes {
			if len(n.State().Nodes) != size {
				return false
			}
		}
		return true
	})
	// membership as the raft leader reports it (COMPAT METRICS keys)
	cl := c.dial(WithSmartRouting(false))
	defer cl.Close()
	c.waitFor("every node a voter", 20*time.Second, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		raw, err := cl.Do(ctx, []byte("METRICS"))
		return err == nil && strings.Count(between(string(raw), `"configs":[[`, `]]`), ",") == size-1
	})
	return c
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

// addrList is every node's client address, stopped nodes included (a
// client must cope with those).
func (c *cluster) addrList() []string {
	var out []string
	for id := uint64(1); id <= uint64(len(c.addrs)); id++ {
		out = append(out, c.addrs[id])
	}
	return out
}

// dial returns a client of the whole cluster, closed with the test.
func (c *cluster) dial(opts ...Option) *Client {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := Dial(ctx, c.addrList(), opts...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cl.Close() })
	return cl
}

// stop stops node id (its data stays; it is not restarted).
func (c *cluster) stop(id uint64) {
	if n := c.nodes[id]; n != nil {
		n.Stop()
		delete(c.nodes, id)
	}
}

func (c *cluster) stopAll() {
	for id := range c.nodes {
		c.stop(id)
	}
}

// waitFor polls cond until it holds or d passes, then fails naming what it
// waited for.
func (c *cluster) waitFor(what string, d time.Duration, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out after %v waiting for: %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
