package wal

import (
	"fmt"
	"os"
	"runtime"
	"time"
)

// maxCycleBytes bounds how much the committer writes before it syncs when
// requests keep arriving (SyncEveryBatch).
const maxCycleBytes = 4 << 20

// writebackStep: under SyncInterval and SyncNever the committer has the
// kernel start writing each file's records to the device every this many
// bytes, so that the syncs the committer waits for (and every append with
// it) find little left to write: the interval's sync, and Seal's at every
// rollover. Without it a 1 s interval's sync wrote a second of records at
// once, and under SyncNever Seal wrote a whole segment: batched writes at
// half rate saw p99 ~90 ms and ~230 ms (BENCHMARKS.md, "SyncInterval's
// sync held up appends").
const writebackStep = 1 << 20

// maxRetainedBuf bounds the encode buffer the committer keeps between rounds.
const maxRetainedBuf = 8 << 20

// run is the committer goroutine: the only code that writes, syncs,
// truncates, renames or removes files, and the only one that changes the
// segment map.
//
// A commit cycle: take everything queued, write it (one write per touched
// file), and if more requests arrived meanwhile, take and write those too
// (another round) — then sync every touched file once, publish the new
// durable ends and call every request back in queue order. While the
// committer writes or syncs, new requests queue up, so cycles grow with load.
// Under SyncInterval and SyncNever a cycle is a single round and nothing is
// synced (SyncInterval syncs on its ticker, beside the committer: see
// bgsync.go); the committer yields once between rounds so that rounds, not
// single requests, get written.
func (w *WAL) run() {
	defer close(w.stopped)
	var tick <-chan time.Time
	if w.opts.Sync == SyncInterval {
		t := time.NewTicker(w.opts.SyncInterval)
		defer t.Stop()
		tick = t.C
	}
	for {
		w.mu.Lock()
		for len(w.queue) == 0 {
			w.mu.Unlock()
			select {
			case <-w.kick:
			case <-tick:
				w.startSync()
			case <-w.bg.done:
				w.syncDone(true)
			}
			w.mu.Lock()
		}
		batch := w.queue
		w.queue = w.spare[:0]
		w.mu.Unlock()

		if w.bg.running && w.bg.again {
			// The interval's sync has taken longer than the interval: the
			// disk is slower than the writes. Write no more until it is
			// done, so that acknowledged but unsynced data stays within
			// about an interval and a sync (the mode's promise) instead of
			// piling up in the page cache.
			w.awaitSync()
			w.startSync()
		}
		stop := w.process(batch)
		clear(batch) // drop references to callers' entries and callbacks
		w.spare = batch[:0]
		if stop {
			return
		}
		if len(w.pending) > 0 {
			if w.opts.Sync == SyncEveryBatch && w.cycleBytes < maxCycleBytes && !w.fenced.Load() {
				// More requests queued while this round was written: write
				// them before syncing, so one sync covers them too.
				if w.queueLen() > 0 {
					continue
				}
				// The callbacks of the last cycle made their waiters
				// runnable, mostly on this P. Yield once so they can queue
				// their next requests before this cycle is synced; without
				// it, cycles alternate between the quick few and the rest,
				// doubling the syncs per entry under load. A scheduling hint
				// only: nothing depends on it for correctness.
				runtime.Gosched()
				if w.queueLen() > 0 {
					continue
				}
			}
			w.flush()
		}
		if w.opts.Sync != SyncEveryBatch {
			// Same reason as above: let the appenders just called back queue
			// their next requests, so the next round is one write for many.
			runtime.Gosched()
		}
		if tick != nil {
			select {
			case <-w.bg.done:
				w.syncDone(true)
			default:
			}
			select {
			case <-tick:
				w.startSync()
			default:
				if w.bg.again && !w.bg.running {
					w.startSync() // asked for while awaitSync held it
				}
			}
		}
	}
}

