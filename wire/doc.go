// Package wire is the byte-level protocol: the client frame codec (4-byte
// little-endian length + body), the request parser and reply encoder of the
// Distributed Walrus text protocol, and the node-to-node frame codec.
//
// The client protocol is specified in COMPAT.md (what the reference does and
// clients rely on) and docs/protocol.md (what we implement, including our
// additive commands). Everything here is pure: no goroutines, no clocks, no
// global state besides the read-only command table. Functions are safe for
// concurrent use; a FrameReader or PeerReader belongs to one goroutine.
//
// Buffers: Append* functions append to dst and return the extended slice, so
// a connection can reuse one buffer for all its replies without allocating.
// Readers return slices that alias their internal buffer; each is valid only
// until the next read on the same reader. Copy what you keep.
package wire
