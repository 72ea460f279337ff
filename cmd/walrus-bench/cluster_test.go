package main

import (
	"strings"
	"testing"
	"time"

	"github.com/walrus-go/walrus/actors"
	"github.com/walrus-go/walrus/internal/testcluster"
)

// startCluster starts an in-process cluster (internal/testcluster) and
// waits until it serves: a probe topic, with every node as a replica,
// takes a write through every node.
func startCluster(tb testing.TB, size int, tweak func(*actors.Config)) *testcluster.Cluster {
	tb.Helper()
	c := testcluster.Start(tb, size, tweak)
	c.WaitFor("a probe topic to take a write on every node", 20*time.Second, func() bool {
		for _, a := range c.Addrs() {
			if r, err := testcluster.Request(a, "REGISTER probe"); err != nil || r != "OK" {
				return false
			}
			if r, err := testcluster.Request(a, "PUT probe x"); err != nil || r != "OK" {
				return false
			}
		}
		return true
	})
	return c
}

// logWriter sends progress lines to the test log.
type logWriter struct{ tb testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.tb.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
