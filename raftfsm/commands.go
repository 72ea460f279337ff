package raftfsm

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/walrus-go/walrus/messages"
)

// CmdType is the type code of a command, the low seven bits of an entry's
// first byte. Codes are part of the raft log format: never renumber or reuse
// one that has shipped.
type CmdType uint8

// Command type codes.
const (
	CmdUpsertNode     CmdType = 1
	CmdRemoveNode     CmdType = 2
	CmdSetLiveness    CmdType = 3
	CmdCreateTopic    CmdType = 4
	CmdSealSegment    CmdType = 5
	CmdFenceSegment   CmdType = 6
	CmdCommitCursor   CmdType = 7
	CmdDeleteGroup    CmdType = 8
	CmdSetReplicas    CmdType = 9
	CmdDeleteSegments CmdType = 10
	CmdSetRetention   CmdType = 11
)

// FlagIgnorable, set in an entry's type byte, lets a replica that does not
// know the type skip the entry (LastApplied still advances) instead of
// panicking. Set it only on commands whose absence on older replicas cannot
// make them diverge in anything they act on. A replica that knows the type
// applies it whether or not the flag is set.
const FlagIgnorable byte = 0x80

func (c CmdType) String() string {
	if int(c) < len(handlers) && handlers[c].name != "" {
		return handlers[c].name
	}
	return "CmdType(" + strconv.Itoa(int(c)) + ")"
}

// Command is one metadata change. Its wire form is Type() as one byte
// followed by the msgpack encoding of the struct ([Encode]).
type Command interface {
	Type() CmdType
}

// UpsertNode adds a node or replaces everything known about it.
type UpsertNode struct {
	Node NodeInfo `msgpack:"node"`
}

// RemoveNode deletes a node. Segments keep naming it as leader or replica
// (history); re-replication is done with SetReplicas.
type RemoveNode struct {
	ID NodeID `msgpack:"id"`
}

// SetLiveness records the raft leader's view of a node's liveness.
type SetLiveness struct {
	ID   NodeID `msgpack:"id"`
	Live bool   `msgpack:"live"`
}

// CreateTopic creates a topic and opens its segment 1 (idempotent).
type CreateTopic struct {
	Name      string    `msgpack:"name"`
	RF        int       `msgpack:"rf"`
	Retention Retention `msgpack:"retention"`
}

// SealSegment seals the active segment at its current epoch with its final
// count, and opens the next one (rollover, or the end of recovery).
type SealSegment struct {
	Topic   string `msgpack:"topic"`
	Segment uint64 `msgpack:"segment"`
	Epoch   uint64 `msgpack:"epoch"`
	Count   uint64 `msgpack:"count"`
	AtMs    int64  `msgpack:"at_ms"` // proposer's wall clock, Unix ms
	// Bytes is the segment's payload size as the proposer saw it (for
	// size-based retention; approximate after a recovery).
	Bytes int64 `msgpack:"bytes,omitempty"`
}

// FenceSegment bumps the active segment's epoch and stops all writes to it,
// so that it can be recovered and sealed.
type FenceSegment struct {
	Topic   string `msgpack:"topic"`
	Segment uint64 `msgpack:"segment"`
	Epoch   uint64 `msgpack:"epoch"`
}

// CommitCursor commits a read position: the shared cursor (Group "") only
// moves forward; a named group is set to Offset (seeking back is allowed).
type CommitCursor struct {
	Topic  string `msgpack:"topic"`
	Group  string `msgpack:"group"`
	Offset uint64 `msgpack:"offset"`
}

// DeleteGroup forgets a named consumer group.
type DeleteGroup struct {
	Topic string `msgpack:"topic"`
	Group string `msgpack:"group"`
}

// SetReplicas replaces a segment's replica set.
type SetReplicas struct {
	Topic    string   `msgpack:"topic"`
	Segment  uint64   `msgpack:"segment"`
	Replicas []NodeID `msgpack:"replicas"`
}

// DeleteSegments drops the sealed segments with ID < Below (retention).
type DeleteSegments struct {
	Topic string `msgpack:"topic"`
	Below uint64 `msgpack:"below"`
}

// SetRetention replaces a topic's retention policy.
type SetRetention struct {
	Topic     string    `msgpack:"topic"`
	Retention Retention `msgpack:"retention"`
}

// Type implements Command.
func (UpsertNode) Type() CmdType { return CmdUpsertNode }

// Type implements Command.
func (RemoveNode) Type() CmdType { return CmdRemoveNode }