// startWriteback hands s's records written since the last call to the
// device once they reach writebackStep, whole 4 KiB pages only (the page
// the next write extends would be written again). Committer only.
func startWriteback(s *segment) {
	end := s.size &^ 4095
	s.wbFrom = min(s.wbFrom, end) // the file was cut back (Truncate, ENOSPC)
	if end-s.wbFrom < writebackStep {
		return
	}
	if wb, ok := s.f.(writebacker); ok {
		_ = wb.StartWriteback(s.wbFrom, end-s.wbFrom) // a hint: the next Sync reports what matters
	}
	s.wbFrom = end
}

func (w *WAL) queueLen() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.queue)
}

// process handles one batch taken from the queue: runs of appends are
// written as one round; any other operation first completes the current
// cycle (flush), then runs alone, in queue order. It reports whether Close
// was processed.
func (w *WAL) process(batch []request) (stop bool) {
	for i := 0; i < len(batch); {
		j := i
		for j < len(batch) && batch[j].kind == opAppend {
			j++
		}
		if j > i {
			w.writeRound(batch[i:j])
		}
		if j < len(batch) {
			w.flush()
			r := &batch[j]
			if r.kind != opCreate {
				w.awaitSync() // it touches a file the interval's sync may hold
			}
			var err error
			switch r.kind {
			case opCreate:
				err = w.doCreate(r.key)
			case opSeal:
				err = w.doSeal(r.seg, r.n)
			case opTruncate:
				err = w.doTruncate(r.seg, r.n)
			case opDelete:
				err = w.doDelete(r.seg)
			case opClose:
				err = w.doClose()
				stop = true
			}
			w.fixOffsets()
			r.finish(0, err)
			j++
		}
		i = j
	}
	return stop
}

// addFix puts s on the list of segments whose nextOff must be recomputed.
func (w *WAL) addFix(s *segment) {
	if !s.inFix {
		s.inFix = true
		w.fix = append(w.fix, s)
	}
}

// fixOffsets recomputes nextOff of segments touched since the last call from
// what actually happened (count) plus what is still queued. It corrects the
// optimistic nextOff after a failed append, a truncation or a seal.
func (w *WAL) fixOffsets() {
	if len(w.fix) == 0 {
		return
	}
	w.mu.Lock()
	for _, s := range w.fix {
		s.queued -= s.taken
		s.nextOff = s.count + s.queued
		s.taken = 0
		s.inFix = false
	}
	w.mu.Unlock()
	clear(w.fix)
	w.fix = w.fix[:0]
}

