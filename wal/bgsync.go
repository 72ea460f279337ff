package wal

import (
	"fmt"
	"sync"
)

// SyncInterval's sync runs beside the committer, not in it. Made by the
// committer, an interval's fdatasync held up every append behind it: with
// --fsync interval:1s, batched writes at half rate were slow on a
// one-second beat, p99 33-42 ms; beside it 15-33 ms (median 17), not
// every second (BENCHMARKS.md, "SyncInterval's sync beside the
// committer"). Now the committer hands the interval's files to a
// goroutine and goes on writing; a file's WriteAt and Sync may then run at
// once (the FS contract allows it), and the sync covers what was written
// before it started.
//
// Writes go on beside a sync only while it is within its interval: once
// the next interval has run out too, the committer waits for it before
// writing more (backpressure, as when it synced itself), so a disk slower
// than the writes cannot let unsynced data pile up past the mode's promise.
//
// The committer keeps all the bookkeeping: it takes the files' ends when
// the sync starts and, when it learns the result, records them as synced
// (evicting what DropBehind says) or fences. Anything else that touches a
// file (Seal, Truncate, Delete, Close, a write failure's roll-back) first
// waits for a sync in flight (awaitSync), so no file is cut, renamed or
// closed under it.
type bgSync struct {
	running bool          // a sync is in flight (committer's view)
	again   bool          // an interval ran out while it was: sync once more after it
	done    chan struct{} // the goroutine's result is ready; buffered 1
	segs    []*segment    // the files being synced (the goroutine's while running)
	ends    []int64       // each file's written end when the sync started
	errs    []error       // each file's Sync result
}

// startSync begins an interval's sync of every file written since the
// last one, unless one is still in flight (then it runs right after that
// one: the interval's bound holds as well as the disk allows). Committer
// only.
func (w *WAL) startSync() {
	b := &w.bg
	if b.running {
		b.again = true
		return
	}
	b.again = false
	if w.fenced.Load() || len(w.dirty) == 0 {
		return
	}
	b.segs, b.ends = b.segs[:0], b.ends[:0]
	for _, s := range w.dirty {
		s.inDirty = false
		if !s.dirty || s.deleted {
			continue
		}
		s.dirty = false // a write from now on marks it again
		b.segs = append(b.segs, s)
		b.ends = append(b.ends, s.size)
	}
	clear(w.dirty)
	w.dirty = w.dirty[:0]
	if len(b.segs) == 0 {
		return
	}
	if cap(b.errs) < len(b.segs) {
		b.errs = make([]error, len(b.segs))
	}
	b.errs = b.errs[:len(b.segs)]
	w.stats.syncs.Add(uint64(len(b.segs)))
	b.running = true
	go func(segs []*segment, errs []error) {
		syncFiles(segs, errs)
		b.done <- struct{}{}
	}(b.segs, b.errs)
}

// syncDone records the result of the sync in flight, which its goroutine
// has signalled on bg.done (received by the caller), and starts the next
// sync if an interval ran out meanwhile (unless the caller is about to
// touch a file: next). Committer only.
func (w *WAL) syncDone(next bool) {
	b := &w.bg
	b.running = false
	for i, s := range b.segs {
		if err := b.errs[i]; err != nil {
			w.fence(fmt.Errorf("sync %s: %w", s.path, err))
		} else {
			w.markSynced(s, b.ends[i])
		}
		b.errs[i] = nil
	}
	clear(b.segs)
	b.segs = b.segs[:0]
	if next && b.again {
		w.startSync()
	}
}

// awaitSync waits for a sync in flight and records its result, before the
// committer touches a file other than by writing to it. Committer only.
func (w *WAL) awaitSync() {
	if w.bg.running {
		<-w.bg.done
		w.syncDone(false)
	}
}

// syncFiles syncs the files of segs, in parallel when there is more than
// one, and puts each one's result in errs. It reads only each segment's
// file, which never changes, so it may run outside the committer.
func syncFiles(segs []*segment, errs []error) {
	if len(segs) == 1 {
		errs[0] = segs[0].f.Sync()
		return
	}
	var wg sync.WaitGroup
	for i, s := range segs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.f.Sync()
		}()
	}
	wg.Wait()
}
