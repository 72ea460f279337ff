package client

import (
	"context"
	"errors"
	"strings"

	"github.com/walrus-go/walrus/wire"
)

// ServerError is an "ERR <msg>" reply. Msg is the server's text after
// "ERR ", byte for byte, and Error returns it unchanged, so
// err.Error() == "unknown topic logs" for the reply "ERR unknown topic logs".
type ServerError struct {
	Msg string
}

func (e *ServerError) Error() string { return e.Msg }

// Sentinel errors. Transport failures wrap them: test with errors.Is.
var (
	// ErrClosed: the client was closed (before or during the call).
	ErrClosed = errors.New("walrus: client closed")
	// ErrOutcomeUnknown: the request was written but no reply came (the
	// connection broke, the attempt timed out or the caller's context
	// ended). It may or may not have taken effect.
	ErrOutcomeUnknown = errors.New("outcome unknown")
	// ErrTimeout: no reply within the request timeout (WithRequestTimeout).
	ErrTimeout = errors.New("walrus: no reply within the request timeout")
	// ErrTooLarge: the request exceeds the frame limit (WithMaxFrame), or
	// an entry exceeds wire.MaxEntrySize of it; it was not sent.
	ErrTooLarge = errors.New("walrus: request larger than the frame limit")
	// ErrNoNodes: Dial was given no address.
	ErrNoNodes = errors.New("walrus: no node addresses")
)

// Server texts clients match on (COMPAT.md, docs/protocol.md).
const (
	unavailablePrefix  = "unavailable:"
	outcomeUnknownText = "outcome unknown"
)

// IsNotLeader reports whether err is a NotLeaderForPartition reply: a
// write reached a node without the segment's lease. The client retries
// these itself; callers see one only when retries ran out.
func IsNotLeader(err error) bool {
	var se *ServerError
	return errors.As(err, &se) && strings.HasPrefix(se.Msg, wire.NotLeaderPrefix)
}

// IsUnknownTopic reports whether err is an "unknown topic <t>" reply.
func IsUnknownTopic(err error) bool {
	var se *ServerError
	return errors.As(err, &se) && strings.HasPrefix(se.Msg, wire.UnknownTopicPrefix)
}

// IsOutcomeUnknown reports whether err leaves open if the request took
// effect: the request was written and then the connection broke, the
// attempt timed out or the context ended (ErrOutcomeUnknown), or the
// server itself answered "... outcome unknown". For a PUT or MPUT it means
// the entries may or may not have been appended.
func IsOutcomeUnknown(err error) bool {
	if errors.Is(err, ErrOutcomeUnknown) {
		return true
	}
	var se *ServerError
	return errors.As(err, &se) && strings.Contains(se.Msg, outcomeUnknownText)
}

// transportError is a failed attempt to get a reply from a node.
type transportError struct {
	addr string
	sent bool // the request was (perhaps partly) written
	err  error
}

func (e *transportError) Error() string {
	if e.sent {
		return "walrus: " + e.addr + ": request sent, no reply: " + e.err.Error() + " (outcome unknown)"
	}
	return "walrus: " + e.addr + ": request not sent: " + e.err.Error()
}

func (e *transportError) Unwrap() []error {
	if e.sent {
		return []error{e.err, ErrOutcomeUnknown}
	}
	return []error{e.err}
}

// opKind says what repeating a request may do.
type opKind uint8

const (
	// opIdempotent requests can be repeated freely: REGISTER, READ,
	// GROUPREAD, COMMIT (sets an absolute position), LEADER, STATE,
	// METRICS.
	opIdempotent opKind = iota
	// opWrite requests append: PUT, MPUT. Repeating one whose outcome is
	// unknown may duplicate entries.
	opWrite
	// opDestructive requests consume: GET, GETW, and raw requests of an
	// unknown kind. Never repeated once written.
	opDestructive
)

// retryable decides whether a failed attempt may be tried again. It is the
// whole retry rule of the package (see the package documentation).
func retryable(kind opKind, err error, retryUnknownWrites bool) bool {
	if errors.Is(err, ErrClosed) || errors.Is(err, ErrTooLarge) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var se *ServerError
	if errors.As(err, &se) {
		if kind == opDestructive {
			return false // it ran: a GET may have consumed an entry
		}
		if strings.HasPrefix(se.Msg, wire.NotLeaderPrefix) {
			return true // rejected before any offset was assigned
		}
		unknown := strings.Contains(se.Msg, outcomeUnknownText)
		if strings.HasPrefix(se.Msg, unavailablePrefix) && (!unknown || kind == opIdempotent) {
			return true
		}
		return kind == opWrite && unknown && retryUnknownWrites
	}
	var te *transportError
	if errors.As(err, &te) {
		if !te.sent {
			return true
		}
		switch kind {
		case opIdempotent:
			return true
		case opWrite:
			return retryUnknownWrites
		}
	}
	return false
}