// writeRound validates, encodes and writes a run of append requests — one
// write per touched file — and moves them to w.pending, to be synced and
// called back by flush. A request that fails here keeps its error.
func (w *WAL) writeRound(reqs []request) {
	fenced := w.fenced.Load()
	touched := w.touched[:0]
	total := 0
	// Pass 1: validate against the committer's own state, assign offsets,
	// size each file's part of the write buffer.
	for k := range reqs {
		r := &reqs[k]
		s := r.seg
		if r.counted {
			s.taken += uint64(len(r.entries))
			w.addFix(s)
		}
		if r.err != nil {
			continue
		}
		pending := uint64(0) // entries of s earlier in this round
		if s.inBatch {
			pending = s.bEntries
		}
		switch {
		case fenced:
			r.err = w.fencedErr()
		case s.deleted:
			r.err = fmt.Errorf("wal: append to %v: %w", r.key, ErrUnknownSegment)
		case s.sealed.Load():
			r.err = fmt.Errorf("wal: append to %v: %w", r.key, ErrSealed)
		case r.at && r.n != s.count+pending:
			r.err = fmt.Errorf("wal: append to %v: %w", r.key, &OffsetMismatchError{Have: s.count + pending, Want: r.n})
		}
		if r.err != nil {
			continue
		}
		if !s.inBatch {
			s.inBatch = true
			s.bEntries, s.bBytes, s.bErr = 0, 0, nil
			touched = append(touched, s)
		}
		r.first = s.count + s.bEntries
		s.bEntries += uint64(len(r.entries))
		s.bBytes += r.bytes
		total += r.bytes
	}
	var buf []byte
	switch {
	case total > maxRetainedBuf:
		buf = make([]byte, total) // a rare giant round: do not keep its buffer
	case cap(w.wbuf) < total:
		w.wbuf = make([]byte, min(total*2, maxRetainedBuf))
		fallthrough
	default:
		buf = w.wbuf[:total]
	}
	at := 0
	for _, s := range touched {
		s.bStart, s.bCur = at, at
		at += s.bBytes
		s.bIdxLen, s.bSinceEnt, s.bSinceByt = len(s.idx), s.sinceEntries, s.sinceBytes
	}
	// Pass 2: encode records in queue order into each file's region.
	for k := range reqs {
		r := &reqs[k]
		if r.err != nil {
			continue
		}
		s := r.seg
		off := r.first
		for _, e := range r.entries {
			n := recordHeader + len(e)
			pos := s.size + int64(s.bCur-s.bStart)
			putRecord(buf[s.bCur:s.bCur+n], off, pos-s.synced, e)
			s.noteRecord(off, pos, n)
			s.bCur += n
			off++
		}
	}
	// Write: one write per touched file.
	for _, s := range touched {
		s.inBatch = false
		if s.bBytes == 0 {
			continue
		}
		if err := w.preallocate(s, s.size+int64(s.bBytes)); err != nil {
			s.bErr = w.writeFailed(s, err)
			continue
		}
		if _, err := s.f.WriteAt(buf[s.bStart:s.bStart+s.bBytes], s.size); err != nil {
			s.bErr = w.writeFailed(s, err)
			continue
		}
		s.size += int64(s.bBytes)
		s.alloc = max(s.alloc, s.size)
		s.count += s.bEntries
		s.dirty = true
		if w.opts.Sync != SyncEveryBatch {
			startWriteback(s)
		}
		w.cycleBytes += s.bBytes
		w.stats.entries.Add(s.bEntries)
		w.stats.bytes.Add(uint64(s.bBytes))
		if !s.inCycle {
			s.inCycle = true
			w.cycle = append(w.cycle, s)
		}
	}
	if len(touched) > 0 {
		w.stats.batches.Add(1)
	}
	for k := range reqs {
		r := &reqs[k]
		if r.err == nil && r.seg.bErr != nil {
			r.err = r.seg.bErr
		}
		w.pending = append(w.pending, *r)
	}
	clear(touched)
	w.touched = touched[:0]
	if w.opts.Sync != SyncEveryBatch || w.fenced.Load() {
		w.flush() // nothing to wait for
	}
}

// flush completes the cycle: under SyncEveryBatch it syncs every file
// written in the cycle (in parallel when more than one); then it publishes
// the new durable ends and calls every pending request back in queue order.
func (w *WAL) flush() {
	if len(w.pending) == 0 && len(w.cycle) == 0 {
		return
	}
	if w.opts.Sync == SyncEveryBatch {
		if !w.fenced.Load() {
			w.syncSegments(w.cycle)
		}
	} else {
		for _, s := range w.cycle {
			w.markDirty(s)
		}
	}
	fenced := w.fenced.Load()
	for _, s := range w.cycle {
		s.inCycle = false
		if !fenced {
			s.durableSize.Store(s.size)
			s.durable.Store(s.count)
		}
	}
	for k := range w.pending {
		r := &w.pending[k]
		switch {
		case r.err != nil:
			r.finish(0, r.err)
		case fenced:
			r.finish(0, w.fencedErr())
		default:
			r.finish(r.first, nil)
		}
	}
	clear(w.pending)
	w.pending = w.pending[:0]
	clear(w.cycle)
	w.cycle = w.cycle[:0]
	w.cycleBytes = 0
	w.fixOffsets()
}

