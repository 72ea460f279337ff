// Package wire is the byte-level protocol: the client frame codec (4-byte
// little-endian length + body), the request parser and reply encoder of the
// Distributed Walrus text protocol, and the node-to-node frame codec.
package wire
