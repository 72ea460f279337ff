// Package transport is the node's internal port: one TCP listener per node
// (--raft-port) that carries both hashicorp/raft's NetworkTransport and our
// node-to-node RPC.
//
// Every connection opens with one byte that says what it carries:
// 'R' (RaftByte) for a raft stream, 'W' (RPCByte) for our RPC. A Mux
// accepts connections, reads that byte and hands the connection to the raft
// stream layer (Mux.RaftStreamLayer) or to the RPC server (Mux.SetRPCHandler);
// anything else is closed.
//
// RPC frames are wire peer frames: [u32 LE length][u8 kind][u64 LE id][body].
// A Client pipelines any number of calls on one connection; the server runs
// them concurrently and replies as each completes, so replies can come back
// in any order and are matched by id. Kinds 0xF0..0xFF are reserved for the
// transport itself (KindError). See docs/protocol.md for the full semantics:
// deadlines, reconnection, errors.
//
// Who closes what: the Mux owns every connection it accepted (Close closes
// them all, including those handed to raft); the raft stream layer owns the
// connections it dialed; a Client owns its one connection.
package transport