// writeFailed handles a failed round write to s: on ENOSPC it rolls the file
// back to its last good size (and syncs that) so the round leaves no trace;
// any other error fences the engine. It returns the error for the round's
// requests on s.
func (w *WAL) writeFailed(s *segment, err error) error {
	w.awaitSync()
	s.idxMu.Lock()
	s.idx = s.idx[:s.bIdxLen]
	s.idxMu.Unlock()
	s.sinceEntries, s.sinceBytes = s.bSinceEnt, s.bSinceByt
	if !isNoSpace(err) {
		return w.fence(fmt.Errorf("write %s: %w", s.path, err))
	}
	if terr := cutToRecords(s); terr != nil {
		return w.fence(fmt.Errorf("roll back %s after ENOSPC: %w", s.path, terr))
	}
	w.stats.syncs.Add(1)
	if serr := s.f.Sync(); serr != nil {
		return w.fence(fmt.Errorf("sync %s after ENOSPC rollback: %w", s.path, serr))
	}
	s.dirty, s.synced = false, s.size
	w.log.Warn("disk full: write rolled back", "segment", s.key, "err", err)
	return fmt.Errorf("wal: append to %v: %w: %w", s.key, ErrDiskFull, err)
}

// syncSegments syncs the files of segs that have unsynced writes, in
// parallel when there is more than one, and fences on failure.
func (w *WAL) syncSegments(segs []*segment) {
	todo := w.toSync[:0]
	for _, s := range segs {
		if s.dirty && !s.deleted {
			todo = append(todo, s)
		}
	}
	defer func() {
		clear(todo)
		w.toSync = todo[:0]
	}()
	switch len(todo) {
	case 0:
		return
	case 1:
		_ = w.syncOne(todo[0])
		return
	}
	if cap(w.syncErr) < len(todo) {
		w.syncErr = make([]error, len(todo))
	}
	errs := w.syncErr[:len(todo)]
	w.stats.syncs.Add(uint64(len(todo)))
	syncFiles(todo, errs)
	for i, s := range todo {
		if errs[i] != nil {
			w.fence(fmt.Errorf("sync %s: %w", s.path, errs[i]))
		} else {
			s.dirty = false
			w.markSynced(s, s.size)
		}
		errs[i] = nil
	}
}

func (w *WAL) markDirty(s *segment) {
	if !s.inDirty {
		s.inDirty = true
		w.dirty = append(w.dirty, s)
	}
}

// syncDirty syncs files written since their last sync and waits (Close).
// Committer only.
func (w *WAL) syncDirty() error {
	if len(w.dirty) == 0 {
		return nil
	}
	if !w.fenced.Load() {
		w.syncSegments(w.dirty)
	}
	for _, s := range w.dirty {
		s.inDirty = false
	}
	clear(w.dirty)
	w.dirty = w.dirty[:0]
	if w.fenced.Load() {
		return w.fencedErr()
	}
	return nil
}

// syncOne syncs one segment's file if it has unsynced writes.
func (w *WAL) syncOne(s *segment) error {
	if !s.dirty {
		return nil
	}
	w.stats.syncs.Add(1)
	if err := s.f.Sync(); err != nil {
		return w.fence(fmt.Errorf("sync %s: %w", s.path, err))
	}
	s.dirty = false
	w.markSynced(s, s.size)
	return nil
}

// markSynced records that a sync made s's file durable up to end (its
// written end when the sync began) and evicts what DropBehind says behind
// it: every path that syncs a file records it here. Committer only.
func (w *WAL) markSynced(s *segment, end int64) {
	s.synced = max(s.synced, end)
	w.dropBehind(s)
}

// dropStep is the least a dropBehind call evicts.
const dropStep = 1 << 20

// dropBehind evicts s's durable bytes more than Options.DropBehind behind
// what was synced, dropStep at a time. A hint: a read of a dropped range
// comes from the disk. Committer only, after a sync.
func (w *WAL) dropBehind(s *segment) {
	window := w.opts.DropBehind
	if window <= 0 {
		return
	}
	s.dropped = min(s.dropped, s.size) // the file was cut back
	end := (s.synced - window) &^ (dropStep - 1)
	if end-s.dropped < dropStep {
		return
	}
	if d, ok := s.f.(cacheDropper); ok {
		_ = d.DropCache(s.dropped, end-s.dropped)
	}
	s.dropped = end
}

