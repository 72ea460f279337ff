package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"sync/atomic"
)

// Sparse index density: a new index point starts when the previous one lies
// at least indexEveryBytes or indexEveryEntries behind. Every record between
// two points except the last starts less than indexEveryBytes after the first
// point, so locating an entry reads at most indexEveryBytes of headers.
const (
	indexEveryBytes   = 32 << 10
	indexEveryEntries = 256
)

// indexPoint says where entry off starts in the file.
type indexPoint struct {
	off uint64
	pos int64
}

// segment is one segment file and what the engine knows about it.
//
// Fields are grouped by who may touch them (see the lock discipline in
// doc.go).
type segment struct {
	key SegmentKey

	// Guarded by WAL.mu.
	nextOff uint64 // end offset counting entries queued but not yet taken by the committer
	queued  uint64 // entries in requests that are in WAL.queue

	// Read without locks by anyone; written by the committer. durableSize is
	// stored before durable grows and after it shrinks, so a reader that
	// loads durable first and durableSize second never reads past the end.
	durable     atomic.Uint64 // entries visible to readers (durable under the policy)
	durableSize atomic.Int64  // file size covering exactly those entries
	sealed      atomic.Bool

	// rw: readers hold it shared while they use f (pread); the committer takes
	// it exclusively to shrink, rename or close the file. Appends need no
	// lock because they only add bytes past durableSize.
	rw   sync.RWMutex
	f    File   // guarded by rw (closed under it)
	path string // guarded by rw (renamed under it)
	gone error  // guarded by rw: non-nil once the file is closed (ErrClosed) or deleted (ErrUnknownSegment)

	// idxMu guards idx. Readers take it shared (inside rw); the committer
	// takes it exclusively to add or cut points. Leaf lock.
	idxMu sync.RWMutex
	idx   []indexPoint

	// Committer-owned: only the committer goroutine reads or writes these.
	count        uint64 // entries written to the file
	size         int64  // bytes written to the file (the end of its records)
	alloc        int64  // the file's length: size, or more when zeros were written ahead (Options.Prealloc)
	synced       int64  // the end of the records the last completed sync covered
	dropped      int64  // Options.DropBehind: the page cache below this offset was dropped
	wbFrom       int64  // SyncInterval, SyncNever: where the next StartWriteback begins (see startWriteback)
	sinceEntries int    // entries since the last index point
	sinceBytes   int64  // bytes since the last index point
	dirty        bool   // written but not synced
	deleted      bool
	taken        uint64 // queued entries taken by the committer in the current round
	inFix        bool   // already in the committer's fix list this round
	inCycle      bool   // in WAL.cycle
	inDirty      bool   // in WAL.dirty
	// Per-round scratch.
	inBatch   bool
	bEntries  uint64
	bBytes    int
	bStart    int
	bCur      int
	bErr      error
	bIdxLen   int
	bSinceEnt int
	bSinceByt int64
}

// noteRecord records that entry off starts at pos and is n bytes long,
// adding an index point when due. Committer (or Open) only.
func (s *segment) noteRecord(off uint64, pos int64, n int) {
	if len(s.idx) == 0 || s.sinceEntries >= indexEveryEntries || s.sinceBytes >= indexEveryBytes {
		s.idxMu.Lock()
		s.idx = append(s.idx, indexPoint{off: off, pos: pos})
		s.idxMu.Unlock()
		s.sinceEntries, s.sinceBytes = 0, 0
	}
	s.sinceEntries++
	s.sinceBytes += int64(n)
}

// point returns the last index point at or before entry off. Any goroutine.
func (s *segment) point(off uint64) indexPoint {
	s.idxMu.RLock()
	defer s.idxMu.RUnlock()
	i := sort.Search(len(s.idx), func(i int) bool { return s.idx[i].off > off })
	if i == 0 {
		// Only an empty segment has no points; its first record follows the header.
		return indexPoint{off: 0, pos: int64(headerLen(s.key.Topic))}
	}
	return s.idx[i-1]
}

// cutIndex drops the index points of entries >= count and recomputes the
// since-counters for a file whose end is entry count at byte end. Committer only.
func (s *segment) cutIndex(count uint64, end int64) {
	s.idxMu.Lock()
	i := sort.Search(len(s.idx), func(i int) bool { return s.idx[i].off >= count })
	s.idx = s.idx[:i]
	s.idxMu.Unlock()
	if i == 0 {
		s.sinceEntries, s.sinceBytes = 0, 0
		return
	}
	last := s.idx[i-1]
	s.sinceEntries = int(count - last.off)
	s.sinceBytes = end - last.pos
}

var scratchPool = sync.Pool{New: func() any {
	b := make([]byte, indexEveryBytes+recordHeader)
	return &b
}}

