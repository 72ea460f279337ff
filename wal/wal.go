package wal

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// SegmentKey names a segment: the Segment-th segment of Topic. Topics are
// arbitrary non-empty strings (file names escape them).
type SegmentKey struct {
	Topic   string
	Segment uint64
}

func (k SegmentKey) String() string { return fmt.Sprintf("%q/%d", k.Topic, k.Segment) }

// SyncMode is the durability policy. Each mode is named for what it gives up.
type SyncMode int

const (
	// SyncEveryBatch (the default) acknowledges an append only after the
	// batch holding it is fsynced (fdatasync). Gives up nothing: an
	// acknowledged entry survives power loss.
	SyncEveryBatch SyncMode = iota
	// SyncInterval writes every batch at once but fsyncs only every
	// Options.SyncInterval; appends are acknowledged (and readable) after the
	// write. Gives up: up to SyncInterval of acknowledged entries can be lost
	// on power failure or OS crash (a process crash loses nothing).
	SyncInterval
	// SyncNever writes every batch and never fsyncs except on Seal, Truncate
	// and Close; appends are acknowledged after the write. Gives up: anything
	// not yet flushed by the OS (typically tens of seconds) can be lost on
	// power failure or OS crash; survives a process crash.
	SyncNever
)

func (m SyncMode) String() string {
	switch m {
	case SyncEveryBatch:
		return "every-batch"
	case SyncInterval:
		return "interval"
	case SyncNever:
		return "never"
	}
	return fmt.Sprintf("SyncMode(%d)", int(m))
}

// Options configure Open. The zero value is valid.
type Options struct {
	FS            FS            // default OSFS()
	Sync          SyncMode      // default SyncEveryBatch
	SyncInterval  time.Duration // for SyncInterval; default 10ms
	MaxEntryBytes int           // default 16 MiB; larger entries get ErrEntryTooLarge
	// Prealloc makes an open segment's file grow in steps of this many
	// zero bytes written ahead of its records, so that most syncs write
	// data into a file whose length does not change: no inode update, no
	// journal commit (on journaled ext4 about 2x the fdatasyncs/s of
	// appending; BENCHMARKS.md, "Preallocated segment files"). 0 (the
	// default) appends; a node uses DefaultPrealloc.
	Prealloc int64
	// DropBehind evicts from the page cache what a segment's syncs made
	// durable more than this many bytes behind its end (POSIX_FADV_DONTNEED
	// on Linux, dropStep at a time; a hint, ignored elsewhere), so that new
	// writes take pages the kernel just freed instead of fresh ones, which
	// on a virtual machine that hands free memory back to its host cost a
	// fault each (BENCHMARKS.md, "Dropping written pages behind the
	// writer"); reads of older bytes come from the disk. 0 (the default,
	// and a node's) keeps everything cached.
	DropBehind int64
	// SetAsideCorrupt makes Open rename a sealed segment file that fails
	// its checks (a *CorruptError: bad header, bad record, wrong length)
	// to <name>.corrupt and leave that segment out, instead of failing.
	// A sealed segment's entries are on its other replicas, which a node
	// copies them back from; the bytes stay for inspection. Open segment
	// files are never set aside: what each replica holds of an open
	// segment decides what recovery keeps. SetAside lists what was.
	SetAsideCorrupt bool
	Logger          *slog.Logger // default: discard
}

// DefaultMaxEntryBytes is Options.MaxEntryBytes' default.
const DefaultMaxEntryBytes = 16 << 20

// DefaultPrealloc is the preallocation step of a node (walrus
// --wal-prealloc): small enough that a step's zeros do not stall the sync
// that carries them (1 MiB steps doubled batched writes' p99), large
// enough that most syncs of small writes change no file length.
const DefaultPrealloc = 64 << 10

// MaxPrealloc bounds Options.Prealloc: a step's zeros are written within
// the sync that needs them (1 MiB already doubled batched writes' p99),
// and an open segment holds that much disk that no record uses.
const MaxPrealloc = 64 << 20

// DefaultSyncInterval is Options.SyncInterval's default.
const DefaultSyncInterval = 10 * time.Millisecond

