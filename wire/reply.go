package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// Reply frames. Every AppendReply* function appends one complete client
// frame (length prefix included) to dst and returns the extended slice; with
// a reused dst they allocate nothing.

// AppendReplyOK appends "OK".
func AppendReplyOK(dst []byte) []byte { return AppendFrame(dst, replyOK) }

// AppendReplyValue appends "OK <payload>" (GET's reply).
func AppendReplyValue(dst, payload []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(replyOKSP)+len(payload)))
	dst = append(dst, replyOKSP...)
	return append(dst, payload...)
}

// AppendReplyEmpty appends "EMPTY".
func AppendReplyEmpty(dst []byte) []byte { return AppendFrame(dst, replyEmpty) }

// AppendReplyError appends "ERR <msg>". Pass a *Error's Msg; see Error.
func AppendReplyError(dst []byte, msg string) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(replyErrSP)+len(msg)))
	dst = append(dst, replyErrSP...)
	return append(dst, msg...)
}

// AppendReplyRaw appends body as is: STATE's and METRICS's JSON, which the
// reference sends with no prefix.
func AppendReplyRaw(dst, body []byte) []byte { return AppendFrame(dst, body) }

// AppendReplyBatch appends a READ or GROUPREAD reply holding entries, the
// first of which is at topic-global offset first:
//
//	"OK <first> <count>\n" then count times [u32 LE length][bytes]
//
// With no entries it appends "EMPTY" instead. The caller keeps the frame
// within the client's limit (DefaultMaxFrame unless agreed otherwise).
func AppendReplyBatch(dst []byte, first uint64, entries [][]byte) []byte {
	if len(entries) == 0 {
		return AppendReplyEmpty(dst)
	}
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = append(dst, replyOKSP...)
	dst = strconv.AppendUint(dst, first, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(len(entries)), 10)
	dst = append(dst, '\n')
	for _, e := range entries {
		dst = binary.LittleEndian.AppendUint32(dst, uint32(len(e)))
		dst = append(dst, e...)
	}
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start-FrameHeaderLen))
	return dst
}

// BatchReplySize is the frame size (header included) AppendReplyBatch would
// produce for entries totalling payloadBytes bytes: a server adds entries
// while this stays within the limit.
func BatchReplySize(first uint64, count, payloadBytes int) int {
	var scratch [48]byte
	h := strconv.AppendUint(scratch[:0], first, 10)
	h = strconv.AppendInt(h, int64(count), 10)
	return FrameHeaderLen + len(replyOKSP) + len(h) + 2 + 4*count + payloadBytes
}

// BatchFit is how many of entries, from the first, one batch reply at
// offset first carries within a client frame limit of maxFrame body bytes
// (length prefixes and header counted): at least one when there are any,
// as a lone entry is always sent (MaxEntrySize keeps it within the limit).
func BatchFit(first uint64, entries [][]byte, maxFrame int) int {
	payload := 0
	for _, e := range entries {
		payload += len(e)
	}
	if BatchReplySize(first, len(entries), payload)-FrameHeaderLen <= maxFrame {
		return len(entries) // the usual case: one size, not one per entry
	}
	payload = 0
	for i, e := range entries {
		payload += len(e)
		if i > 0 && BatchReplySize(first, i+1, payload)-FrameHeaderLen > maxFrame {
			return i
		}
	}
	return len(entries)
}

// BatchReplyOverhead is the most a one-entry batch reply body adds to its
// entry: "OK ", the first offset (a uint64: at most 20 digits), " 1\n" and
// the entry's 4-byte length. A READ or GROUPREAD reply carries at least one
// entry whatever its size, so an entry is only readable by a client with
// the node's frame limit if it is at most MaxEntrySize(limit) bytes.
const BatchReplyOverhead = len("OK ") + 20 + len(" 1\n") + 4

// MaxEntrySize is the largest entry a node with client frame limit
// maxFrame (DefaultMaxFrame if maxFrame <= 0) accepts from PUT or MPUT: the
// largest whose one-entry batch reply, at any offset, fits maxFrame. A PUT
// request carrying it can be shorter than that reply ("PUT t " is 6
// bytes), which is why the frame limit alone does not bound it. GET's reply
// ("OK <payload>") is shorter than any PUT of the payload.
func MaxEntrySize(maxFrame int) int {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	return maxFrame - BatchReplyOverhead
}

