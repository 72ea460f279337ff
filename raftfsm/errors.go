package raftfsm

import "errors"

// Errors returned in [Result.Err]. They are deterministic: every replica
// applying the same entry returns the same sentinel (details may be wrapped
// with %w; compare with errors.Is). None of them changes the state beyond
// advancing [State.LastApplied].
var (
	// ErrInvalid: the entry's body could not be decoded, or a field is out of
	// range (empty topic name, RF < 1, negative retention, node id 0, ...).
	// It means the proposer has a bug; retrying the same command will fail
	// the same way.
	ErrInvalid = errors.New("raftfsm: invalid command")

	// ErrUnknownTopic: the command names a topic that does not exist.
	ErrUnknownTopic = errors.New("raftfsm: unknown topic")

	// ErrUnknownNode: the command names a node that is not in the cluster.
	ErrUnknownNode = errors.New("raftfsm: unknown node")

	// ErrUnknownSegment: the command names a segment the topic does not hold
	// (never created, or already deleted by retention).
	ErrUnknownSegment = errors.New("raftfsm: unknown segment")

	// ErrStale: the command's guard (active segment, state, epoch) no longer
	// holds: another proposal got there first, or the proposer was fenced.
	// The proposer should re-read the state and drop or re-derive its command.
	ErrStale = errors.New("raftfsm: stale command")

	// ErrNoNodes: a segment has to be placed but the cluster has no nodes.
	ErrNoNodes = errors.New("raftfsm: no nodes to place a segment on")

	// ErrUnknownCommand is never returned: it is the error Apply panics with
	// when an entry's type byte is unknown and not marked ignorable, because
	// a replica that skips a command others apply diverges silently.
	ErrUnknownCommand = errors.New("raftfsm: unknown command type")
)
