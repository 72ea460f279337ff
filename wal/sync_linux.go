//go:build linux

package wal

import (
	"os"
	"syscall"
)

// datasync is fdatasync(2): it flushes the file's data and the metadata needed
// to read it back (the size), skipping timestamps.
func datasync(f *osFile) error {
	var serr error
	err := f.raw.Control(func(fd uintptr) {
		for {
			serr = syscall.Fdatasync(int(fd))
			if serr != syscall.EINTR {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	if serr != nil {
		return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: serr}
	}
	return nil
}
