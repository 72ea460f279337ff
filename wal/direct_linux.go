//go:build linux

package wal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"unsafe"
)

// directBlock is the unit of O_DIRECT writes: offsets, lengths and buffer
// addresses are multiples of it (4 KiB covers every logical block size
// ext4 and xfs use).
const directBlock = 4096

// DirectFS returns the operating system's file system with appends made
// durable by writes through a second descriptor opened O_DIRECT|O_DSYNC
// instead of write(2) then fdatasync(2): the data goes from the WAL's
// buffer to the device without a copy into the page cache or the
// writeback machinery, and is durable when the write returns. On this
// project's machines that is about 20 µs less CPU per durable write and
// 1.3x the durable writes a second (BENCHMARKS.md, "Durable writes
// without fdatasync").
//
// Only writes that stay inside the file's length go direct: each rewrites
// the whole 4 KiB blocks it touches, the bytes around the new ones taken
// from the last block written (kept in memory) or read back. Writes that
// grow the file (headers, the zeros of Options.Prealloc) go through the
// page cache as with OSFS, and the next Sync fdatasyncs them; a Sync with
// only direct writes since the last one does nothing. So it pays off with
// Options.Prealloc, where most appends land in zeros written ahead, and
// with SyncEveryBatch: a direct write waits for the device, which the lazy
// modes do not want.
//
// Reads use the ordinary descriptor (the kernel drops cached pages a
// direct write covers, so they read what it wrote). dir is probed: a file
// system that refuses O_DIRECT (tmpfs) gets an error here rather than on
// the first append.
func DirectFS(dir string) (FS, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	probe := filepath.Join(dir, ".direct-probe")
	f, err := os.OpenFile(probe, os.O_RDWR|os.O_CREATE|syscall.O_DIRECT|syscall.O_DSYNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("wal: %s does not take O_DIRECT writes: %w", dir, err)
	}
	_ = f.Close()
	if err := os.Remove(probe); err != nil {
		return nil, err
	}
	return directFS{}, nil
}

type directFS struct{ osFS }

func (directFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	of, err := newOSFile(f)
	if err != nil || flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return of, err // read only: nothing to write direct
	}
	d, err := os.OpenFile(name, os.O_WRONLY|syscall.O_DIRECT|syscall.O_DSYNC, 0)
	if err != nil {
		_ = f.Close()
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		_ = f.Close()
		_ = d.Close()
		return nil, err
	}
	return &directFile{osFile: of, direct: d, size: st.Size(), lastAt: -1}, nil
}

// directFile is a segment file written through two descriptors: the
// embedded ordinary one for reads, growth, truncation and fdatasync, and
// direct for durable writes inside the file's length. The engine calls
// WriteAt, Truncate, Sync and Close from one goroutine at a time, so the
// fields below need no lock (ReadAt, which may run alongside, uses none of
// them).
type directFile struct {
	*osFile
	direct *os.File

	size     int64  // the file's length, as this file's writes and truncations made it
	unsynced bool   // written or truncated through the ordinary descriptor since the last Sync
	last     []byte // the last block written direct (directBlock bytes, aligned), at lastAt
	lastAt   int64  // -1: none kept
	scratch  []byte // aligned buffer the direct writes are assembled in

	directWrites, datasyncs int // for tests: which way the writes went
}

func (f *directFile) WriteAt(p []byte, off int64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	end := off + int64(len(p))
	first := off &^ (directBlock - 1)
	stop := (end + directBlock - 1) &^ (directBlock - 1)
	if stop > f.size {
		// grows the file: through the page cache, made durable by Sync
		n, err := f.osFile.WriteAt(p, off)
		f.size = max(f.size, off+int64(n))
		f.unsynced = true
		f.patchLast(p[:n], off)
		return n, err
	}
	buf := f.buffer(int(stop - first))
	if off > first {
		if err := f.fillBlock(buf[:directBlock], first); err != nil {
			return 0, err
		}
	}
	if end < stop && (stop-directBlock > first || off == first) {
		if err := f.fillBlock(buf[len(buf)-directBlock:], stop-directBlock); err != nil {
			return 0, err
		}
	}
	copy(buf[off-first:], p)
	f.directWrites++
	if err := pwriteAll(f.direct, buf, first); err != nil {
		f.lastAt = -1 // what the device holds of these blocks is unknown
		return 0, err
	}
	if f.last == nil {
		f.last = alignedBuf(directBlock)
	}
	copy(f.last, buf[len(buf)-directBlock:])
	f.lastAt = stop - directBlock
	return len(p), nil
}

// fillBlock copies the file's block at at into b: from the block kept in
// memory when it is that one, else read back.
func (f *directFile) fillBlock(b []byte, at int64) error {
	if at == f.lastAt {
		copy(b, f.last)
		return nil
	}
	if err := readFull(f.osFile, b, at); err != nil {
		return fmt.Errorf("read back block at %d of %s: %w", at, f.Name(), err)
	}
	return nil
}

// patchLast keeps the block in memory equal to the file after an ordinary
// write of p at off.
func (f *directFile) patchLast(p []byte, off int64) {
	if f.lastAt < 0 || off >= f.lastAt+directBlock || off+int64(len(p)) <= f.lastAt {
		return
	}
	lo := max(off, f.lastAt)
	hi := min(off+int64(len(p)), f.lastAt+directBlock)
	copy(f.last[lo-f.lastAt:hi-f.lastAt], p[lo-off:hi-off])
}

// buffer returns an aligned n-byte scratch buffer.
func (f *directFile) buffer(n int) []byte {
	if cap(f.scratch) < n {
		f.scratch = alignedBuf(max(n, 64<<10))
	}
	return f.scratch[:n]
}

func (f *directFile) Truncate(size int64) error {
	f.lastAt = -1 // simpler than cutting the block kept; the next write reads it back
	f.unsynced = true
	err := f.osFile.Truncate(size)
	if err == nil {
		f.size = size
	} else if st, serr := f.osFile.Stat(); serr == nil {
		f.size = st.Size()
	}
	return err
}

// Sync makes the ordinary descriptor's writes and truncations durable; the
// direct writes already are.
func (f *directFile) Sync() error {
	if !f.unsynced {
		return nil
	}
	f.datasyncs++
	if err := datasync(f.osFile); err != nil {
		return err
	}
	f.unsynced = false
	return nil
}

func (f *directFile) Close() error {
	return errors.Join(f.direct.Close(), f.osFile.Close())
}

// pwriteAll writes b at off, going on after short writes.
func pwriteAll(f *os.File, b []byte, off int64) error {
	for len(b) > 0 {
		n, err := f.WriteAt(b, off)
		if err != nil {
			return err
		}
		b, off = b[n:], off+int64(n)
	}
	return nil
}

// alignedBuf returns n zero bytes whose address is a multiple of
// directBlock, as O_DIRECT asks of a buffer.
func alignedBuf(n int) []byte {
	b := make([]byte, n+directBlock)
	skip := (directBlock - int(uintptr(unsafe.Pointer(&b[0]))&(directBlock-1))) & (directBlock - 1)
	return b[skip : skip+n : skip+n]
}
