package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walrus-go/walrus/wire"
)

// replyTimeout bounds the wait for one reply. The node's own request
// timeout is 10s; anything slower is a hang.
const replyTimeout = 20 * time.Second

// client speaks the client protocol on one TCP connection: frames out,
// frames in, nothing else. Its methods return errors so goroutines can use
// it; tests use conn, which fails the test instead.
type client struct {
	nc      net.Conn
	fr      *wire.FrameReader
	timeout time.Duration // per write and per reply
}

func dialClient(addr string) (*client, error) {
	nc, err := net.DialTimeout("tcp", addr, 3*time.Second)
	if err != nil {
		return nil, err
	}
	// replies to READ may be large: accept whatever the node sends
	return &client{nc: nc, fr: wire.NewFrameReader(nc, 64<<20), timeout: replyTimeout}, nil
}

func (cl *client) Close() error { return cl.nc.Close() }

// writeRaw writes b as is: bytes that need not be a well-formed frame.
func (cl *client) writeRaw(b []byte) error {
	_ = cl.nc.SetWriteDeadline(time.Now().Add(cl.timeout))
	_, err := cl.nc.Write(b)
	return err
}

// send writes one request frame.
func (cl *client) send(body []byte) error { return cl.writeRaw(wire.AppendFrame(nil, body)) }

// recv reads one reply frame and returns a copy of its body.
func (cl *client) recv() ([]byte, error) {
	_ = cl.nc.SetReadDeadline(time.Now().Add(cl.timeout))
	b, err := cl.fr.ReadFrame()
	if err != nil {
		return nil, err
	}
	return bytes.Clone(b), nil
}

// roundTrip sends one request and reads its reply.
func (cl *client) roundTrip(body []byte) ([]byte, error) {
	if err := cl.send(body); err != nil {
		return nil, err
	}
	return cl.recv()
}

// conn is a client bound to a test: every I/O error fails the test, and
// the connection is closed when the test ends.
type conn struct {
	t  testing.TB
	id int // the node it talks to
	*client
}

// dial connects to node id's client port.
func (c *cluster) dial(id int) *conn {
	c.t.Helper()
	return c.dialIn(c.t, id)
}

// dialIn is dial for a subtest t: failures and cleanup belong to t.
func (c *cluster) dialIn(t testing.TB, id int) *conn {
	t.Helper()
	cl, err := dialClient(c.node(id).clientAddr())
	if err != nil {
		t.Fatalf("dial node %d: %v", id, err)
	}
	t.Cleanup(func() { cl.Close() })
	return &conn{t: t, id: id, client: cl}
}

// do sends req and returns the reply.
func (cn *conn) do(req string) string {
	cn.t.Helper()
	return string(cn.doBytes([]byte(req)))
}

// doBytes sends a request body of any bytes and returns the reply body.
func (cn *conn) doBytes(req []byte) []byte {
	cn.t.Helper()
	start := time.Now()
	r, err := cn.roundTrip(req)
	if err != nil {
		cn.t.Fatalf("node %d: %s: %v (after %v)", cn.id, quote(req), err, time.Since(start).Round(time.Millisecond))
	}
	return r
}

// mustDo sends req and fails the test unless the reply is exactly want.
func (cn *conn) mustDo(req, want string) {
	cn.t.Helper()
	if got := cn.do(req); got != want {
		cn.t.Fatalf("node %d: %s: got %s, want %s", cn.id, quote([]byte(req)), quote([]byte(got)), quote([]byte(want)))
	}
}

// mustWriteRaw writes bytes that need not form a frame.
func (cn *conn) mustWriteRaw(b []byte) {
	cn.t.Helper()
	if err := cn.writeRaw(b); err != nil {
		cn.t.Fatalf("node %d: write %s: %v", cn.id, quote(b), err)
	}
}

// mustRecv reads one reply.
func (cn *conn) mustRecv() string {
	cn.t.Helper()
	r, err := cn.recv()
	if err != nil {
		cn.t.Fatalf("node %d: read reply: %v", cn.id, err)
	}
	return string(r)
}

// expectClosed fails the test unless the node closes the connection
// without sending anything more.
func (cn *conn) expectClosed() {
	cn.t.Helper()
	r, err := cn.recv()
	switch {
	case err == nil:
		cn.t.Fatalf("node %d: want the connection closed, got another reply %s", cn.id, quote(r))
	case errors.Is(err, io.EOF), errors.Is(err, syscall.ECONNRESET):
	default:
		cn.t.Fatalf("node %d: want the connection closed, got %v", cn.id, err)
	}
}

