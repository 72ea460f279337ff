package wal

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// hintFS wraps memFS so that its files record the hints the committer
// gives them: StartWriteback and DropCache calls.
type hintFS struct {
	*memFS
	mu         sync.Mutex
	writebacks map[string][][2]int64 // file name -> (off, n) per StartWriteback
	drops      map[string][][3]int64 // file name -> (off, n, the file's size then) per DropCache
}

func newHintFS() *hintFS {
	return &hintFS{memFS: newMemFS(), writebacks: map[string][][2]int64{}, drops: map[string][][3]int64{}}
}

type hintFile struct {
	File
	fs   *hintFS
	name string
}

func (f *hintFile) StartWriteback(off, n int64) error {
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	f.fs.writebacks[f.name] = append(f.fs.writebacks[f.name], [2]int64{off, n})
	return nil
}

func (f *hintFile) DropCache(off, n int64) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	f.fs.mu.Lock()
	defer f.fs.mu.Unlock()
	f.fs.drops[f.name] = append(f.fs.drops[f.name], [3]int64{off, n, fi.Size()})
	return nil
}

func (w *hintFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := w.memFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &hintFile{File: f, fs: w, name: name}, nil
}

// callsFor returns the calls recorded in calls (writebacks or drops) for
// the file whose name ends in suffix.
func callsFor[C any](w *hintFS, calls map[string][]C, suffix string) []C {
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, c := range calls {
		if strings.HasSuffix(name, suffix) {
			return append([]C(nil), c...)
		}
	}
	return nil
}

// TestLazySyncStartsWritebackAsItWrites: under SyncInterval and SyncNever
// the committer hands each file's records to the device in whole pages
// every writebackStep bytes, contiguously and never past what it wrote, so
// that the syncs it waits for (the interval's, and Seal's at a rollover)
// have little left to do. SyncEveryBatch syncs every cycle and needs no
// hint.
func TestLazySyncStartsWritebackAsItWrites(t *testing.T) {
	entry := bytes.Repeat([]byte("w"), 64<<10)
	for _, mode := range []SyncMode{SyncInterval, SyncNever, SyncEveryBatch} {
		fsys := newHintFS()
		w := openWAL(t, "/d", Options{FS: fsys, Sync: mode, SyncInterval: time.Hour})
		mustCreate(t, w, k1)
		for range 80 { // 5 MiB of records
			mustAppend(t, w, k1, entry)
		}
		size := int64(len(w.fileBytesForTest(t, k1)))
		calls := callsFor(fsys, fsys.writebacks, openName(k1))
		w.Close()
		if mode == SyncEveryBatch {
			if len(calls) != 0 {
				t.Fatalf("SyncEveryBatch started writeback %v", calls)
			}
			continue
		}
		if len(calls) < 4 {
			t.Fatalf("%v: %d StartWriteback calls for %d bytes written, want one per MiB: %v", mode, len(calls), size, calls)
		}
		next := int64(0)
		for _, c := range calls {
			off, n := c[0], c[1]
			if off != next || n < writebackStep || (off+n)%4096 != 0 || off+n > size {
				t.Fatalf("call (%d, %d) after %d: want contiguous whole pages of at least %d within the %d bytes written; all: %v",
					off, n, next, writebackStep, size, calls)
			}
			next = off + n
		}
		if size-next >= writebackStep+4096 {
			t.Fatalf("records up to %d handed to writeback of %d written: a step was skipped", next, size)
		}
	}
}

// TestLazySyncWritebackOnRealFiles: the same on the operating system's
// files: where the platform has the hint (sync_file_range on Linux) the
// kernel accepts the calls the committer makes and refuses a bad range,
// and everything written reads back after a reopen.
func TestLazySyncWritebackOnRealFiles(t *testing.T) {
	dir := t.TempDir()
	f, err := OSFS().OpenFile(filepath.Join(dir, "probe"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if wb, ok := f.(writebacker); ok {
		if _, err := f.WriteAt(bytes.Repeat([]byte("p"), 3*writebackStep), 0); err != nil {
			t.Fatal(err)
		}
		if err := wb.StartWriteback(0, 2*writebackStep); err != nil {
			t.Fatalf("StartWriteback of whole pages: %v", err)
		}
		if err := wb.StartWriteback(-1, writebackStep); err == nil {
			t.Fatal("StartWriteback at a negative offset was accepted: the call is not reaching the kernel")
		}
	}
	f.Close()
	w := openWAL(t, dir, Options{Sync: SyncInterval, SyncInterval: time.Hour})
	mustCreate(t, w, k1)
	want := appendLettered(t, w, k1, 48) // 3 MiB
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = openWAL(t, dir, Options{})
	expectEntries(t, readAll(t, w, k1), want)
	w.Close()
}

// appendLettered appends n 64 KiB entries to key, one append (and, under
// SyncEveryBatch, one sync) each, the i-th filled with the letter 'a'+i%26
// so that a misplaced block shows, and returns them.
func appendLettered(t *testing.T, w *WAL, key SegmentKey, n int) [][]byte {
	t.Helper()
	var entries [][]byte
	for i := range n {
		e := bytes.Repeat([]byte{byte('a' + i%26)}, 64<<10)
		mustAppend(t, w, key, e)
		entries = append(entries, e)
	}
	return entries
}
