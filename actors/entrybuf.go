package actors

// entryBuf holds a segment leader's entries [base, base+len) in memory for
// replication, so that sending a follower what it lacks reads no disk.
//
// Slices it hands out (get: the batch the WAL writes later on its own
// goroutine, the entries a replication request encodes) share its array,
// so it never writes below its length: trim drops a prefix by reslicing,
// and append moves the live entries to a new array once the old one is
// full. A new array has room for as many entries again as it holds (at
// least minBufSlots), so the buffer is copied once per that many appends.
// (Copying at every trim made a new array per replication round: the
// leader's write path allocated more for the buffer's slice headers than
// for the entries it forwards; BENCHMARKS.md, "Allocations on the write
// path".) A trimmed prefix stays referenced by the old array until that
// copy, or until they add up to maxDeadBytes, when trim copies the live
// entries to a new array itself: an idle leader keeps no more than that
// of payload it no longer needs.
type entryBuf struct {
	ents  [][]byte
	base  uint64 // offset of ents[0]
	bytes int    // payload bytes in ents
	dead  int    // payload bytes trimmed off but still in the array
}

const (
	minBufSlots  = 1024
	maxDeadBytes = 4 << 20
)

// reset empties the buffer and starts it at offset base.
func (b *entryBuf) reset(base uint64) { *b = entryBuf{base: base} }

// end is the offset after the last entry held.
func (b *entryBuf) end() uint64 { return b.base + uint64(len(b.ents)) }

// append adds ents at end().
func (b *entryBuf) append(ents [][]byte) {
	if n := len(b.ents) + len(ents); n > cap(b.ents) {
		b.moveTo(n)
	}
	for _, e := range ents {
		b.ents = append(b.ents, e)
		b.bytes += len(e)
	}
}

// get returns entries [from, to), which the caller must not modify;
// base <= from <= to <= end().
func (b *entryBuf) get(from, to uint64) [][]byte {
	return b.ents[from-b.base : to-b.base : to-b.base]
}

// at returns the entry at offset i; base <= i < end().
func (b *entryBuf) at(i uint64) []byte { return b.ents[i-b.base] }

// trim drops the entries below offset low (none if low <= base).
func (b *entryBuf) trim(low uint64) {
	if low <= b.base {
		return
	}
	n := min(low-b.base, uint64(len(b.ents)))
	for _, e := range b.ents[:n] {
		b.bytes -= len(e)
		b.dead += len(e)
	}
	b.ents = b.ents[n:]
	b.base += n
	if b.dead > maxDeadBytes {
		b.moveTo(len(b.ents))
	}
}

// moveTo copies the live entries to a new array with room for twice n
// (at least minBufSlots), leaving the old one to the slices handed out.
func (b *entryBuf) moveTo(n int) {
	moved := make([][]byte, len(b.ents), max(2*n, minBufSlots))
	copy(moved, b.ents)
	b.ents, b.dead = moved, 0
}
