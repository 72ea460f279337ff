// Package actors holds the node's actors (protoactor-go): the node root, the
// raft host, the WAL owner, one actor per topic and per segment held here, one
// per remote peer, and the client listener with one actor per connection.
// Actors are thin adapters: they feed messages to the pure decision code
// (raftfsm, and the lease/quorum/cursor logic) and perform its side effects.
package actors
