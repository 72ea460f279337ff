package wal

import (
	"os"
	"sync/atomic"
)

// IOWatch counts the calls of a file system that wait for the device
// (writes, syncs, truncations, renames, removals, directory syncs) as they
// start and finish, so that a watchdog can tell a disk that stopped
// answering from a slow one: calls in progress and none finishing for a
// long time (StallCounter). A sync that never returns otherwise leaves a
// node half alive under --plain-syscalls: it answers its peers, so nothing
// fails over, while every write to the segments it leads waits
// (docs/operations.md, "A disk that hangs").
type IOWatch struct {
	started, finished atomic.Uint64
}

// Progress returns how many calls have started and finished so far.
func (w *IOWatch) Progress() (started, finished uint64) {
	// finished first: a call that finishes between the two loads is then
	// counted as started, never as finished and not started
	finished = w.finished.Load()
	return w.started.Load(), finished
}

// Track counts fn as one call that waits for the device, for stores that
// do not go through an FS (the node's raft log, a bolt database).
func (w *IOWatch) Track(fn func() error) error {
	w.enter()
	defer w.exit()
	return fn()
}

func (w *IOWatch) enter() { w.started.Add(1) }
func (w *IOWatch) exit()  { w.finished.Add(1) }

// Watched returns fs with w counting its calls.
func Watched(fs FS, w *IOWatch) FS { return watchedFS{fs: fs, w: w} }

type watchedFS struct {
	fs FS
	w  *IOWatch
}

func (f watchedFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f.w.enter()
	defer f.w.exit()
	file, err := f.fs.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return watchedFile{File: file, w: f.w}, nil
}

func (f watchedFS) Remove(name string) error {
	f.w.enter()
	defer f.w.exit()
	return f.fs.Remove(name)
}

func (f watchedFS) Rename(oldpath, newpath string) error {
	f.w.enter()
	defer f.w.exit()
	return f.fs.Rename(oldpath, newpath)
}

func (f watchedFS) MkdirAll(path string, perm os.FileMode) error {
	f.w.enter()
	defer f.w.exit()
	return f.fs.MkdirAll(path, perm)
}

func (f watchedFS) ReadDir(name string) ([]os.DirEntry, error) { return f.fs.ReadDir(name) }

func (f watchedFS) SyncDir(name string) error {
	f.w.enter()
	defer f.w.exit()
	return f.fs.SyncDir(name)
}

// watchedFile counts the calls that wait for the device; reads (served
// from the page cache or the disk) and Stat are not counted, so readers
// never make a stall look like progress.
type watchedFile struct {
	File
	w *IOWatch
}

func (f watchedFile) WriteAt(p []byte, off int64) (int, error) {
	f.w.enter()
	defer f.w.exit()
	return f.File.WriteAt(p, off)
}

func (f watchedFile) Sync() error {
	f.w.enter()
	defer f.w.exit()
	return f.File.Sync()
}

func (f watchedFile) Truncate(size int64) error {
	f.w.enter()
	defer f.w.exit()
	return f.File.Truncate(size)
}

func (f watchedFile) Close() error {
	f.w.enter()
	defer f.w.exit()
	return f.File.Close()
}

// StartWriteback and DropCache pass the engine's hints on when the
// wrapped file takes them.
func (f watchedFile) StartWriteback(off, n int64) error {
	if wb, ok := f.File.(writebacker); ok {
		return wb.StartWriteback(off, n)
	}
	return nil
}

func (f watchedFile) DropCache(off, n int64) error {
	if d, ok := f.File.(cacheDropper); ok {
		return d.DropCache(off, n)
	}
	return nil
}

// StallCounter tells a stalled disk from progress, and an idle one, one
// look at a time. Look counts the looks in a row at which calls were in
// progress and none had finished since the previous look; Quiet counts
// those at which none was in progress and none had finished. A watchdog
// that looks every limit/n and acts when Look reaches n acts after about
// limit without progress; counting looks rather than reading a clock
// means a process that was itself stopped (SIGSTOP, a suspended machine)
// and resumes in the middle of a call is not taken for a stall.
type StallCounter struct {
	seen         bool   // a look was made
	finished     uint64 // calls finished at the last look
	looks, quiet int
}

// Look records one look at w's progress (IOWatch.Progress) and returns the
// looks in a row without progress while calls were in progress (0 when
// idle or moving).
func (c *StallCounter) Look(started, finished uint64) int {
	moved := !c.seen || finished != c.finished
	c.seen, c.finished = true, finished
	switch {
	case started == finished: // nothing in progress
		c.looks = 0
		if moved {
			c.quiet = 0
		} else {
			c.quiet++
		}
	case moved:
		c.looks, c.quiet = 0, 0
	default:
		c.looks++
		c.quiet = 0
	}
	return c.looks
}

// Quiet is the looks in a row, up to the last, at which no call was in
// progress and none had finished since the look before.
func (c *StallCounter) Quiet() int { return c.quiet }