// SegmentInfo describes a segment.
type SegmentInfo struct {
	Key    SegmentKey
	Count  uint64 // entries visible to readers (durable under the sync policy)
	Sealed bool
	Bytes  int64 // file size covering those entries, header included
}

// Stats are running totals since Open, for metrics and benchmarks.
type Stats struct {
	Batches      uint64 // append batches committed (each: one write per touched file)
	Syncs        uint64 // file syncs issued (fdatasync), including Seal, Truncate, Create
	Entries      uint64 // entries appended
	BytesWritten uint64 // record bytes written by appends
}

type stats struct {
	batches, syncs, entries, bytes atomic.Uint64
}

// Stats returns running totals. Any goroutine; the fields are read one by
// one, so they may be from slightly different moments.
func (w *WAL) Stats() Stats {
	return Stats{
		Batches:      w.stats.batches.Load(),
		Syncs:        w.stats.syncs.Load(),
		Entries:      w.stats.entries.Load(),
		BytesWritten: w.stats.bytes.Load(),
	}
}

// ErrEmptyTopic: a SegmentKey with an empty topic was given to Create.
var ErrEmptyTopic = errors.New("wal: empty topic")

// WAL is the storage engine. It is safe for concurrent use by many
// goroutines. One committer goroutine performs every write, truncation,
// rename and removal; callers only enqueue requests and wait (or get called
// back). Reads run on the caller's goroutine with pread.
type WAL struct {
	dir  string
	fs   FS
	opts Options
	log  *slog.Logger

	mu     sync.Mutex
	segs   map[SegmentKey]*segment // guarded by mu; changed only by the committer
	queue  []request               // guarded by mu
	closed bool                    // guarded by mu

	kick    chan struct{} // wakes the committer; buffered 1
	waiters sync.Pool     // *waiter, for synchronous calls
	stopped chan struct{} // closed when the committer exits

	// fenced is set once, by the committer, after fenceCause is written.
	fenced     atomic.Bool
	fenceCause error

	stats stats

	setAside []string // files Open set aside (Options.SetAsideCorrupt); fixed after Open

	// Committer-owned.
	spare      []request  // the queue's other buffer
	pending    []request  // written in this cycle, waiting for its sync
	cycle      []*segment // segments written in this cycle
	cycleBytes int
	wbuf       []byte     // encode buffer, reused
	zeros      []byte     // what preallocate writes (Options.Prealloc > 0)
	touched    []*segment // segments written in this round
	fix        []*segment // segments whose nextOff needs recomputing
	dirty      []*segment // written but not synced (SyncInterval, SyncNever)
	syncErr    []error
	toSync     []*segment // syncSegments' list, reused
	bg         bgSync     // SyncInterval's sync, run beside the committer
}

type opKind uint8

const (
	opAppend opKind = iota
	opCreate
	opSeal
	opTruncate
	opDelete
	opClose
)

// request is one queued call. Stored by value in the queue.
type request struct {
	kind    opKind
	at      bool // AppendAt: n is the required offset
	counted bool // its entries were added to seg.queued
	seg     *segment
	key     SegmentKey
	entries [][]byte
	n       uint64 // AppendAt offset; Seal/Truncate count
	bytes   int    // encoded size of entries
	first   uint64
	err     error // set when rejected
	done    func(first uint64, err error)
	wt      *waiter
}

// waiter is how synchronous calls wait for the committer.
type waiter struct {
	ch    chan struct{}
	first uint64
	err   error
}

// newWaiter makes a waiter for a WAL's pool (WAL.waiters). The pool is per
// WAL, not package-wide: a channel made inside a testing/synctest bubble
// (the testkit runs whole nodes in bubbles) must never be used outside it,
// and a WAL lives in one bubble.
func newWaiter() any { return &waiter{ch: make(chan struct{}, 1)} }

func (r *request) finish(first uint64, err error) {
	if r.wt != nil {
		r.wt.first, r.wt.err = first, err
		r.wt.ch <- struct{}{}
	} else if r.done != nil {
		r.done(first, err)
	}
}