// seek returns the file position of entry target, which must be below the
// entries that end at byte limit. It reads record headers forward from the
// nearest index point; avg (average record size, 0 if unknown) sizes the
// first read. Caller holds rw (shared) or is the committer.
func (s *segment) seek(target uint64, limit, avg int64) (int64, error) {
	pt := s.point(target)
	pos, o := pt.pos, pt.off
	if o == target {
		return pos, nil
	}
	bp := scratchPool.Get().(*[]byte)
	defer scratchPool.Put(bp)
	scratch := *bp
	var win []byte
	winPos := int64(0)
	first := int64(len(scratch))
	if avg > 0 {
		first = min(first, avg*int64(target-o)+4096)
	}
	for o < target {
		rel := pos - winPos
		if win == nil || rel+recordHeader > int64(len(win)) {
			m := min(first, limit-pos)
			first = int64(len(scratch))
			if m < recordHeader {
				return 0, s.corrupt(pos, "record header past the end of the segment")
			}
			if err := readFull(s.f, scratch[:m], pos); err != nil {
				return 0, err
			}
			win, winPos, rel = scratch[:m], pos, 0
		}
		l := binary.LittleEndian.Uint32(win[rel:])
		if l == 0 || l > maxPayload || pos+recordHeader+int64(l) > limit {
			return 0, s.corrupt(pos, fmt.Sprintf("bad record length %d", l))
		}
		pos += recordHeader + int64(l)
		o++
	}
	return pos, nil
}

func (s *segment) corrupt(pos int64, reason string) error {
	return &CorruptError{File: s.path, Offset: pos, Reason: reason}
}

// readFull is ReadAt that treats a short read as an error.
func readFull(f File, b []byte, pos int64) error {
	n, err := f.ReadAt(b, pos)
	if n == len(b) {
		return nil
	}
	if err == nil || errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return fmt.Errorf("wal: read %d bytes at %d: %w", len(b), pos, err)
}

// read returns durable entries [from, ...) as documented on WAL.Read. Caller
// holds rw shared.
//
// It reads with as few preads as it can: each chunk is sized from the
// limits and from the segment's average record size, and the returned
// entries are subslices of the chunks (one allocation per chunk, none per
// entry). A record that does not fit the chunk it starts in is read alone.
func (s *segment) read(from uint64, maxEntries, maxBytes int) ([][]byte, error) {
	end := s.durable.Load()
	endPos := s.durableSize.Load()
	if from > end {
		return nil, fmt.Errorf("wal: read %v from %d: segment ends at %d: %w", s.key, from, end, ErrOutOfRange)
	}
	if from == end {
		return nil, nil
	}
	avg := (endPos - int64(headerLen(s.key.Topic))) / int64(end)
	pos, err := s.seek(from, endPos, avg)
	if err != nil {
		return nil, err
	}
	n := end - from
	if maxEntries > 0 && uint64(maxEntries) < n {
		n = uint64(maxEntries)
	}
	var out [][]byte
	o, total := from, 0
	for uint64(len(out)) < n {
		if maxBytes > 0 && len(out) > 0 && total >= maxBytes {
			return out, nil // the byte budget is spent: read no further
		}
		rest := endPos - pos
		left := int64(min(n-uint64(len(out)), uint64(rest)))
		want := min(rest, avg*(left+1)+4096)
		if budget := int64(maxBytes - total); maxBytes > 0 {
			// Expect about budget bytes of payload; entries that fit it
			// take at most budget + a header each (each is >= 1 byte).
			want = min(want, budget+avg+4096, budget+recordHeader*min(left, budget+1))
		}
		want = max(want, min(recordHeader, rest))
		buf := make([]byte, want)
		if err := readFull(s.f, buf, pos); err != nil {
			return nil, err
		}
		if out == nil {
			out = make([][]byte, 0, min(n, uint64(want/(recordHeader+1))+1))
		}
		p := 0
		for uint64(len(out)) < n {
			payload, rl, st, reason := decodeRecord(buf[p:], o)
			if st == recShort {
				if maxBytes > 0 && len(out) > 0 && rl > 0 && total+rl-recordHeader > maxBytes {
					// its header says it would not fit the budget: done,
					// without reading it
					return out, nil
				}
				break
			}
			if st == recBad {
				return nil, s.corrupt(pos+int64(p), reason)
			}
			if maxBytes > 0 && len(out) > 0 && total+len(payload) > maxBytes {
				return out, nil
			}
			out = append(out, payload)
			total += len(payload)
			p += rl
			o++
		}
		pos += int64(p)
		if p > 0 || uint64(len(out)) >= n {
			continue
		}
		// The record at pos does not fit in the chunk: read it alone.
		payload, rl, err := s.readRecord(o, pos, endPos)
		if err != nil {
			return nil, err
		}
		if maxBytes > 0 && len(out) > 0 && total+len(payload) > maxBytes {
			return out, nil
		}
		out = append(out, payload)
		total += len(payload)
		pos += int64(rl)
		o++
	}
	return out, nil
}

// readRecord reads and checks the single record o that starts at pos.
func (s *segment) readRecord(o uint64, pos, endPos int64) ([]byte, int, error) {
	var h [recordHeader]byte
	if pos+recordHeader > endPos {
		return nil, 0, s.corrupt(pos, "record header past the end of the segment")
	}
	if err := readFull(s.f, h[:], pos); err != nil {
		return nil, 0, err
	}
	l := binary.LittleEndian.Uint32(h[:])
	if l == 0 || l > maxPayload || pos+recordHeader+int64(l) > endPos {
		return nil, 0, s.corrupt(pos, fmt.Sprintf("bad record length %d", l))
	}
	rb := make([]byte, recordHeader+int(l))
	if err := readFull(s.f, rb, pos); err != nil {
		return nil, 0, err
	}
	payload, rl, st, reason := decodeRecord(rb, o)
	if st != recOK {
		return nil, 0, s.corrupt(pos, reason)
	}
	return payload, rl, nil
}
