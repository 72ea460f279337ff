//go:build !linux

package wal

import (
	"errors"
	"os"
)

func (f *osFile) initSync() {}

// datasync falls back to fsync (File.Sync) where fdatasync is not available.
func datasync(f *osFile) error { return f.File.Sync() }

// preallocate is not available here: the engine appends as is.
func preallocate(f *os.File, off, n int64) error { return errors.ErrUnsupported }
