//go:build linux

package wal

import (
	"os"
	"runtime"
	"sync/atomic"
	"syscall"
	"unsafe"
)

// Raw system calls on the write path. An ordinary system call tells Go's
// scheduler (entersyscall), which wakes the runtime's monitor thread if it
// slept because the process was idle; the monitor then checks every 20 µs
// while any call is in progress, and a call that blocks may have its P
// (the scheduler's processor) handed to another thread, which it must get
// back after. A lightly loaded node goes idle between writes, so each
// write's pwrite and fdatasync restarted that, and on a paravirtualized
// guest every wake-up of a thread costs tens of microseconds. Raw calls
// (syscall.RawSyscall), with the node's sockets raw too (internal/rawio),
// took a quarter off the cluster's CPU per message at low load and half
// off the median PUT latency (BENCHMARKS.md, "Raw system calls").
//
// What it costs: a raw call keeps its P until it returns, and an fdatasync
// can take milliseconds. So at most GOMAXPROCS-1 raw calls run at once
// (none at GOMAXPROCS=1; past the bound a call is ordinary): one P is
// always left for the node's network, raft and actors. A garbage
// collection's stop-the-world phases wait for a raw call in progress, so
// the node pauses for what is left of a sync when one starts, and a disk
// that hangs in fdatasync stops the whole process at the next collection
// (as it stops raft's own log, on the same disk, anyway).
var rawCalls atomic.Int32

// acquireRaw takes one of the GOMAXPROCS-1 raw-call slots, if one is free.
func acquireRaw() bool {
	limit := int32(runtime.GOMAXPROCS(0) - 1)
	for {
		n := rawCalls.Load()
		if n >= limit {
			return false
		}
		if rawCalls.CompareAndSwap(n, n+1) {
			return true
		}
	}
}

func releaseRaw() { rawCalls.Add(-1) }

// rawMade counts the raw calls made (for tests: which path ran).
var rawMade atomic.Uint64

// word64: pwrite's offset fits one argument register (32-bit Linux splits
// it in two; there WriteAt stays os.File's).
const word64 = ^uintptr(0)>>63 == 1

func (f *osFile) initSync() {
	f.syncFn = func(fd uintptr) {
		raw := !f.plain && acquireRaw()
		if raw {
			rawMade.Add(1)
		}
		for {
			if raw {
				f.syncErr = nil
				if _, _, e := syscall.RawSyscall(syscall.SYS_FDATASYNC, fd, 0, 0); e != 0 {
					f.syncErr = e
				}
			} else {
				f.syncErr = syscall.Fdatasync(int(fd))
			}
			if f.syncErr != syscall.EINTR {
				break
			}
		}
		if raw {
			releaseRaw()
		}
	}
}

// WriteAt is pwrite(2), raw when a slot is free (see rawCalls), else
// os.File's; the same result either way (a *os.PathError carrying the
// errno, so ENOSPC stays recognisable).
func (f *osFile) WriteAt(p []byte, off int64) (int, error) {
	if f.plain || !word64 || len(p) == 0 || off < 0 || !acquireRaw() {
		return f.File.WriteAt(p, off)
	}
	defer releaseRaw()
	rawMade.Add(1)
	n := 0
	var errno syscall.Errno
	if cerr := f.raw.Control(func(fd uintptr) {
		for n < len(p) {
			r, _, e := syscall.RawSyscall6(syscall.SYS_PWRITE64, fd, uintptr(unsafe.Pointer(&p[n])), uintptr(len(p)-n), uintptr(off+int64(n)), 0, 0)
			switch {
			case e == syscall.EINTR:
			case e != 0:
				errno = e
				return
			case r == 0:
				errno = syscall.EIO // no progress and no error: never loop on it
				return
			case int(r) > len(p)-n:
				errno = syscall.EIO // more than asked for: never report it
				return
			default:
				n += int(r)
			}
		}
	}); cerr != nil {
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: cerr}
	}
	if errno != 0 {
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: errno}
	}
	return n, nil
}

// datasync is fdatasync(2): it flushes the file's data and the metadata needed
// to read it back (the size), skipping timestamps.
func datasync(f *osFile) error {
	f.syncMu.Lock()
	defer f.syncMu.Unlock()
	if err := f.raw.Control(f.syncFn); err != nil {
		return err
	}
	if err := f.syncErr; err != nil {
		f.syncErr = nil
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
	}
	return nil
}

// syncFileRangeWrite is SYNC_FILE_RANGE_WRITE: start writing the range's dirty
// pages, wait for nothing.
const syncFileRangeWrite = 2

// StartWriteback asks the kernel to start writing n bytes at off to the
// device without waiting for them (sync_file_range(2) with
// SYNC_FILE_RANGE_WRITE). A hint: nothing it writes counts as durable
// until Sync, and a write error shows up there too; the error returned is
// the call's own (a bad range), which the committer ignores.
func (f *osFile) StartWriteback(off, n int64) error {
	var err error
	if cerr := f.raw.Control(func(fd uintptr) {
		err = syscall.SyncFileRange(int(fd), off, n, syncFileRangeWrite)
	}); cerr != nil {
		return cerr
	}
	return err
}
