//go:build linux

package wal

import (
	"os"
	"syscall"
)

func (f *osFile) initSync() {
	f.syncFn = func(fd uintptr) {
		for {
			f.syncErr = syscall.Fdatasync(int(fd))
			if f.syncErr != syscall.EINTR {
				return
			}
		}
	}
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