// Type implements Command.
func (SetLiveness) Type() CmdType { return CmdSetLiveness }

// Type implements Command.
func (CreateTopic) Type() CmdType { return CmdCreateTopic }

// Type implements Command.
func (SealSegment) Type() CmdType { return CmdSealSegment }

// Type implements Command.
func (FenceSegment) Type() CmdType { return CmdFenceSegment }

// Type implements Command.
func (CommitCursor) Type() CmdType { return CmdCommitCursor }

// Type implements Command.
func (DeleteGroup) Type() CmdType { return CmdDeleteGroup }

// Type implements Command.
func (SetReplicas) Type() CmdType { return CmdSetReplicas }

// Type implements Command.
func (DeleteSegments) Type() CmdType { return CmdDeleteSegments }

// Type implements Command.
func (SetRetention) Type() CmdType { return CmdSetRetention }

// handler is one row of the dispatch table: how to decode a command's body
// and how to apply it.
type handler struct {
	name   string
	decode func(body []byte) (Command, error)
	apply  func(x *txn, cmd Command) Result
}

// handlers is the dispatch table, indexed by type code. It is filled once,
// here, and never changes.
var handlers = [128]handler{
	CmdUpsertNode:     row("UpsertNode", applyUpsertNode),
	CmdRemoveNode:     row("RemoveNode", applyRemoveNode),
	CmdSetLiveness:    row("SetLiveness", applySetLiveness),
	CmdCreateTopic:    row("CreateTopic", applyCreateTopic),
	CmdSealSegment:    row("SealSegment", applySealSegment),
	CmdFenceSegment:   row("FenceSegment", applyFenceSegment),
	CmdCommitCursor:   row("CommitCursor", applyCommitCursor),
	CmdDeleteGroup:    row("DeleteGroup", applyDeleteGroup),
	CmdSetReplicas:    row("SetReplicas", applySetReplicas),
	CmdDeleteSegments: row("DeleteSegments", applyDeleteSegments),
	CmdSetRetention:   row("SetRetention", applySetRetention),
}

func row[C Command](name string, apply func(*txn, C) Result) handler {
	return handler{
		name: name,
		decode: func(body []byte) (Command, error) {
			var c C
			if err := decodeBody(body, &c); err != nil {
				return nil, err
			}
			return c, nil
		},
		apply: func(x *txn, cmd Command) Result { return apply(x, cmd.(C)) },
	}
}

func lookup(t CmdType) *handler {
	if int(t) >= len(handlers) || handlers[t].decode == nil {
		return nil
	}
	return &handlers[t]
}

// decodeBody decodes exactly one msgpack value filling the whole body.
// The body is first checked by messages.CheckMsgpack (see messages/msgpackguard.go: the msgpack
// version we use can be made to allocate without bound). Unknown fields are
// skipped (forward compatibility); trailing bytes are an error.
func decodeBody(body []byte, v any) error {
	if err := messages.CheckMsgpack(body); err != nil {
		return err
	}
	return msgpack.NewDecoder(bytes.NewReader(body)).Decode(v)
}

// Encode returns the raft log entry for cmd: its type byte and msgpack body.
func Encode(cmd Command) ([]byte, error) {
	if cmd == nil {
		return nil, errors.New("raftfsm: encode nil command")
	}
	t := cmd.Type()
	if lookup(t) == nil {
		return nil, fmt.Errorf("raftfsm: encode: %w %d", ErrUnknownCommand, t)
	}
	body, err := msgpack.Marshal(cmd)
	if err != nil {
		return nil, fmt.Errorf("raftfsm: encode %v: %w", t, err)
	}
	return append([]byte{byte(t)}, body...), nil
}

// Decode parses a raft log entry into its command (for tools and logs; Apply
// does the same internally). It returns ErrUnknownCommand for a type byte this
// version does not know (ignorable or not) and ErrInvalid for an empty entry
// or an undecodable body.
func Decode(data []byte) (Command, error) {
	if len(data) == 0 {
		return nil, fmt.Errorf("%w: empty entry", ErrInvalid)
	}
	t := CmdType(data[0] &^ FlagIgnorable)
	h := lookup(t)
	if h == nil {
		return nil, fmt.Errorf("%w %#x", ErrUnknownCommand, data[0])
	}
	cmd, err := h.decode(data[1:])
	if err != nil {
		return nil, fmt.Errorf("%w: %s body: %v", ErrInvalid, h.name, err)
	}
	return cmd, nil
}
