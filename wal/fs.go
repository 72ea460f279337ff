package wal

import (
	"io"
	"os"
	"sync"
	"syscall"
)

// FS is the seam through which the engine reaches every file. Production uses
// OSFS; the testkit supplies a crashable in-memory FS in which a crash keeps
// only what was made durable by Sync and SyncDir.
//
// The engine keeps all of its files directly inside one directory (the dir
// given to Open). Implementations must be safe for concurrent use: the
// committer goroutine writes and syncs while readers call ReadAt on the same
// File, and Sync may run on several files at once from different goroutines.
// The engine never calls two methods of one File concurrently except ReadAt,
// which may run alongside anything but Close and Truncate, and Sync, which
// may run alongside WriteAt (SyncInterval syncs beside the writes).
type FS interface {
	// OpenFile opens name with os-style flags. The engine uses O_RDONLY,
	// O_RDWR, O_CREATE and O_EXCL. O_CREATE|O_EXCL must fail with an error satisfying
	// errors.Is(err, fs.ErrExist) when name exists.
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	// Remove deletes a file. It is durable only after SyncDir on its directory.
	Remove(name string) error
	// Rename atomically replaces newpath with oldpath: after a crash exactly
	// one of the two names refers to the file. Durable only after SyncDir.
	Rename(oldpath, newpath string) error
	// MkdirAll creates path and any missing parents; it succeeds if path
	// already is a directory.
	MkdirAll(path string, perm os.FileMode) error
	// ReadDir lists a directory (any order; the engine sorts).
	ReadDir(name string) ([]os.DirEntry, error)
	// SyncDir makes every create, rename and remove done so far in the
	// directory name durable. It says nothing about file contents (see
	// File.Sync).
	SyncDir(name string) error
}

// File is an open file of an FS.
type File interface {
	// ReadAt is pread: it must be safe to call concurrently with WriteAt
	// and Sync.
	io.ReaderAt
	// WriteAt is pwrite: writing past the end grows the file (a gap reads
	// as zeros). A short write must return a non-nil error. On ENOSPC the
	// error must satisfy errors.Is(err, syscall.ENOSPC).
	io.WriterAt
	io.Closer
	// Sync makes every prior WriteAt and Truncate of this file durable:
	// after it returns nil, a crash keeps the file's contents and size as
	// they were when it was called (of a WriteAt running alongside it, a
	// crash may keep any part, as of one made after it). Of what was
	// written after the last Sync, a crash may keep any part: a prefix of
	// what grew the file, and, where bytes were overwritten, any subset of
	// their 512-byte sectors (so the engine's records carry what recovery
	// needs to tell such a tear from damage). An error means the durable
	// state is unknown (the engine fences itself).
	Sync() error
	// Truncate sets the file's size; durable only after Sync.
	Truncate(size int64) error
	// Stat reports at least the current Size.
	Stat() (os.FileInfo, error)
}

// OSFS returns the operating system's file system. Its File.Sync is
// fdatasync(2) where available (Linux) and fsync elsewhere; SyncDir opens the
// directory and fsyncs it. On Linux a File's WriteAt and Sync are raw
// system calls, a bounded number at a time (sync_linux.go says why and
// what it costs); OSFSWith can turn that off.
func OSFS() FS { return osFS{} }

// OSFSOptions tunes the file system OSFSWith returns.
type OSFSOptions struct {
	// PlainSyscalls makes every WriteAt and Sync an ordinary system call,
	// as os.File makes them (walrus --plain-syscalls).
	PlainSyscalls bool
}

// OSFSWith is OSFS with options.
func OSFSWith(o OSFSOptions) FS { return osFS{plain: o.PlainSyscalls} }

type osFS struct{ plain bool }

func (fs osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return newOSFile(f, fs.plain)
}

func (osFS) Remove(name string) error                     { return os.Remove(name) }
func (osFS) Rename(oldpath, newpath string) error         { return os.Rename(oldpath, newpath) }
func (osFS) MkdirAll(path string, perm os.FileMode) error { return os.MkdirAll(path, perm) }
func (osFS) ReadDir(name string) ([]os.DirEntry, error)   { return os.ReadDir(name) }

func (osFS) SyncDir(name string) error {
	d, err := os.Open(name)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// writebacker is a File that can start writing a range to the device
// without waiting (osFile on Linux). Optional, and a hint only: the WAL
// counts nothing durable before Sync returns.
type writebacker interface {
	StartWriteback(off, n int64) error
}

// cacheDropper is a File that can evict a range from the page cache
// (osFile on Linux). Optional, and a hint only.
type cacheDropper interface {
	DropCache(off, n int64) error
}

// osFile is an *os.File whose Sync is fdatasync where the platform has it.
type osFile struct {
	*os.File
	raw   syscall.RawConn
	plain bool // no raw system calls (OSFSOptions.PlainSyscalls)

	syncMu  sync.Mutex       // serialises Sync calls on this file (they share syncErr)
	syncErr error            // result of syncFn
	syncFn  func(fd uintptr) // built once, so Sync does not allocate
}

func newOSFile(f *os.File, plain bool) (*osFile, error) {
	raw, err := f.SyscallConn()
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	of := &osFile{File: f, raw: raw, plain: plain}
	of.initSync()
	return of, nil
}

func (f *osFile) Sync() error { return datasync(f) }
