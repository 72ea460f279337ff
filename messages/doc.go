// Package messages defines every message that crosses an actor or a node
// boundary. Types that travel between nodes carry msgpack tags and a stable
// type code; never renumber a code that has shipped.
package messages