// AppendReplyMPut appends MPUT's reply "OK <first> <count>": the entries
// got offsets first .. first+count-1.
func AppendReplyMPut(dst []byte, first uint64, count int) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = append(dst, replyOKSP...)
	dst = strconv.AppendUint(dst, first, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(count), 10)
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start-FrameHeaderLen))
	return dst
}

// AppendReplyLeader appends LEADER's reply "OK <segment> <node_id> <addr>":
// the topic's active segment, the node leading it and that node's client
// address (host:port).
func AppendReplyLeader(dst []byte, segment, node uint64, addr string) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = append(dst, replyOKSP...)
	dst = strconv.AppendUint(dst, segment, 10)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, node, 10)
	dst = append(dst, ' ')
	dst = append(dst, addr...)
	binary.LittleEndian.PutUint32(dst[start:], uint32(len(dst)-start-FrameHeaderLen))
	return dst
}

var (
	replyOK    = []byte("OK")
	replyOKSP  = []byte("OK ")
	replyEmpty = []byte("EMPTY")
	replyErrSP = []byte("ERR ")
)

// ReplyKind classifies a reply body.
type ReplyKind uint8

const (
	// ReplyRaw is any body that is not OK, EMPTY or ERR: STATE/METRICS JSON.
	ReplyRaw ReplyKind = iota
	// ReplyOK is "OK" or "OK <payload>".
	ReplyOK
	// ReplyEmpty is "EMPTY".
	ReplyEmpty
	// ReplyErr is "ERR <message>".
	ReplyErr
)

// Reply is a classified reply body, for clients and tests. Payload aliases
// the body: after "OK " for ReplyOK, after "ERR " for ReplyErr, the whole
// body for ReplyRaw, nil for ReplyEmpty.
type Reply struct {
	Kind    ReplyKind
	Payload []byte
}

// ParseReply classifies a reply body. The caller knows what it asked for:
// a STATE reply is raw JSON even in the (impossible) case it begins "OK".
func ParseReply(body []byte) Reply {
	switch {
	case bytes.Equal(body, replyOK):
		return Reply{Kind: ReplyOK}
	case bytes.HasPrefix(body, replyOKSP):
		return Reply{Kind: ReplyOK, Payload: body[len(replyOKSP):]}
	case bytes.Equal(body, replyEmpty):
		return Reply{Kind: ReplyEmpty}
	case bytes.HasPrefix(body, replyErrSP):
		return Reply{Kind: ReplyErr, Payload: body[len(replyErrSP):]}
	}
	return Reply{Kind: ReplyRaw, Payload: body}
}

// ParseLeaderReply decodes the payload of LEADER's reply (what follows
// "OK "): "<segment> <node_id> <addr>", as AppendReplyLeader writes it.
func ParseLeaderReply(payload []byte) (segment, node uint64, addr string, err error) {
	bad := func() (uint64, uint64, string, error) {
		return 0, 0, "", fmt.Errorf("malformed LEADER reply %q", payload)
	}
	f := strings.SplitN(string(payload), " ", 3)
	if len(f) != 3 || f[2] == "" {
		return bad()
	}
	if segment, err = strconv.ParseUint(f[0], 10, 64); err != nil {
		return bad()
	}
	if node, err = strconv.ParseUint(f[1], 10, 64); err != nil {
		return bad()
	}
	return segment, node, f[2], nil
}

// ParseBatchReply decodes the payload of a batch reply (what follows
// "OK "): the first entry's offset and the entries, which alias payload.
func ParseBatchReply(payload []byte) (first uint64, entries [][]byte, err error) {
	bad := &Error{"malformed batch reply"}
	head, rest, ok := bytes.Cut(payload, []byte{'\n'})
	if !ok {
		return 0, nil, bad
	}
	firstText, countText, ok := bytes.Cut(head, space)
	if !ok {
		return 0, nil, bad
	}
	first, ok1 := parseUint(firstText)
	count, ok2 := parseUint(countText)
	if !ok1 || !ok2 || count < 1 || uint64(len(rest)) < 4*count {
		return 0, nil, bad
	}
	entries = make([][]byte, 0, count)
	for range count {
		if len(rest) < 4 {
			return 0, nil, bad
		}
		n := binary.LittleEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(n) > uint64(len(rest)) {
			return 0, nil, bad
		}
		entries = append(entries, rest[:n:n])
		rest = rest[n:]
	}
	if len(rest) != 0 {
		return 0, nil, bad
	}
	return first, entries, nil
}