// Open opens (creating if needed) the WAL in dir and recovers every segment
// file found there: every record's checksum and offset are verified, a torn
// tail of an open segment is cut away, and any other damage fails Open with a
// *CorruptError.
func Open(dir string, opts Options) (*WAL, error) {
	if opts.FS == nil {
		opts.FS = OSFS()
	}
	if opts.MaxEntryBytes == 0 {
		opts.MaxEntryBytes = DefaultMaxEntryBytes
	}
	if opts.MaxEntryBytes < 0 || opts.MaxEntryBytes > maxPayload {
		return nil, fmt.Errorf("wal: open %s: MaxEntryBytes %d out of range (1..%d)", dir, opts.MaxEntryBytes, maxPayload)
	}
	switch opts.Sync {
	case SyncEveryBatch, SyncNever:
	case SyncInterval:
		if opts.SyncInterval <= 0 {
			opts.SyncInterval = DefaultSyncInterval
		}
	default:
		return nil, fmt.Errorf("wal: open %s: unknown sync mode %d", dir, int(opts.Sync))
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Prealloc < 0 || opts.Prealloc > MaxPrealloc {
		return nil, fmt.Errorf("wal: open %s: Prealloc %d is outside 0..%d", dir, opts.Prealloc, MaxPrealloc)
	}
	if opts.DropBehind < 0 {
		return nil, fmt.Errorf("wal: open %s: DropBehind %d is negative", dir, opts.DropBehind)
	}
	w := &WAL{
		dir:     dir,
		fs:      opts.FS,
		opts:    opts,
		log:     opts.Logger.With("component", "wal", "dir", dir),
		segs:    make(map[SegmentKey]*segment),
		kick:    make(chan struct{}, 1),
		stopped: make(chan struct{}),
		waiters: sync.Pool{New: newWaiter},
	}
	w.bg.done = make(chan struct{}, 1)
	if opts.Prealloc > 0 {
		w.zeros = make([]byte, min(opts.Prealloc, 1<<20))
	}
	if err := w.fs.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("wal: open %s: %w", dir, err)
	}
	if err := w.recover(); err != nil {
		for _, s := range w.segs {
			_ = s.f.Close()
		}
		return nil, err
	}
	go w.run()
	return w, nil
}

// lookup finds an existing segment. Any goroutine.
func (w *WAL) lookup(key SegmentKey) (*segment, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, ErrClosed
	}
	s := w.segs[key]
	if s == nil {
		return nil, ErrUnknownSegment
	}
	return s, nil
}

// enqueue adds r to the queue and wakes the committer. Caller holds w.mu;
// enqueue releases it.
func (w *WAL) enqueueLocked(r request) {
	w.queue = append(w.queue, r)
	wake := len(w.queue) == 1
	w.mu.Unlock()
	if wake {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

// control runs a non-append operation through the committer and waits.
func (w *WAL) control(kind opKind, key SegmentKey, n uint64) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return ErrClosed
	}
	r := request{kind: kind, key: key, n: n}
	if kind != opCreate && kind != opClose {
		if r.seg = w.segs[key]; r.seg == nil {
			w.mu.Unlock()
			return ErrUnknownSegment
		}
	}
	if kind == opClose {
		w.closed = true
	}
	wt := w.waiters.Get().(*waiter)
	r.wt = wt
	w.enqueueLocked(r)
	<-wt.ch
	err := wt.err
	wt.err = nil
	w.waiters.Put(wt)
	return err
}

// Create makes a new, empty segment. It is durable (file and directory
// synced) when Create returns. Creating a segment that exists and is open is
// a no-op; creating a sealed one returns ErrSealed.
func (w *WAL) Create(key SegmentKey) error {
	if key.Topic == "" {
		return fmt.Errorf("wal: create %v: %w", key, ErrEmptyTopic)
	}
	if err := w.control(opCreate, key, 0); err != nil {
		return fmt.Errorf("wal: create %v: %w", key, err)
	}
	return nil
}

// Append adds entries to the end of the segment and blocks until they are
// durable under the sync policy. It returns the offset of the first entry
// (entries get consecutive offsets). The WAL does not copy entries before the
// committer encodes them; Append returns after that. An error means none of
// the entries were appended.
func (w *WAL) Append(key SegmentKey, entries [][]byte) (first uint64, err error) {
	wt := w.waiters.Get().(*waiter)
	if err := w.submit(key, entries, false, 0, nil, wt); err != nil {
		w.waiters.Put(wt)
		return 0, err
	}
	<-wt.ch
	first, err = wt.first, wt.err
	wt.err = nil
	w.waiters.Put(wt)
	return first, err
}

