//go:build !linux

package wal

func (f *osFile) initSync() {}

// datasync falls back to fsync (File.Sync) where fdatasync is not available.
func datasync(f *osFile) error { return f.File.Sync() }
