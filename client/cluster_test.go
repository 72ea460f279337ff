package client

import (
	"context"
	"testing"
	"time"

	"github.com/walrus-go/walrus/actors"
	"github.com/walrus-go/walrus/internal/testcluster"
)

// cluster is a real Walrus cluster of in-process nodes on loopback TCP
// (internal/testcluster), for testing the client end to end.
type cluster struct {
	*testcluster.Cluster
	t *testing.T
}

// startCluster starts size nodes and waits until every one is a voting
// member that knows every other. tweak adjusts each node's config (e.g.
// MaxSegmentEntries, WALRUS_MAX_SEGMENT_ENTRIES on the command line).
func startCluster(t *testing.T, size int, tweak func(*actors.Config)) *cluster {
	t.Helper()
	return &cluster{Cluster: testcluster.Start(t, size, tweak), t: t}
}

// dial returns a client of the whole cluster (stopped nodes included: a
// client must cope with those), closed with the test.
func (c *cluster) dial(opts ...Option) *Client {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cl, err := Dial(ctx, c.Addrs(), opts...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { cl.Close() })
	return cl
}
