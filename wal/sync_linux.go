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
