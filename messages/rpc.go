package messages

import (
	"fmt"

	"github.com/vmihailenco/msgpack/v5"
)

// Kind is the type code of a node-to-node RPC frame. Codes are part of the
// on-wire contract between nodes of different versions: never renumber one.
type Kind uint8

const (
	KindPropose   Kind = 1  // ProposeReq -> ProposeResp (a follower forwards a raft proposal)
	KindJoin      Kind = 2  // JoinReq -> JoinResp
	KindRemove    Kind = 3  // RemoveReq -> ProposeResp
	KindPing      Kind = 4  // PingReq -> PingResp (lease + liveness)
	KindPut       Kind = 5  // PutReq -> PutResp (a write forwarded to the segment leader)
	KindGet       Kind = 6  // GetReq -> GetResp (a cursor read forwarded to the cursor owner)
	KindRead      Kind = 7  // ReadReq -> ReadResp (entries of one segment from a replica)
	KindReplicate Kind = 8  // ReplicateReq -> ReplicateResp (leader -> follower)
	KindFence     Kind = 9  // FenceReq -> FenceResp (recovery: fence a replica, learn its end)
	KindSync      Kind = 10 // SyncReq -> SyncResp (recovery: copy missing entries from a source)
	KindStatus    Kind = 11 // StatusReq -> StatusResp (a node's view, for tooling and tests)
	KindFlush     Kind = 12 // FlushReq -> FlushResp (commit every cursor position now: before a graceful stop)
	KindRollover  Kind = 13 // RolloverReq -> RolloverResp (seal the active segment early, gracefully)
	KindCancelGet Kind = 14 // CancelGetReq -> CancelGetResp (the client of a forwarded GET went away)
	KindError     Kind = 0xFF
)

// Code classifies an error that crosses a node boundary so the receiver can
// act on it (retry elsewhere, rewind, give up) without parsing text.
type Code uint8

const (
	CodeOK           Code = 0
	CodeInternal     Code = 1
	CodeNotLeader    Code = 2 // this node does not lead the segment (or the raft group)
	CodeFull         Code = 3 // the active segment reached its threshold; retry after the seal
	CodeUnknownTopic Code = 4
	CodeStaleEpoch   Code = 5
	CodeGap          Code = 6
	CodeUnavailable  Code = 7 // a needed peer or quorum is not reachable now
	CodeInvalid      Code = 8 // the request itself is wrong (bad offset, bad group, ...)
	CodeOutOfRange   Code = 9
	CodeTimeout      Code = 10
	CodeDiskFull     Code = 11
	CodeDeleted      Code = 12 // the data was removed by retention
	CodeNotSent      Code = 13 // the request never reached the peer: safe to retry
	CodeCanceled     Code = 14 // the requester went away first (a GET whose client left): not served
)

// Err is the error part of every response.
type Err struct {
	Code Code   `msgpack:"c,omitempty"`
	Msg  string `msgpack:"m,omitempty"`
	// Leader hints where the request should go instead (CodeNotLeader).
	Leader uint64 `msgpack:"l,omitempty"`
	// Have is the receiver's end offset (CodeGap).
	Have uint64 `msgpack:"h,omitempty"`
}

func (e *Err) Error() string {
	if e == nil {
		return "<nil>"
	}
	return e.Msg
}

// AsError returns nil for CodeOK, else e itself.
func (e Err) AsError() error {
	if e.Code == CodeOK {
		return nil
	}
	return &e
}

// NodeAddrs is how to reach a node.
type NodeAddrs struct {
	ID         uint64 `msgpack:"id"`
	RaftAddr   string `msgpack:"raft"`
	ClientAddr string `msgpack:"client"`
	HTTPAddr   string `msgpack:"http,omitempty"`
}

type ProposeReq struct {
	Cmd []byte `msgpack:"cmd"`
}

type ProposeResp struct {
	Err   Err    `msgpack:"err"`
	Index uint64 `msgpack:"idx"`
}

