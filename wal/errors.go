package wal

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every error the engine returns wraps one of these (or an
// error of the OS) with context; compare with errors.Is.
var (
	// ErrEmptyEntry: an entry of zero bytes was given. Entries must be
	// non-empty; nothing of the request is written.
	ErrEmptyEntry = errors.New("wal: empty entry")
	// ErrEntryTooLarge: an entry is longer than Options.MaxEntryBytes; nothing
	// of the request is written.
	ErrEntryTooLarge = errors.New("wal: entry too large")
	// ErrUnknownSegment: no such segment (never created, or deleted). Callers
	// Create a segment before appending to it.
	ErrUnknownSegment = errors.New("wal: unknown segment")
	// ErrSealed: the segment is sealed and read-only; also returned when a
	// sealed segment is sealed again with a different count, truncated or
	// created again.
	ErrSealed = errors.New("wal: segment sealed")
	// ErrOffsetMismatch: AppendAt's offset is not the segment's current end.
	// The error is an *OffsetMismatchError carrying that end.
	ErrOffsetMismatch = errors.New("wal: offset mismatch")
	// ErrOutOfRange: Read from an offset beyond the segment's durable end.
	ErrOutOfRange = errors.New("wal: offset out of range")
	// ErrShortSegment: Seal or Truncate asked for a count larger than the
	// number of entries the segment holds.
	ErrShortSegment = errors.New("wal: segment shorter than count")
	// ErrClosed: the WAL is closed.
	ErrClosed = errors.New("wal: closed")
	// ErrDiskFull: a write failed with ENOSPC (the error also wraps
	// syscall.ENOSPC). The failed batch was rolled back by truncating the file
	// to its last good size, so nothing of it is visible or recovered; later
	// appends may succeed once space is available.
	ErrDiskFull = errors.New("wal: disk full")
	// ErrFenced: a sync failed, or a write failed for a reason other than
	// ENOSPC. After a failed fsync the state of the page cache and of the
	// disk is unknown, so the engine refuses every later write (appends,
	// Create, Seal, Truncate, Delete) until it is reopened; reads of entries
	// that were durable before keep working. The error wraps the cause.
	ErrFenced = errors.New("wal: fenced after I/O error")
	// ErrCorrupt: a checksum or structure failure that is not a torn tail:
	// a bad record followed by valid ones, any bad record in a sealed file, a
	// bad header. The engine never skips such data silently. The error is a
	// *CorruptError naming the file and byte offset.
	ErrCorrupt = errors.New("wal: corrupt segment file")
)

// CorruptError reports damaged data found on disk; errors.Is(err, ErrCorrupt).
type CorruptError struct {
	File   string // path of the file
	Offset int64  // byte offset of the first damaged byte or record
	Reason string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("wal: corrupt segment file %s at byte %d: %s", e.File, e.Offset, e.Reason)
}

// Unwrap makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Unwrap() error { return ErrCorrupt }

// OffsetMismatchError is AppendAt's refusal: the caller's offset is not the
// segment's end. errors.Is(err, ErrOffsetMismatch).
type OffsetMismatchError struct {
	Have uint64 // the segment's end, counting entries queued but not yet durable
	Want uint64 // the offset the caller asked for
}

func (e *OffsetMismatchError) Error() string {
	return fmt.Sprintf("wal: offset mismatch: segment ends at %d, append was at %d", e.Have, e.Want)
}

// Unwrap makes errors.Is(err, ErrOffsetMismatch) true.
func (e *OffsetMismatchError) Unwrap() error { return ErrOffsetMismatch }
