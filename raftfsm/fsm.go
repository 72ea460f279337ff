package raftfsm

import (
	"fmt"
	"maps"
	"sync/atomic"
)

// FSM is the replicated metadata state machine.
//
// Concurrency: Apply, Snapshot and Restore must be called from one goroutine
// at a time (raft's FSM goroutine). State may be called from any goroutine at
// any time: it returns the current immutable *State, which later Applies never
// modify (they build a new State, copying only the maps, node and topic they
// change, and swap the pointer atomically).
//
// Determinism: Apply's result and the next state depend only on the current
// state, the index and the entry bytes. Every replica that applies the same
// entries in the same order ends in the same state (Snapshot bytes equal).
type FSM struct {
	state atomic.Pointer[State]
}

// New returns an FSM holding an empty state.
func New() *FSM {
	f := &FSM{}
	f.state.Store(NewState())
	return f
}

// State returns the current state. Treat it as read-only; it stays valid and
// unchanged after later Applies.
func (f *FSM) State() *State { return f.state.Load() }

// Result is the outcome of applying one entry: a deterministic sentinel error
// (see errors.go) or a command-specific value. Values point into the new,
// immutable State: read them, never write them.
type Result struct {
	Err   error
	Value any
}

// Apply applies the raft log entry at index. Every entry advances
// State.LastApplied to index, including entries that fail or are skipped.
//
// An entry whose type byte is unknown panics with an error wrapping
// ErrUnknownCommand, unless FlagIgnorable is set, in which case it is skipped:
// a replica that silently skips a command the others apply would diverge.
// A known type with an empty or undecodable body, or invalid fields, returns
// ErrInvalid. On any error the state is unchanged (except LastApplied).
func (f *FSM) Apply(index uint64, data []byte) Result {
	cur := f.state.Load()
	if len(data) == 0 {
		f.advance(cur, index)
		return Result{Err: fmt.Errorf("%w: empty entry", ErrInvalid)}
	}
	h := lookup(CmdType(data[0] &^ FlagIgnorable))
	if h == nil {
		if data[0]&FlagIgnorable != 0 {
			f.advance(cur, index)
			return Result{}
		}
		panic(fmt.Errorf("%w %#x at index %d", ErrUnknownCommand, data[0], index))
	}
	cmd, err := h.decode(data[1:])
	if err != nil {
		f.advance(cur, index)
		return Result{Err: fmt.Errorf("%w: %s body: %v", ErrInvalid, h.name, err)}
	}
	x := newTxn(cur)
	res := h.apply(x, cmd)
	if res.Err != nil {
		// Whatever the handler copied is dropped: errors change nothing.
		f.advance(cur, index)
		return Result{Err: res.Err}
	}
	x.next.LastApplied = index
	f.state.Store(x.next)
	return res
}

// advance publishes cur with only LastApplied changed.
func (f *FSM) advance(cur *State, index uint64) {
	next := *cur
	next.LastApplied = index
	f.state.Store(&next)
}

// txn builds the next state copy-on-write. next starts as a shallow copy of
// the published state (sharing its maps); the first write to a map copies the
// map, and a topic is copied (shallowly: see Topic.shallow) before it is
// changed. Handlers must never write through a pointer they did not get from
// txn's writable accessors, and must replace a shared slice or map rather
// than write into it.
type txn struct {
	next        *State
	nodesOwned  bool
	topicsOwned bool
	owned       map[string]bool // topics already copied in this txn
}

func newTxn(cur *State) *txn {
	next := *cur
	return &txn{next: &next}
}

// nodes returns the next state's node map, copied on first use.
func (x *txn) nodes() map[NodeID]*NodeInfo {
	if !x.nodesOwned {
		x.next.Nodes = maps.Clone(x.next.Nodes)
		if x.next.Nodes == nil {
			x.next.Nodes = map[NodeID]*NodeInfo{}
		}
		x.nodesOwned = true
	}
	return x.next.Nodes
}

// topics returns the next state's topic map, copied on first use.
func (x *txn) topics() map[string]*Topic {
	if !x.topicsOwned {
		x.next.Topics = maps.Clone(x.next.Topics)
		if x.next.Topics == nil {
			x.next.Topics = map[string]*Topic{}
		}
		x.topicsOwned = true
	}
	return x.next.Topics
}

// topic returns the topic for reading, or nil.
func (x *txn) topic(name string) *Topic { return x.next.Topics[name] }

// writableTopic returns a private shallow copy of an existing topic, stored
// in the next state. Its Segments slice and Groups map are still shared:
// replace them (setSegments, setGroups) instead of writing into them.
func (x *txn) writableTopic(name string) *Topic {
	t := x.next.Topics[name]
	if x.owned[name] {
		return t
	}
	c := t.shallow()
	x.topics()[name] = c
	if x.owned == nil {
		x.owned = map[string]bool{}
	}
	x.owned[name] = true
	return c
}