// preallocate makes s's file at least need bytes long before a round
// writes up to there: it writes zeros from the file's end to the next
// multiple of Options.Prealloc past need, so that the syncs of the rounds
// that follow write only data (the file's length, and with it its inode,
// changes once per step). The zeros reach the disk with the next sync; a
// crash before that leaves the file shorter, which recovery handles as
// any end. When the zeros do not fit (ENOSPC), the file is cut back to
// its records and the round appends as without preallocation: the disk
// is full only if the records themselves do not fit.
func (w *WAL) preallocate(s *segment, need int64) error {
	step := w.opts.Prealloc
	if step <= 0 || need <= s.alloc {
		return nil
	}
	to := (need + step - 1) / step * step
	for at := s.alloc; at < to; {
		n := min(to-at, int64(len(w.zeros)))
		if _, err := s.f.WriteAt(w.zeros[:n], at); err != nil {
			if !isNoSpace(err) {
				return err
			}
			w.awaitSync()
			return cutToRecords(s)
		}
		at += n
		s.alloc = at
	}
	return nil
}

// cutPrealloc cuts the zeros written ahead of s's records (before a seal:
// a sealed file ends where its records do).
func (w *WAL) cutPrealloc(s *segment) error {
	if s.alloc <= s.size {
		return nil
	}
	if err := cutToRecords(s); err != nil {
		return w.fence(fmt.Errorf("truncate %s: %w", s.path, err))
	}
	s.dirty = true
	return nil
}

// cutToRecords truncates s's file to the end of its records (s.size),
// dropping zeros written ahead or a round that failed, with readers kept
// out (the FS contract: no ReadAt during Truncate). Committer only.
func cutToRecords(s *segment) error {
	s.rw.Lock()
	err := s.f.Truncate(s.size)
	s.rw.Unlock()
	if err == nil {
		s.alloc = s.size
	}
	return err
}

func (w *WAL) doCreate(key SegmentKey) error {
	w.mu.Lock()
	s := w.segs[key]
	w.mu.Unlock()
	if s != nil {
		if s.sealed.Load() {
			return ErrSealed
		}
		return nil
	}
	if w.fenced.Load() {
		return w.fencedErr()
	}
	name := openName(key)
	path := w.path(name)
	f, err := w.fs.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if isNoSpace(err) {
			return fmt.Errorf("%w: %w", ErrDiskFull, err)
		}
		return err
	}
	hdr := appendHeader(nil, key)
	fail := func(err error) error {
		_ = f.Close()
		_ = w.fs.Remove(path)
		return err
	}
	if _, err := f.WriteAt(hdr, 0); err != nil {
		if isNoSpace(err) {
			return fail(fmt.Errorf("%w: %w", ErrDiskFull, err))
		}
		return fail(w.fence(fmt.Errorf("write %s: %w", path, err)))
	}
	w.stats.syncs.Add(1)
	if err := f.Sync(); err != nil {
		return fail(w.fence(fmt.Errorf("sync %s: %w", path, err)))
	}
	if err := w.fs.SyncDir(w.dir); err != nil {
		return fail(w.fence(fmt.Errorf("sync dir %s: %w", w.dir, err)))
	}
	s = &segment{key: key, f: f, path: path, size: int64(len(hdr)), alloc: int64(len(hdr)), synced: int64(len(hdr))}
	s.durableSize.Store(s.size)
	w.mu.Lock()
	w.segs[key] = s
	w.mu.Unlock()
	return nil
}

