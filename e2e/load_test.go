package e2e

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/walrus-go/walrus/wire"
)

// Scenario 7: a thousand client connections open at once on one node, each
// registering (or reusing) one of ten topics, then doing a PUT and a GET.
// Every request succeeds, every entry is read exactly once, and the node
// stays healthy.
func TestThousandConcurrentConnections(t *testing.T) {
	const conns, topics, via = 1000, 10, 2
	c := startCluster(t, 3, clusterOpts{})

	clients := make([]*client, conns)
	for i := range clients {
		cl, err := dialClient(c.node(via).clientAddr())
		if err != nil {
			t.Fatalf("open connection %d of %d: %v", i+1, conns, err)
		}
		t.Cleanup(func() { cl.Close() })
		clients[i] = cl
	}

	type session struct {
		topic, put, got string
		err             error
	}
	sessions := make([]session, conns)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, cl := range clients {
		s := &sessions[i]
		s.topic, s.put = fmt.Sprintf("many%d", i%topics), fmt.Sprintf("from-%04d", i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			s.got, s.err = registerPutGet(cl, s.topic, s.put)
		}()
	}
	began := time.Now()
	close(start)
	wg.Wait()
	t.Logf("%d sessions of REGISTER+PUT+GET on %d connections took %v", conns, conns, time.Since(began).Round(time.Millisecond))

	var failed []string
	puts, gets := map[string][]string{}, map[string][]string{}
	for i, s := range sessions {
		if s.err != nil {
			failed = append(failed, fmt.Sprintf("connection %d: %v", i, s.err))
			continue
		}
		puts[s.topic] = append(puts[s.topic], s.put)
		gets[s.topic] = append(gets[s.topic], s.got)
	}
	if len(failed) > 0 {
		t.Fatalf("%d of %d sessions failed, e.g.:\n%s", len(failed), conns, strings.Join(failed[:min(len(failed), 10)], "\n"))
	}
	for topic, ps := range puts {
		slices.Sort(ps)
		gs := gets[topic]
		slices.Sort(gs)
		if !slices.Equal(ps, gs) {
			t.Errorf("topic %s: GETs returned %v\nwant each PUT exactly once: %v", topic, gs, ps)
		}
	}

	// still healthy: METRICS, a new connection's PUT and GET, nothing left
	if _, err := c.metrics(via); err != nil {
		t.Fatalf("METRICS after the load: %v", err)
	}
	cn := c.dial(via)
	cn.mustDo("REGISTER after-load", "OK")
	cn.mustDo("PUT after-load x", "OK")
	cn.mustDo("GET after-load", "OK x")
	for i := range topics {
		cn.mustDo(fmt.Sprintf("GET many%d", i), "EMPTY")
	}
}

// registerPutGet is one session of TestThousandConcurrentConnections:
// REGISTER and PUT answer OK, then GET returns an entry (this session's own
// PUT was acknowledged before it, so there is one to read); it returns
// that entry.
func registerPutGet(cl *client, topic, payload string) (got string, err error) {
	for _, rt := range []struct{ req, want string }{
		{"REGISTER " + topic, "OK"},
		{"PUT " + topic + " " + payload, "OK"},
	} {
		r, err := cl.roundTrip([]byte(rt.req))
		if err != nil {
			return "", fmt.Errorf("%s: %v", rt.req, err)
		}
		if string(r) != rt.want {
			return "", fmt.Errorf("%s: got %s, want %q", rt.req, quote(r), rt.want)
		}
	}
	r, err := cl.roundTrip([]byte("GET " + topic))
	if err != nil {
		return "", fmt.Errorf("GET %s: %v", topic, err)
	}
	p, ok := strings.CutPrefix(string(r), "OK ")
	if !ok {
		return "", fmt.Errorf("GET %s after its PUT: got %s, want \"OK <an entry>\"", topic, quote(r))
	}
	return p, nil
}

// Scenario 8 (COMPAT "One connection carries any number of
// request/response pairs, strictly in order"): 500 PUTs sent back to back
// without reading, then 500 replies, all OK; READ shows the payloads in the
// order sent. On a fresh topic, once through the segment's leader, once
// through a node that forwards to it. (Before 25c61ee both reordered.)
func TestPipelinedPuts(t *testing.T) {
	c := startCluster(t, 3, clusterOpts{})
	c.dial(1).mustDo("REGISTER pipe", "OK")
	leader := c.segmentLeader("pipe")
	var want []string
	for _, via := range []int{leader, leader%3 + 1} {
		want = append(want, c.dial(via).pipelinePuts("pipe", fmt.Sprintf("via%d", via), 500)...)
		if got := c.dial(3).readAll("pipe"); !slices.Equal(got, want) {
			t.Fatalf("READ pipe after pipelining through node %d (leader %d): not in the order sent\n got %v\nwant %v",
				via, leader, got, want)
		}
	}
}

// pipelinePuts sends n PUTs of topic in one write, then reads the n
// replies: each must be OK, and nothing may follow. It returns the
// payloads in the order sent.
func (cn *conn) pipelinePuts(topic, tag string, n int) []string {
	cn.t.Helper()
	var burst []byte
	var sent []string
	for i := range n {
		p := fmt.Sprintf("%s-%03d", tag, i)
		burst = wire.AppendFrame(burst, []byte("PUT "+topic+" "+p))
		sent = append(sent, p)
	}
	cn.mustWriteRaw(burst)
	for i := range n {
		r, err := cn.recv()
		if err != nil {
			cn.t.Fatalf("node %d: reply %d of %d pipelined PUTs: %v", cn.id, i+1, n, err)
		}
		if string(r) != "OK" {
			cn.t.Fatalf("node %d: reply %d of %d pipelined PUTs: got %s, want \"OK\"", cn.id, i+1, n, quote(r))
		}
	}
	_ = cn.nc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if r, err := cn.fr.ReadFrame(); !errors.Is(err, os.ErrDeadlineExceeded) {
		cn.t.Fatalf("node %d: after %d replies to %d requests: %s, %v", cn.id, n, n, quote(r), err)
	}
	return sent
}
