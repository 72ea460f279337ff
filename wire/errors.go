package wire

import "strconv"

// Error is an error a client sees: Msg is the exact text that follows
// "ERR " in the reply frame. Every message clients may match on is built
// here, in one place (see docs/protocol.md). Errors compare equal under
// errors.Is when their messages are equal.
type Error struct {
	Msg string
}

func (e *Error) Error() string { return e.Msg }

// Is reports whether target is a *Error with the same message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Msg == e.Msg
}

// Parser errors of the reference protocol (COMPAT.md: exact texts).
var (
	ErrUnknownCommand        = &Error{"unknown command"}
	ErrRegisterRequiresTopic = &Error{"REGISTER requires a topic"}
	ErrPutRequiresTopic      = &Error{"PUT requires a topic"}
	ErrPutRequiresPayload    = &Error{"PUT requires a payload"}
	ErrGetRequiresTopic      = &Error{"GET requires a topic"}
	ErrStateRequiresTopic    = &Error{"STATE requires a topic"}
)

// ErrRegisterBadTopic refuses a new topic's name that CheckTopicName
// refuses.
var ErrRegisterBadTopic = &Error{CmdRegister + " topic must be 1 to " + strconv.Itoa(MaxTopicName) +
	" bytes of UTF-8 without white space or control characters"}

// UnknownTopic is the reply to a request naming a topic that was never
// registered: "unknown topic <t>".
func UnknownTopic(topic string) *Error { return &Error{UnknownTopicPrefix + topic} }

// UnknownTopicPrefix starts the reply to a request naming a topic the
// cluster does not know.
const UnknownTopicPrefix = "unknown topic "

// UnknownNode is the reply to REMOVENODE of a node that is not a member
// (never was, or removed already): "unknown node <id>".
func UnknownNode(id uint64) *Error { return &Error{"unknown node " + strconv.FormatUint(id, 10)} }

// NotLeaderPrefix starts the reply to a write that reached a node without
// the segment's lease. Clients test this prefix only.
const NotLeaderPrefix = "NotLeaderForPartition: "

// NotLeader is "NotLeaderForPartition: <topic>/<segment>".
func NotLeader(topic string, segment uint64) *Error {
	return &Error{NotLeaderPrefix + topic + "/" + strconv.FormatUint(segment, 10)}
}

// Our additive commands' argument errors are built by these helpers so the
// wording is uniform: "<CMD> requires <what>", "<CMD> <arg> must be ...",
// "<CMD> has too many arguments".

func errRequires(cmd, what string) *Error { return &Error{cmd + " requires " + what} }

func errTooMany(cmd string) *Error { return &Error{cmd + " has too many arguments"} }

func errRange(cmd, arg string, lo, hi uint64) *Error {
	return &Error{cmd + " " + arg + " must be an integer from " +
		strconv.FormatUint(lo, 10) + " to " + strconv.FormatUint(hi, 10)}
}

func errNonNegative(cmd, arg string) *Error {
	return &Error{cmd + " " + arg + " must be a non-negative integer"}
}

// EntryTooLargePrefix starts the reply to a PUT or MPUT carrying an entry
// longer than the node accepts (MaxEntrySize of its frame limit). Nothing
// of the request was written.
const EntryTooLargePrefix = "entry too large: "

// EntryTooLarge is the reply to a PUT whose payload is size bytes, over the
// node's limit: "entry too large: <size> bytes (at most <limit>)".
func EntryTooLarge(size, limit int) *Error {
	return &Error{EntryTooLargePrefix + strconv.Itoa(size) + " bytes (at most " + strconv.Itoa(limit) + ")"}
}

// MPutEntryTooLarge is the reply to an MPUT whose entry i (counting from 1)
// of count is size bytes, over the node's limit: "entry too large: entry
// <i> of <count> has <size> bytes (at most <limit>)".
func MPutEntryTooLarge(i, count, size, limit int) *Error {
	return &Error{EntryTooLargePrefix + "entry " + strconv.Itoa(i) + " of " + strconv.Itoa(count) + " has " +
		strconv.Itoa(size) + " bytes (at most " + strconv.Itoa(limit) + ")"}
}

// CheckEntrySizes returns the error for the first entry of a PUT or MPUT
// request longer than limit bytes (MaxEntrySize of the node's frame
// limit), or nil. Other requests carry no entries: nil.
func CheckEntrySizes(req *Request, limit int) *Error {
	switch req.Cmd {
	case CmdPut:
		if len(req.Payload) > limit {
			return EntryTooLarge(len(req.Payload), limit)
		}
	case CmdMPut:
		for i, e := range req.Entries {
			if len(e) > limit {
				return MPutEntryTooLarge(i+1, len(req.Entries), len(e), limit)
			}
		}
	}
	return nil
}