func (w *WAL) doSeal(s *segment, count uint64) error {
	switch {
	case s.deleted:
		return ErrUnknownSegment
	case s.sealed.Load():
		if s.count == count {
			return nil
		}
		return fmt.Errorf("%w with count %d", ErrSealed, s.count)
	case w.fenced.Load():
		return w.fencedErr()
	case s.count < count:
		return fmt.Errorf("%w: segment has %d entries", ErrShortSegment, s.count)
	}
	if s.count > count {
		if err := w.truncateTo(s, count); err != nil {
			return err
		}
	} else if err := w.cutPrealloc(s); err != nil {
		return err
	} else if err := w.syncOne(s); err != nil {
		return err
	}
	newPath := w.path(sealedName(s.key, count))
	if err := w.fs.Rename(s.path, newPath); err != nil {
		return err
	}
	s.rw.Lock()
	s.path = newPath
	s.rw.Unlock()
	s.sealed.Store(true)
	if err := w.fs.SyncDir(w.dir); err != nil {
		return w.fence(fmt.Errorf("sync dir %s: %w", w.dir, err))
	}
	return nil
}

func (w *WAL) doTruncate(s *segment, count uint64) error {
	switch {
	case s.deleted:
		return ErrUnknownSegment
	case s.sealed.Load():
		return ErrSealed
	case w.fenced.Load():
		return w.fencedErr()
	case s.count < count:
		return fmt.Errorf("%w: segment has %d entries", ErrShortSegment, s.count)
	case s.count == count:
		return w.syncOne(s)
	}
	return w.truncateTo(s, count)
}

// truncateTo cuts s to count entries and syncs. Committer only; count < s.count.
func (w *WAL) truncateTo(s *segment, count uint64) error {
	w.addFix(s)
	pos, err := s.seek(count, s.size, 0)
	if err != nil {
		return err
	}
	s.rw.Lock() // no reader may be inside the part being cut
	if s.durable.Load() > count {
		s.durable.Store(count)
		s.durableSize.Store(pos)
	}
	err = s.f.Truncate(pos)
	s.rw.Unlock()
	if err != nil {
		return w.fence(fmt.Errorf("truncate %s: %w", s.path, err))
	}
	s.count, s.size, s.alloc = count, pos, pos
	s.synced = min(s.synced, pos)
	s.cutIndex(count, pos)
	s.dirty = true
	if err := w.syncOne(s); err != nil {
		return err
	}
	s.durableSize.Store(pos)
	s.durable.Store(count)
	w.log.Info("segment truncated", "segment", s.key, "count", count)
	return nil
}

func (w *WAL) doDelete(s *segment) error {
	switch {
	case s.deleted:
		return ErrUnknownSegment
	case w.fenced.Load():
		return w.fencedErr()
	}
	w.mu.Lock()
	if w.segs[s.key] == s {
		delete(w.segs, s.key)
	}
	w.mu.Unlock()
	s.deleted = true
	s.rw.Lock()
	s.gone = ErrUnknownSegment
	cerr := s.f.Close()
	path := s.path
	s.rw.Unlock()
	if err := w.fs.Remove(path); err != nil {
		return err
	}
	if err := w.fs.SyncDir(w.dir); err != nil {
		return w.fence(fmt.Errorf("sync dir %s: %w", w.dir, err))
	}
	if cerr != nil {
		w.log.Warn("close of deleted segment failed", "segment", s.key, "err", cerr)
	}
	return nil
}

func (w *WAL) doClose() error {
	var first error
	if !w.fenced.Load() {
		// Every mode syncs on a clean close.
		w.mu.Lock()
		for _, s := range w.segs {
			if s.dirty {
				w.markDirty(s)
			}
		}
		w.mu.Unlock()
		first = w.syncDirty()
	}
	w.mu.Lock()
	segs := make([]*segment, 0, len(w.segs))
	for _, s := range w.segs {
		segs = append(segs, s)
	}
	w.mu.Unlock()
	for _, s := range segs {
		s.rw.Lock()
		s.gone = ErrClosed
		if err := s.f.Close(); err != nil && first == nil {
			first = err
		}
		s.rw.Unlock()
	}
	return first
}
