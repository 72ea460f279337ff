package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode"

	"github.com/walrus-go/walrus/wire"
)

// Range is a run of consecutive topic-global offsets: entries First ..
// First+Count-1.
type Range struct {
	First uint64
	Count int
}

// checkName rejects topic and group names the text protocol cannot carry:
// the server splits requests on spaces and trims trailing white space, so a
// name with white space would silently name something else. Other bad
// names (an empty one, say) go to the server, which answers with its own
// error text.
func checkName(what, name string) error {
	for _, r := range name {
		if unicode.IsSpace(r) {
			return fmt.Errorf("walrus: %s %q contains white space", what, name)
		}
	}
	return nil
}

// unexpected reports a reply that does not fit the request.
func unexpected(cmd string, body []byte) error {
	const show = 200
	if len(body) > show {
		body = body[:show]
	}
	return fmt.Errorf("walrus: unexpected reply to %s: %q", cmd, body)
}

// expectOK checks that a reply is "OK" (possibly with a payload).
func expectOK(cmd string, body []byte) error {
	if wire.ParseReply(body).Kind != wire.ReplyOK {
		return unexpected(cmd, body)
	}
	return nil
}

// Register creates topic (REGISTER). It is idempotent: registering an
// existing topic succeeds and keeps its replication factor. RF(n) asks for
// a replication factor other than the cluster default.
func (c *Client) Register(ctx context.Context, topic string, opts ...RegisterOption) error {
	if err := checkName("topic", topic); err != nil {
		return err
	}
	var o registerOpts
	for _, f := range opts {
		f(&o)
	}
	req := wire.Request{Cmd: wire.CmdRegister, Topic: topic}
	if o.hasRF {
		req.Payload, req.HasPayload = []byte("rf="+strconv.Itoa(o.rf)), true
	}
	body, err := c.do(ctx, &op{kind: opIdempotent, body: wire.AppendRequest(nil, &req)})
	if err != nil {
		return err
	}
	return expectOK(wire.CmdRegister, body)
}

// Put appends payload to topic (PUT). The topic must exist: PUT never
// creates one ("unknown topic <t>"). Payloads are binary-safe; one that
// ends in white space (which the text form would trim) is sent as a
// one-entry MPUT. An empty payload is refused by the server
// ("PUT requires a payload").
//
// A payload over wire.MaxEntrySize of the frame limit (WithMaxFrame) fails
// locally with ErrTooLarge: the server refuses it ("entry too large"), as
// its READ reply would not fit the frame limit.
//
// On an error matching IsOutcomeUnknown the entry may or may not have been
// appended; it is not retried unless RetryUnknownWrites(true).
func (c *Client) Put(ctx context.Context, topic string, payload []byte) error {
	if err := checkName("topic", topic); err != nil {
		return err
	}
	if err := c.checkEntry(-1, payload); err != nil {
		return err
	}
	req := wire.Request{Cmd: wire.CmdPut, Topic: topic, Payload: payload, HasPayload: true}
	if len(payload) > 0 && len(wire.TrimRequest(payload)) != len(payload) {
		req = wire.Request{Cmd: wire.CmdMPut, Topic: topic, Entries: [][]byte{payload}}
	}
	body, err := c.do(ctx, &op{kind: opWrite, body: wire.AppendRequest(nil, &req), topic: topic})
	if err != nil {
		return err
	}
	return expectOK(req.Cmd, body)
}

// PutBatch appends payloads to topic in order, with consecutive offsets
// within each returned Range (MPUT). The server splits a batch that fills
// the active segment across segments, so the reply may hold several
// ranges; together they cover every payload, in order.
//
// Batches over wire.MaxMPutEntries entries or the frame limit are sent as
// several MPUTs, one after the other. If one fails, the ranges of those
// before it are returned with the error (their entries were appended).
// Empty payloads are refused by the server ("MPUT entry <i> of <n> is
// empty"); an empty batch sends nothing. A payload over wire.MaxEntrySize
// of the frame limit fails the whole batch locally with ErrTooLarge,
// before anything is sent (see Put).
func (c *Client) PutBatch(ctx context.Context, topic string, payloads [][]byte) ([]Range, error) {
	if err := checkName("topic", topic); err != nil {
		return nil, err
	}
	for i, p := range payloads {
		if err := c.checkEntry(i, p); err != nil {
			return nil, err
		}
	}
	var out []Range
	for start := 0; start < len(payloads); {
		end := c.chunkEnd(topic, payloads, start)
		if end == start {
			return out, fmt.Errorf("%w: entry %d holds %d bytes, limit %d per request",
				ErrTooLarge, start, len(payloads[start]), c.cfg.maxFrame)
		}
		req := wire.Request{Cmd: wire.CmdMPut, Topic: topic, Entries: payloads[start:end]}
		body, err := c.do(ctx, &op{kind: opWrite, body: wire.AppendRequest(nil, &req), topic: topic})
		if err != nil {
			return out, err
		}
		rs, err := parseRanges(body)
		if err != nil {
			return out, err
		}
		n := 0
		for _, r := range rs {
			n += r.Count
		}
		if n != end-start {
			return out, fmt.Errorf("walrus: MPUT of %d entries acknowledged %d: %q", end-start, n, body)
		}
		out = append(out, rs...)
		start = end
	}
	return out, nil
}