// AppendAsync is Append without blocking on I/O: it enqueues and returns.
// done runs exactly once, on the committer goroutine, after the entries are
// durable under the policy (or with the error); callbacks run in the order
// the calls were made. done must not block: it holds up every writer. The
// caller must not modify entries until done runs. One exception to "on the
// committer goroutine": if the WAL is closed, done runs on the caller's
// goroutine, with ErrClosed, before AppendAsync returns.
func (w *WAL) AppendAsync(key SegmentKey, entries [][]byte, done func(first uint64, err error)) {
	if err := w.submit(key, entries, false, 0, done, nil); err != nil {
		done(0, err)
	}
}

// AppendAt is the replica path: like AppendAsync, but it succeeds only if
// offset is the segment's current end, counting entries queued but not yet
// durable. Otherwise done gets an *OffsetMismatchError (errors.Is(err,
// ErrOffsetMismatch)) holding that end. The check is made when the call is
// queued and again when the committer writes, so a failure of an earlier
// queued append makes later AppendAt calls fail with a mismatch rather than
// leave a gap.
func (w *WAL) AppendAt(key SegmentKey, offset uint64, entries [][]byte, done func(first uint64, err error)) {
	if err := w.submit(key, entries, true, offset, done, nil); err != nil {
		done(0, err)
	}
}

// submit validates and enqueues an append. It returns an error (and enqueues
// nothing) only when the caller must report it itself: the WAL is closed, or
// a synchronous caller's request was rejected up front.
func (w *WAL) submit(key SegmentKey, entries [][]byte, at bool, offset uint64, done func(uint64, error), wt *waiter) error {
	var err error
	bytes := 0
	for i, e := range entries {
		if len(e) == 0 {
			err = fmt.Errorf("wal: append to %v: entry %d: %w", key, i, ErrEmptyEntry)
			break
		}
		if len(e) > w.opts.MaxEntryBytes {
			err = fmt.Errorf("wal: append to %v: entry %d is %d bytes, limit %d: %w", key, i, len(e), w.opts.MaxEntryBytes, ErrEntryTooLarge)
			break
		}
		bytes += recordHeader + len(e)
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return fmt.Errorf("wal: append to %v: %w", key, ErrClosed)
	}
	s := w.segs[key]
	if err == nil {
		switch {
		case s == nil:
			err = fmt.Errorf("wal: append to %v: %w", key, ErrUnknownSegment)
		case w.fenced.Load():
			err = w.fencedErr()
		case s.sealed.Load():
			err = fmt.Errorf("wal: append to %v: %w", key, ErrSealed)
		case at && offset != s.nextOff:
			err = fmt.Errorf("wal: append to %v: %w", key, &OffsetMismatchError{Have: s.nextOff, Want: offset})
		}
	}
	if err != nil && wt != nil {
		w.mu.Unlock()
		return err
	}
	r := request{kind: opAppend, at: at, key: key, entries: entries, n: offset, bytes: bytes, err: err, done: done, wt: wt}
	if err == nil {
		r.seg = s
		r.counted = true
		n := uint64(len(entries))
		s.nextOff += n
		s.queued += n
	}
	w.enqueueLocked(r)
	return nil
}

// Read returns durable entries starting at offset from: at most maxEntries
// entries (<= 0: no limit) whose payloads total at most maxBytes (<= 0: no
// limit), but always at least one entry when from is below the durable end,
// even if it alone exceeds maxBytes. from == end returns no entries and no
// error; from > end returns ErrOutOfRange. Entries are read from disk (pread)
// and checksummed; they are fresh memory owned by the caller. Reads never see
// an entry before it is durable under the sync policy.
func (w *WAL) Read(key SegmentKey, from uint64, maxEntries int, maxBytes int) ([][]byte, error) {
	s, err := w.lookup(key)
	if err != nil {
		return nil, fmt.Errorf("wal: read %v: %w", key, err)
	}
	s.rw.RLock()
	defer s.rw.RUnlock()
	if s.gone != nil {
		return nil, fmt.Errorf("wal: read %v: %w", key, s.gone)
	}
	return s.read(from, maxEntries, maxBytes)
}

