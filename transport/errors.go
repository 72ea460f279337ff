package transport

import "errors"

var (
	// ErrPeerUnavailable is returned by calls that could not reach the
	// peer: its connection failed (in-flight calls fail with it, wrapped
	// with the cause) or the client is backing off after failures (calls
	// fail fast instead of waiting). The call may or may not have run on
	// the peer.
	ErrPeerUnavailable = errors.New("transport: peer unavailable")

	// ErrNotSent accompanies ErrPeerUnavailable when the request certainly
	// never left this process (the peer could not be dialed, or the client
	// was backing off): the caller may retry it without risk of running it
	// twice. Without it, a failed call may or may not have run.
	ErrNotSent = errors.New("transport: request not sent")

	// ErrClosed is returned by calls on a closed Client, and fails the
	// calls still in flight when it is closed.
	ErrClosed = errors.New("transport: closed")

	// ErrTooLarge is returned, without sending anything, by calls whose
	// body would exceed the frame limit.
	ErrTooLarge = errors.New("transport: request too large")
)

// RemoteError is an error reply: the peer's handler returned an error (or
// panicked, or had no handler yet). Msg is its text.
type RemoteError struct {
	Msg string
}

func (e *RemoteError) Error() string { return "transport: remote error: " + e.Msg }

// Reserved kinds. Handlers must not use 0xF0..0xFF for their own messages.
const (
	// KindError marks an error reply; its body is the message.
	KindError uint8 = 0xFF
)

// Messages the server itself puts in error replies.
const (
	// MsgNotReady answers requests that arrive before SetRPCHandler.
	MsgNotReady = "not ready"
	// msgPanicPrefix starts the reply to a request whose handler panicked.
	msgPanicPrefix = "panic: "
)