// checkEntry refuses a payload the server would refuse as too large to
// read back under the frame limit (wire.MaxEntrySize); i is its index in a
// batch, or -1.
func (c *Client) checkEntry(i int, payload []byte) error {
	limit := wire.MaxEntrySize(c.cfg.maxFrame)
	if len(payload) <= limit {
		return nil
	}
	if i < 0 {
		return fmt.Errorf("%w: entry of %d bytes, at most %d (frame limit %d)", ErrTooLarge, len(payload), limit, c.cfg.maxFrame)
	}
	return fmt.Errorf("%w: entry %d holds %d bytes, at most %d (frame limit %d)", ErrTooLarge, i, len(payload), limit, c.cfg.maxFrame)
}

// chunkEnd returns the end of the longest run of payloads from start that
// fits one MPUT.
func (c *Client) chunkEnd(topic string, payloads [][]byte, start int) int {
	size := len("MPUT ") + len(topic) + len(" 10000\n")
	end := start
	for end < len(payloads) && end-start < wire.MaxMPutEntries {
		size += 4 + len(payloads[end])
		if size > c.cfg.maxFrame {
			break
		}
		end++
	}
	return end
}

// parseRanges parses MPUT's reply "OK <first> <count> [<first> <count>]...".
func parseRanges(body []byte) ([]Range, error) {
	r := wire.ParseReply(body)
	if r.Kind != wire.ReplyOK {
		return nil, unexpected(wire.CmdMPut, body)
	}
	f := bytes.Split(r.Payload, []byte{' '})
	if len(f) == 0 || len(f)%2 != 0 {
		return nil, unexpected(wire.CmdMPut, body)
	}
	out := make([]Range, 0, len(f)/2)
	for i := 0; i < len(f); i += 2 {
		first, err1 := strconv.ParseUint(string(f[i]), 10, 64)
		count, err2 := strconv.Atoi(string(f[i+1]))
		if err1 != nil || err2 != nil || count < 1 {
			return nil, unexpected(wire.CmdMPut, body)
		}
		out = append(out, Range{First: first, Count: count})
	}
	return out, nil
}

// Get consumes the next entry of topic's shared cursor (GET). ok is false
// when there is nothing to read (EMPTY). GET is destructive: once the
// request was written it is never retried, and an error matching
// IsOutcomeUnknown may mean an entry was consumed and lost.
func (c *Client) Get(ctx context.Context, topic string) (payload []byte, ok bool, err error) {
	return c.get(ctx, topic, &wire.Request{Cmd: wire.CmdGet, Topic: topic}, 0)
}

// GetWait is Get that, when the topic has nothing to read, waits up to
// wait (millisecond resolution, at most wire.MaxWait) for an entry to
// arrive (GETW).
func (c *Client) GetWait(ctx context.Context, topic string, wait time.Duration) (payload []byte, ok bool, err error) {
	return c.get(ctx, topic, &wire.Request{Cmd: wire.CmdGetW, Topic: topic, Wait: wait}, wait)
}

func (c *Client) get(ctx context.Context, topic string, req *wire.Request, wait time.Duration) ([]byte, bool, error) {
	if err := checkName("topic", topic); err != nil {
		return nil, false, err
	}
	body, err := c.do(ctx, &op{kind: opDestructive, body: wire.AppendRequest(nil, req), wait: wait})
	if err != nil {
		return nil, false, err
	}
	r := wire.ParseReply(body)
	switch r.Kind {
	case wire.ReplyEmpty:
		return nil, false, nil
	case wire.ReplyOK:
		if r.Payload == nil {
			return []byte{}, true, nil
		}
		return r.Payload, true, nil
	}
	return nil, false, unexpected(req.Cmd, body)
}

// Read returns up to max entries of topic starting at offset, without
// touching any cursor (READ; max 1..wire.MaxReadMax). first is the offset
// of entries[0]; with nothing at offset (at or past the end) it returns
// offset and no entries. The server may return fewer than max entries, to
// keep the reply within its frame limit or because a segment ends there (a
// READ never spans two): read on from first+len(entries).
func (c *Client) Read(ctx context.Context, topic string, offset uint64, max int) (first uint64, entries [][]byte, err error) {
	if err := checkName("topic", topic); err != nil {
		return 0, nil, err
	}
	req := wire.Request{Cmd: wire.CmdRead, Topic: topic, Offset: offset, Max: max}
	first, entries, err = c.batch(ctx, &req, 0)
	if err == nil && entries == nil {
		first = offset
	}
	return first, entries, err
}

// GroupRead returns up to max entries from the consumer group's committed
// position (GROUPREAD; a new group starts at 0), waiting up to wait for one
// when there is none. It does not move the position: Commit(first+n) after
// processing n entries. With no entries, first is 0.
func (c *Client) GroupRead(ctx context.Context, topic, group string, max int, wait time.Duration) (first uint64, entries [][]byte, err error) {
	if err := checkName("topic", topic); err != nil {
		return 0, nil, err
	}
	if err := checkName("group", group); err != nil {
		return 0, nil, err
	}
	req := wire.Request{Cmd: wire.CmdGroupRead, Topic: topic, Group: group, Max: max, Wait: wait}
	return c.batch(ctx, &req, wait)
}

