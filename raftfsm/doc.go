// Package raftfsm is the cluster metadata state machine that hashicorp/raft
// replicates: nodes, topics, segments (leader, replicas, epoch, seal state)
// and committed cursor positions. It is pure: no I/O, no clock, no goroutines.
//
// # Commands
//
// Every raft log entry this package applies is one type byte followed by a
// msgpack body ([Encode], [Decode]). The type byte's low seven bits are a
// [CmdType]; the high bit ([FlagIgnorable]) tells a replica that does not know
// the type that it may skip the entry instead of crashing. A known type with
// an undecodable or invalid body yields a deterministic [ErrInvalid] result
// and changes nothing but [State.LastApplied].
//
// # Immutability
//
// [FSM.State] returns an immutable snapshot. [FSM.Apply] never writes to a
// State (or any map, slice, node, topic or segment reachable from it) once it
// has been published; it copies what it changes and swaps the pointer. Readers
// on other goroutines may therefore hold and walk a *State for as long as they
// like without locks, and must never modify it themselves (use [State.Clone]
// for a private, mutable copy).
//
// # Determinism
//
// Apply's effect depends only on the previous State, the log index and the
// entry bytes: no clock (times arrive inside commands), no randomness, no map
// iteration order (node candidates are sorted; snapshots encode sorted
// slices). Two replicas fed the same log end with byte-equal [FSM.Snapshot]s.
//
// docs/metadata.md describes the model, every command's guard and effect, and
// how STATE (COMPAT.md) is derived from it.
package raftfsm