// Info describes one segment.
// SetAside names the sealed segment files Open set aside as corrupt
// (Options.SetAsideCorrupt), renamed to end in ".corrupt"; nil if none.
func (w *WAL) SetAside() []string { return w.setAside }

func (w *WAL) Info(key SegmentKey) (SegmentInfo, error) {
	s, err := w.lookup(key)
	if err != nil {
		return SegmentInfo{}, fmt.Errorf("wal: info %v: %w", key, err)
	}
	return s.info(), nil
}

func (s *segment) info() SegmentInfo {
	n := s.durable.Load()
	return SegmentInfo{Key: s.key, Count: n, Sealed: s.sealed.Load(), Bytes: s.durableSize.Load()}
}

// Segments describes every segment, sorted by topic then segment. It returns
// nil once the WAL is closed.
func (w *WAL) Segments() []SegmentInfo {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	segs := make([]*segment, 0, len(w.segs))
	for _, s := range w.segs {
		segs = append(segs, s)
	}
	w.mu.Unlock()
	out := make([]SegmentInfo, len(segs))
	for i, s := range segs {
		out[i] = s.info()
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Key.Topic != out[j].Key.Topic {
			return out[i].Key.Topic < out[j].Key.Topic
		}
		return out[i].Key.Segment < out[j].Key.Segment
	})
	return out
}

// Seal makes the segment read-only with exactly count entries. It waits for
// appends queued before it; if the segment then holds more than count
// entries the tail is truncated first; if fewer, ErrShortSegment. The file is
// synced and renamed to its sealed name, and the directory synced, before
// Seal returns. Sealing a sealed segment with its count is a no-op; with
// another count it fails with ErrSealed. Appends queued after Seal fail with
// ErrSealed.
func (w *WAL) Seal(key SegmentKey, count uint64) error {
	if err := w.control(opSeal, key, count); err != nil {
		return fmt.Errorf("wal: seal %v at %d: %w", key, count, err)
	}
	return nil
}

// Truncate drops entries >= count of an open segment (a replica dropping a
// tail no quorum acknowledged). It waits for appends queued before it and is
// durable before it returns. Truncating a sealed segment is ErrSealed; count
// above the segment's end is ErrShortSegment.
func (w *WAL) Truncate(key SegmentKey, count uint64) error {
	if err := w.control(opTruncate, key, count); err != nil {
		return fmt.Errorf("wal: truncate %v to %d: %w", key, count, err)
	}
	return nil
}

// Delete removes the segment and its file (retention); the removal is
// durable before Delete returns. Appends queued before Delete are completed
// first; later ones fail with ErrUnknownSegment.
func (w *WAL) Delete(key SegmentKey) error {
	if err := w.control(opDelete, key, 0); err != nil {
		return fmt.Errorf("wal: delete %v: %w", key, err)
	}
	return nil
}

// Close completes every queued request, syncs what is not yet synced (in
// every mode), closes the files and stops the committer. Later calls return
// ErrClosed.
func (w *WAL) Close() error {
	if err := w.control(opClose, SegmentKey{}, 0); err != nil {
		return fmt.Errorf("wal: close: %w", err)
	}
	<-w.stopped
	return nil
}

// fence stops all writes for good. Committer only.
func (w *WAL) fence(cause error) error {
	if !w.fenced.Load() {
		w.fenceCause = cause
		w.fenced.Store(true)
		w.log.Error("storage fenced: refusing all writes until reopened", "err", cause)
	}
	return w.fencedErr()
}

// fencedErr is the error writes get once fenced. Call only after
// fenced.Load() returned true.
func (w *WAL) fencedErr() error {
	return fmt.Errorf("%w: %w", ErrFenced, w.fenceCause)
}

// isNoSpace reports whether err is ENOSPC (ErrDiskFull); any other write
// error fences the engine.
func isNoSpace(err error) bool { return errors.Is(err, syscall.ENOSPC) }

func (w *WAL) path(name string) string { return filepath.Join(w.dir, name) }