func (c *Client) batch(ctx context.Context, req *wire.Request, wait time.Duration) (uint64, [][]byte, error) {
	body, err := c.do(ctx, &op{kind: opIdempotent, body: wire.AppendRequest(nil, req), wait: wait})
	if err != nil {
		return 0, nil, err
	}
	r := wire.ParseReply(body)
	switch r.Kind {
	case wire.ReplyEmpty:
		return 0, nil, nil
	case wire.ReplyOK:
		first, entries, err := wire.ParseBatchReply(r.Payload)
		if err != nil {
			return 0, nil, unexpected(req.Cmd, body)
		}
		return first, entries, nil
	}
	return 0, nil, unexpected(req.Cmd, body)
}

// Commit sets the consumer group's position to next: the offset its next
// GroupRead starts at (COMMIT). Moving backwards replays.
func (c *Client) Commit(ctx context.Context, topic, group string, next uint64) error {
	if err := checkName("topic", topic); err != nil {
		return err
	}
	if err := checkName("group", group); err != nil {
		return err
	}
	req := wire.Request{Cmd: wire.CmdCommit, Topic: topic, Group: group, Offset: next}
	body, err := c.do(ctx, &op{kind: opIdempotent, body: wire.AppendRequest(nil, &req)})
	if err != nil {
		return err
	}
	return expectOK(wire.CmdCommit, body)
}

// Leader reports where writes to topic go (LEADER): its active segment,
// the node leading it and that node's client address. The answer also
// refreshes the client's routing cache.
func (c *Client) Leader(ctx context.Context, topic string) (segment, node uint64, addr string, err error) {
	if err := checkName("topic", topic); err != nil {
		return 0, 0, "", err
	}
	req := wire.Request{Cmd: wire.CmdLeader, Topic: topic}
	body, err := c.do(ctx, &op{kind: opIdempotent, body: wire.AppendRequest(nil, &req)})
	if err != nil {
		return 0, 0, "", err
	}
	r := wire.ParseReply(body)
	if r.Kind != wire.ReplyOK {
		return 0, 0, "", unexpected(wire.CmdLeader, body)
	}
	segment, node, addr, err = wire.ParseLeaderReply(r.Payload)
	if err == nil && c.cfg.smartRouting {
		c.rememberLeader(topic, addr)
	}
	return segment, node, addr, err
}

// State returns topic's STATE: the COMPAT.md fields, our additions, and
// the whole JSON as received in State.Raw.
func (c *Client) State(ctx context.Context, topic string) (State, error) {
	if err := checkName("topic", topic); err != nil {
		return State{}, err
	}
	req := wire.Request{Cmd: wire.CmdState, Topic: topic}
	body, err := c.do(ctx, &op{kind: opIdempotent, body: wire.AppendRequest(nil, &req)})
	if err != nil {
		return State{}, err
	}
	var st State
	if err := json.Unmarshal(body, &st); err != nil {
		return State{}, fmt.Errorf("walrus: STATE reply is not the expected JSON: %w", err)
	}
	st.Raw = json.RawMessage(body)
	return st, nil
}

// Metrics returns the METRICS JSON of whichever node answers (see
// COMPAT.md for its keys), decoded with encoding/json: numbers are
// float64, objects map[string]any. Use Do("METRICS") for the raw bytes
// or to pick a node.
func (c *Client) Metrics(ctx context.Context) (map[string]any, error) {
	body, err := c.do(ctx, &op{kind: opIdempotent, body: []byte(wire.CmdMetrics)})
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, fmt.Errorf("walrus: METRICS reply is not a JSON object: %w", err)
	}
	return m, nil
}

// ErrEmptyRequest: Do was given an empty request. A zero-length frame is
// a framing error the server answers by closing the connection.
var ErrEmptyRequest = errors.New("walrus: empty request")

// Do sends one raw request body (e.g. "PUT logs hello") and returns the
// raw reply body, "ERR ..." replies included: for tools that speak the
// protocol themselves, such as walrus-cli's prompt. Retries follow the
// request's command word as for the typed methods; unknown words are
// treated like GET (never repeated once written).
func (c *Client) Do(ctx context.Context, request []byte) ([]byte, error) {
	if len(request) == 0 {
		return nil, ErrEmptyRequest
	}
	o := &op{kind: opDestructive, body: request}
	if req, err := wire.ParseRequest(request); err == nil {
		switch req.Cmd {
		case wire.CmdPut, wire.CmdMPut:
			o.kind, o.topic = opWrite, req.Topic
		case wire.CmdGet, wire.CmdGetW:
			o.wait = req.Wait
		default:
			o.kind, o.wait = opIdempotent, req.Wait
		}
	}
	body, err := c.do(ctx, o)
	if se, ok := err.(*ServerError); ok {
		return append([]byte("ERR "), se.Msg...), nil
	}
	return body, err
}
