package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/walrus-go/walrus/actors"
	"github.com/walrus-go/walrus/wire"
)

// cluster is an in-process Walrus cluster on loopback TCP (real raft, bolt
// stores and WAL files under a temp dir): node 1 bootstraps, the others
// join it. startCluster registers Shutdown with t.Cleanup.
type cluster struct {
	tb    testing.TB
	nodes []*actors.Node
}

func startCluster(tb testing.TB, size int, tweak func(*actors.Config)) *cluster {
	tb.Helper()
	c := &cluster{tb: tb}
	tb.Cleanup(c.Shutdown)
	dir := tb.TempDir()
	for id := uint64(1); id <= uint64(size); id++ {
		cfg := actors.Config{NodeID: id, DataDir: dir, ClientAddr: "127.0.0.1:0", RaftAddr: "127.0.0.1:0",
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), RaftHeartbeat: 300 * time.Millisecond,
			MonitorInterval: 50 * time.Millisecond}
		if id > 1 {
			cfg.Join = []string{c.nodes[0].RaftAddr()}
		}
		if tweak != nil {
			tweak(&cfg)
		}
		n, err := actors.Start(cfg)
		if err != nil {
			tb.Fatalf("start node %d: %v", id, err)
		}
		c.nodes = append(c.nodes, n)
		if id == 1 {
			c.waitFor("node 1 to lead raft", 10*time.Second, n.IsRaftLeader)
		}
	}
	c.waitFor(fmt.Sprintf("all %d nodes in node 1's metadata", size), 20*time.Second, func() bool {
		return len(c.nodes[0].State().Nodes) == size
	})
	// the cluster serves once a topic with every node as replica takes writes
	c.waitFor("a probe topic to take a write on every node", 20*time.Second, func() bool {
		for _, a := range c.Addrs() {
			if !c.try(a, "REGISTER probe", "OK") || !c.try(a, "PUT probe x", "OK") {
				return false
			}
		}
		return true
	})
	return c
}

// Addrs are the nodes' client addresses.
func (c *cluster) Addrs() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.ClientAddr())
	}
	return out
}

// Shutdown stops every node.
func (c *cluster) Shutdown() {
	for _, n := range c.nodes {
		n.Stop()
	}
	c.nodes = nil
}

func (c *cluster) try(addr, req, want string) bool {
	cn, err := dial(addr)
	if err != nil {
		return false
	}
	defer cn.close()
	body, err := cn.do(wire.AppendFrame(nil, []byte(req)), 5*time.Second)
	return err == nil && string(body) == want
}

// waitFor polls cond until it holds, or fails the test naming what it
// waited for.
func (c *cluster) waitFor(what string, d time.Duration, cond func() bool) {
	c.tb.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			c.tb.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logWriter sends progress lines to the test log.
type logWriter struct{ tb testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
