// Package wal is the node's storage engine: one file per segment, group
// commit across all segments, CRC32C-checked records, recovery that cuts a
// torn tail, and reads by offset through a sparse index. It imports only the
// standard library; every file access goes through the FS seam. The file
// format, sync modes and recovery rules are described in docs/storage.md.
//
// # Writers and the committer
//
// One committer goroutine performs every write, fsync, truncation, rename
// and removal, and is the only code that changes the segment map. (The one
// exception: under SyncInterval it hands the interval's fsyncs to a
// goroutine and goes on writing, bgsync.go; it still keeps their
// bookkeeping, and waits for them before touching a file otherwise.) Callers
// never do I/O on the write path: Append, AppendAsync and AppendAt validate,
// put a request on a mutex-protected queue and (Append only) wait on a
// pooled channel. The committer takes the whole queue, writes one round
// (records of all requests concatenated per file, one write per touched
// file, from a reused buffer); if more requests arrived meanwhile it writes
// those too, then syncs every touched file once (in parallel when there are
// several), publishes the new durable ends and calls every request back in
// queue order. Create, Seal, Truncate, Delete and Close travel through the
// same queue: they first complete the current cycle, then run alone, so the
// queue order is the order of everything.
//
// Callbacks (AppendAsync/AppendAt's done) run on the committer goroutine.
// They must not block and must not call the WAL's blocking methods (Append,
// Create, Seal, Truncate, Delete, Close): that would wait for the committer
// from the committer. AppendAsync, AppendAt, Read, Info and Segments are fine.
//
// # Lock discipline
//
//   - WAL.mu guards the segment map, the queue, the closed flag and each
//     segment's nextOff/queued (the end offset counting queued requests). It
//     is held only for map lookups and queue operations, never during I/O or
//     while calling back, and no other lock is taken while holding it.
//   - segment.rw: readers hold it shared while they pread the segment's file;
//     the committer takes it exclusively to truncate, rename (path), close or
//     delete the file. Appends take no lock: they only add bytes beyond the
//     published durable size, which readers never pass.
//   - segment.idxMu guards the sparse index. Readers take it shared (inside
//     rw) to find a position; the committer takes it exclusively to add or
//     cut points. It is a leaf: nothing is locked while holding it.
//   - Order: WAL.mu is never held together with the others; rw before idxMu.
//   - segment.durable and segment.durableSize are atomics, written only by
//     the committer after a sync (or after the write, under SyncInterval and
//     SyncNever): durableSize is stored before durable grows, and only under
//     rw held exclusively when they shrink, so a reader that loads durable
//     and then durableSize never reads past what is durable.
//   - Every other segment field (count, size, batch scratch, flags) belongs
//     to the committer goroutine alone and is not locked.
package wal