type JoinReq struct {
	Node NodeAddrs `msgpack:"node"`
}

type JoinResp struct {
	Err Err `msgpack:"err"`
	// Rejoined: the node was already a member (it lost its state and came
	// back): it may be named leader of segments it led in its earlier life.
	Rejoined bool `msgpack:"rejoined,omitempty"`
}

type RemoveReq struct {
	ID uint64 `msgpack:"id"`
}

// PingReq is sent by every node to the raft leader every lease tick.
type PingReq struct {
	From         uint64 `msgpack:"from"`
	Applied      uint64 `msgpack:"applied"`
	LastLogIndex uint64 `msgpack:"last"`
}

type PingResp struct {
	Err Err `msgpack:"err"`
	// LeaderApplied is the leader's applied index when it answered; the
	// pinger's lease renews only once its own metadata reaches it.
	LeaderApplied uint64 `msgpack:"applied"`
}

type PutReq struct {
	Topic   string   `msgpack:"t"`
	Entries [][]byte `msgpack:"e"`
}

type PutResp struct {
	Err Err `msgpack:"err"`
	// First is the topic-global offset of the first accepted entry;
	// Accepted how many entries (from the front) were taken. Fewer than
	// sent means the segment filled: the rest go to the next one.
	First    uint64 `msgpack:"f"`
	Accepted int    `msgpack:"n"`
	Segment  uint64 `msgpack:"s"`
}

type GetReq struct {
	Topic  string `msgpack:"t"`
	Group  string `msgpack:"g,omitempty"`
	Max    int    `msgpack:"max"`
	WaitMs int64  `msgpack:"w,omitempty"`
	// From and ID name the GET so that the node that forwarded it can
	// cancel it (CancelGetReq) when its client goes away. ID 0: not
	// cancellable (a node of an earlier version).
	From uint64 `msgpack:"from,omitempty"`
	ID   uint64 `msgpack:"id,omitempty"`
	// BudgetMs is how long the forwarding node waits for the answer: past
	// it (less a margin) the owner hands the GET no entry, which the
	// forwarding node would no longer take to its client. 0: no budget
	// (a node of an earlier version).
	BudgetMs int64 `msgpack:"b,omitempty"`
}

type GetResp struct {
	Err     Err      `msgpack:"err"`
	First   uint64   `msgpack:"f"`
	Entries [][]byte `msgpack:"e"`
}

// CancelGetReq withdraws the GET that node From forwarded as ID: its
// client went away (or the forwarding node stopped waiting), so the cursor
// owner must not hand it an entry. The owner answers it at once
// (CodeCanceled) if it still waits; a GET already answered is not
// affected. It may travel on another connection than the GET's (the
// transport redials): if the GET's connection broke, the owner withdrew
// the GET already, as it does every GET of a connection that ends.
type CancelGetReq struct {
	From uint64 `msgpack:"from"`
	ID   uint64 `msgpack:"id"`
}

type CancelGetResp struct {
	Err Err `msgpack:"err"`
}

type ReadReq struct {
	Topic    string `msgpack:"t"`
	Segment  uint64 `msgpack:"s"`
	From     uint64 `msgpack:"from"` // segment-local
	Max      int    `msgpack:"max"`
	MaxBytes int    `msgpack:"mb"`
	WaitMs   int64  `msgpack:"w,omitempty"`
	// Raw reads a replica's durable entries past the high-water mark:
	// recovery only (copying a fenced segment's tail), never client reads.
	Raw bool `msgpack:"raw,omitempty"`
}

type ReadResp struct {
	Err     Err      `msgpack:"err"`
	Entries [][]byte `msgpack:"e"`
	// End is how far the replica may serve (its high-water mark for an
	// active segment, its count for a sealed one).
	End uint64 `msgpack:"end"`
	// Sealed: End is final (the segment is sealed, or full with all of it
	// on a quorum); a read at End goes on in the next segment.
	Sealed bool `msgpack:"sealed"`
}

