package actors

import (
	"fmt"
	"strings"
	"testing"

	"github.com/walrus-go/walrus/messages"
	"github.com/walrus-go/walrus/wire"
)

// limitedClient is a test client that, like walrus-cli and the client
// library, accepts reply frames up to the node's default frame limit only.
func (c *testCluster) limitedClient(id uint64) *client {
	cl := c.client(id)
	cl.fr = wire.NewFrameReader(cl.c, wire.DefaultMaxFrame)
	return cl
}

// expect is must for requests and replies too long to print whole.
func (cl *client) expect(req, want string) {
	cl.t.Helper()
	if got := cl.do(req); got != want {
		cl.t.Fatalf("%s: got %s, want %s", short(req), short(got), short(want))
	}
}

func short(s string) string {
	if len(s) <= 80 {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q... (%d bytes)", s[:80], len(s))
}

// TestClusterEntriesAtTheSizeLimitAreReadable: a PUT or MPUT entry of
// wire.MaxEntrySize bytes is acknowledged and READ, GROUPREAD and GET
// return it to a client with the node's frame limit, through every node;
// one byte more is refused before anything is written or forwarded, and
// the connection goes on. (A PUT whose request filled the 1 MiB frame used
// to be acknowledged and then be unreadable: its READ reply was 2 bytes
// over the limit.)
func TestClusterEntriesAtTheSizeLimitAreReadable(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.client(1).must("REGISTER big", "OK")
	leader := uint64(c.nodes[1].State().Topics["big"].Active().Leader)
	w := c.limitedClient(leader%3 + 1) // its writes are forwarded to the leader
	max := wire.MaxEntrySize(wire.DefaultMaxFrame)
	a, b := strings.Repeat("a", max), strings.Repeat("b", max)
	w.expect("PUT big "+a, "OK")
	w.expect(mput("big", b), "OK 1 1")

	tooLarge := func(n int) string { return fmt.Sprintf("ERR entry too large: %d bytes (at most %d)", n, max) }
	w.expect("PUT big "+a+"a", tooLarge(max+1))
	whole := wire.DefaultMaxFrame - len("PUT big ") // the reviewer's PUT: a 1 MiB request
	w.expect("PUT big "+strings.Repeat("c", whole), tooLarge(whole))
	w.expect(mput("big", "x", b+"b"), fmt.Sprintf("ERR entry too large: entry 2 of 2 has %d bytes (at most %d)", max+1, max))
	// the same through the segment leader itself
	ld := c.limitedClient(leader)
	ld.expect("PUT big "+a+"a", tooLarge(max+1))
	ld.expect(mput("big", b+"b"), fmt.Sprintf("ERR entry too large: entry 1 of 1 has %d bytes (at most %d)", max+1, max))
	w.must("PUT big small", "OK")

	for id := uint64(1); id <= 3; id++ {
		r := c.limitedClient(id)
		r.expect("READ big 0", batch(0, a))
		r.expect("READ big 1 10", batch(1, b)) // two do not fit one reply
		r.expect("READ big 2 10", batch(2, "small"))
		r.expect("READ big 3", "EMPTY")
		g := fmt.Sprintf("g%d", id)
		r.expect("GROUPREAD big "+g+" 10", batch(0, a))
		r.must(fmt.Sprintf("COMMIT big %s 1", g), "OK")
		r.expect("GROUPREAD big "+g+" 10", batch(1, b))
	}
	r := c.limitedClient(1)
	r.expect("GET big", "OK "+a)
	r.expect("GET big", "OK "+b)
	r.expect("GET big", "OK small")
	r.expect("GET big", "EMPTY")
}

// TestClusterForwardedOversizedWriteIsRefused: a write forwarded by a peer
// (whose own limit may be larger) with an entry over the segment leader's
// limit is refused by the leader's node, and nothing is written.
func TestClusterForwardedOversizedWriteIsRefused(t *testing.T) {
	c := newTestCluster(t, 3, nil)
	c.client(1).must("REGISTER fwd", "OK")
	c.client(1).must("PUT fwd x", "OK")
	max := wire.MaxEntrySize(wire.DefaultMaxFrame)
	resp, from := c.putFromPeer("fwd", [][]byte{[]byte("ok"), make([]byte, max+1)})
	want := fmt.Sprintf("entry too large: entry 2 of 2 has %d bytes (at most %d)", max+1, max)
	if resp.Err.Code != messages.CodeInvalid || resp.Err.Msg != want {
		t.Fatalf("oversized forwarded write answered %+v, want CodeInvalid %q", resp, want)
	}
	r := c.limitedClient(from)
	r.must("READ fwd 1", "EMPTY")
	r.must("PUT fwd y", "OK")
	r.must("READ fwd 0 10", batch(0, "x", "y"))
}

// TestClusterBatchRepliesFitTheFrameLimit: a READ or GROUPREAD of many
// small entries stops where the reply would pass the frame limit, length
// prefixes counted, and reading on returns everything.
func TestClusterBatchRepliesFitTheFrameLimit(t *testing.T) {
	c := newTestCluster(t, 1, nil)
	r := c.limitedClient(1)
	r.must("REGISTER many", "OK")
	// 10,000 entries of 104 bytes: 1,040,000 payload bytes, within the
	// payload budget, but 1,080,011 bytes as one reply
	entry := strings.Repeat("e", 104)
	entries := make([]string, 5000)
	for i := range entries {
		entries[i] = entry
	}
	r.must(mput("many", entries...), "OK 0 5000")
	r.must(mput("many", entries...), "OK 5000 5000")
	for _, req := range []string{"READ many 0 10000", "GROUPREAD many g 10000"} {
		got := r.do(req)
		first, es, err := wire.ParseBatchReply([]byte(strings.TrimPrefix(got, "OK ")))
		if err != nil || first != 0 || len(es) == 0 || len(es) == 10000 {
			t.Fatalf("%s: first %d, %d entries, %v", req, first, len(es), err)
		}
		if len(got) > wire.DefaultMaxFrame {
			t.Fatalf("%s: %d-byte reply", req, len(got))
		}
	}
	if got := r.readAll("many"); len(got) != 10000 {
		t.Fatalf("read %d entries, want 10000", len(got))
	}
}