// read sends READ <topic> <offset> <max> and decodes the batch reply; an
// EMPTY reply is no entries.
func (cn *conn) read(topic string, offset, max int) (first int, entries [][]byte) {
	cn.t.Helper()
	req := fmt.Sprintf("READ %s %d %d", topic, offset, max)
	r := cn.doBytes([]byte(req))
	if string(r) == "EMPTY" {
		return offset, nil
	}
	rep := wire.ParseReply(r)
	if rep.Kind != wire.ReplyOK {
		cn.t.Fatalf("node %d: %s: got %s", cn.id, req, quote(r))
	}
	f, es, err := wire.ParseBatchReply(rep.Payload)
	if err != nil {
		cn.t.Fatalf("node %d: %s: %v in %s", cn.id, req, err, quote(r))
	}
	if int(f) != offset {
		cn.t.Fatalf("node %d: %s: first offset %d, want %d", cn.id, req, f, offset)
	}
	return int(f), es
}

// readAll reads the whole topic from offset 0 with READ, batch after batch,
// until EMPTY.
func (cn *conn) readAll(topic string) []string {
	cn.t.Helper()
	var out []string
	for {
		_, es := cn.read(topic, len(out), 1000)
		if len(es) == 0 {
			return out
		}
		for _, e := range es {
			out = append(out, string(e))
		}
	}
}

// tryReadAll is readAll for a wait condition: an ERR reply (a segment
// still recovering after a restart, say) is an error, not a failure.
func (c *cluster) tryReadAll(id int, topic string) ([]string, error) {
	cl, err := dialClient(c.node(id).clientAddr())
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var out []string
	for {
		req := fmt.Sprintf("READ %s %d 1000", topic, len(out))
		r, err := cl.roundTrip([]byte(req))
		if err != nil {
			return nil, fmt.Errorf("node %d: %s: %v", id, req, err)
		}
		if string(r) == "EMPTY" {
			return out, nil
		}
		rep := wire.ParseReply(r)
		if rep.Kind != wire.ReplyOK {
			return nil, fmt.Errorf("node %d: %s: %s", id, req, quote(r))
		}
		_, es, err := wire.ParseBatchReply(rep.Payload)
		if err != nil {
			return nil, fmt.Errorf("node %d: %s: %v", id, req, err)
		}
		for _, e := range es {
			out = append(out, string(e))
		}
	}
}

// getAll consumes the topic's shared cursor with GET until EMPTY.
func (cn *conn) getAll(topic string) []string {
	cn.t.Helper()
	var out []string
	for {
		r := cn.do("GET " + topic)
		if r == "EMPTY" {
			return out
		}
		p, ok := strings.CutPrefix(r, "OK ")
		if !ok {
			cn.t.Fatalf("node %d: GET %s: got %s after %d entries", cn.id, topic, quote([]byte(r)), len(out))
		}
		out = append(out, p)
	}
}

// quote shows a request or reply for a failure message, shortened.
func quote(b []byte) string {
	const max = 200
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + fmt.Sprintf("... (%d bytes)", len(b))
	}
	return strconv.Quote(string(b))
}

// jsonObj is a decoded JSON object whose numbers stay json.Number, so a
// test can tell an integer from a float.
type jsonObj map[string]any

func decodeJSON(s string) (jsonObj, error) {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var m jsonObj
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v: %s", err, quote([]byte(s)))
	}
	if d.More() {
		return nil, fmt.Errorf("trailing data after the JSON object: %s", quote([]byte(s)))
	}
	return m, nil
}

// get walks nested objects along path; nil if any step is missing.
func (m jsonObj) get(path ...string) any {
	var v any = map[string]any(m)
	for _, k := range path {
		o, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = o[k]
	}
	return v
}

// has reports whether the last key of path is present (even if null).
func (m jsonObj) has(path ...string) bool {
	parent := m.get(path[:len(path)-1]...)
	o, ok := parent.(map[string]any)
	if !ok {
		return false
	}
	_, ok = o[path[len(path)-1]]
	return ok
}

// metrics asks node id for METRICS on a new connection.
func (c *cluster) metrics(id int) (jsonObj, error) {
	return c.rawJSON(id, "METRICS")
}

// rawJSON sends req (METRICS, STATE t) on a new connection and decodes the
// reply as a JSON object.
func (c *cluster) rawJSON(id int, req string) (jsonObj, error) {
	cl, err := dialClient(c.node(id).clientAddr())
	if err != nil {
		return nil, fmt.Errorf("node %d: %v", id, err)
	}
	defer cl.Close()
	cl.timeout = 3 * time.Second
	r, err := cl.roundTrip([]byte(req))
	if err != nil {
		return nil, fmt.Errorf("node %d: %s: %v", id, req, err)
	}
	m, err := decodeJSON(string(r))
	if err != nil {
		return nil, fmt.Errorf("node %d: %s: %v", id, req, err)
	}
	return m, nil
}

// asInt returns v as an integer if it is a JSON integer.
func asInt(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := strconv.ParseInt(n.String(), 10, 64)
	return i, err == nil
}