type ReplicateReq struct {
	Topic    string   `msgpack:"t"`
	Segment  uint64   `msgpack:"s"`
	Epoch    uint64   `msgpack:"ep"`
	Leader   uint64   `msgpack:"l"`
	Replicas []uint64 `msgpack:"r"`
	First    uint64   `msgpack:"f"`
	Entries  [][]byte `msgpack:"e"`
	HWM      uint64   `msgpack:"hwm"`
}

type ReplicateResp struct {
	Err     Err    `msgpack:"err"`
	Durable uint64 `msgpack:"d"`
}

type FenceReq struct {
	Topic   string `msgpack:"t"`
	Segment uint64 `msgpack:"s"`
	Epoch   uint64 `msgpack:"ep"`
}

type FenceResp struct {
	Err Err    `msgpack:"err"`
	End uint64 `msgpack:"end"`
	// Bytes is the replica's payload bytes (for size-based retention).
	Bytes int64 `msgpack:"bytes,omitempty"`
}

type SyncReq struct {
	Topic   string `msgpack:"t"`
	Segment uint64 `msgpack:"s"`
	Epoch   uint64 `msgpack:"ep"`
	Source  uint64 `msgpack:"src"`
	UpTo    uint64 `msgpack:"to"`
}

type SyncResp struct {
	Err Err    `msgpack:"err"`
	End uint64 `msgpack:"end"`
}

// StatusReq asks the leader of a topic's active segment for its live view.
type StatusReq struct {
	Topic string `msgpack:"t"`
}

type StatusResp struct {
	Err Err `msgpack:"err"`
	// HWM is the topic-global high-water mark: entries below it are held by
	// a quorum and readable. Known is false when this node does not lead
	// the active segment.
	HWM   uint64 `msgpack:"hwm"`
	Known bool   `msgpack:"known"`
}

// RolloverReq asks a segment's leader to stop taking writes for it and seal
// it as soon as a quorum holds what it accepted (the controller uses it when
// one of the segment's replicas is removed).
type RolloverReq struct {
	Topic   string `msgpack:"t"`
	Segment uint64 `msgpack:"s"`
}

type RolloverResp struct {
	Err Err `msgpack:"err"`
}

// FlushReq asks the raft leader to commit every cursor position now.
type FlushReq struct{}

type FlushResp struct {
	Err Err `msgpack:"err"`
}

// Encode marshals v with msgpack. The messages of the write and read paths
// have hand-written encoders (fastcodec.go) that produce the same bytes as
// the reflection encoder.
func Encode(v any) ([]byte, error) {
	if f, ok := v.(fastEncoder); ok {
		return f.appendMsgpack(make([]byte, 0, f.msgpackSize())), nil
	}
	return msgpack.Marshal(v)
}

// Appender returns a function that appends v's encoding (the bytes Encode
// returns) to a buffer, for a message with a hand-written encoder; ok is
// false for the others. v must not change until the function has run.
func Appender(v any) (appendTo func(dst []byte) []byte, ok bool) {
	f, ok := v.(fastEncoder)
	if !ok {
		return nil, false
	}
	return f.appendMsgpack, true
}

// Decode unmarshals b into v, naming the kind on failure. b comes from
// another node: a corrupt or hostile length must never make the decoder
// allocate without bound. The hand-written decoders of the hot messages
// (fastcodec.go) check every length against the bytes that remain before
// they allocate; anything they do not recognise, and every other message,
// goes through CheckMsgpack and then the reflection decoder.
//
// Byte slices decoded by the hand-written decoders alias b: the caller
// must not modify b afterwards (every caller decodes a body it owns).
func Decode(k Kind, b []byte, v any) error {
	if f, ok := v.(fastDecoder); ok {
		if f.decodeMsgpack(b) == nil {
			return nil
		}
	}
	if err := CheckMsgpack(b); err != nil {
		return fmt.Errorf("decode rpc kind %d: %w", k, err)
	}
	if err := msgpack.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode rpc kind %d: %w", k, err)
	}
	return nil
}
