package wal

import (
	"bytes"
	"os"
	"sync"
	"syscall"
	"testing"
)

// TestPreallocWritesAheadAndSealCutsIt: with Options.Prealloc an open
// segment's file is longer than its records (zeros written ahead, in
// steps), a reopen keeps those zeros and appends over them, and Seal cuts
// the file to its records.
func TestPreallocWritesAheadAndSealCutsIt(t *testing.T) {
	fsys := newMemFS()
	opts := Options{FS: fsys, Prealloc: 4096}
	w := openWAL(t, "/d", opts)
	mustCreate(t, w, k1)
	mustAppend(t, w, k1, []byte("one"), []byte("two"))
	name := "/d/" + openName(k1)
	records := headerLen(k1.Topic) + 2*recordHeader + 6
	if got := fsys.fileBytes(name); len(got) != 4096 || bytes.ContainsFunc(got[records:], func(r rune) bool { return r != 0 }) {
		t.Fatalf("open file is %d bytes, want 4096 with zeros after the records (%d)", len(got), records)
	}
	// a crash keeps the synced zeros; recovery finds the records' end in them
	w.Close()
	w = openWAL(t, "/d", Options{FS: fsys.crash(nil), Prealloc: 4096})
	expectEntries(t, readAll(t, w, k1), [][]byte{[]byte("one"), []byte("two")})
	mustAppend(t, w, k1, []byte("three"), bytes.Repeat([]byte("x"), 4000)) // past the first step
	grown := records + 2*recordHeader + 4005
	if got := len(w.fileBytesForTest(t, k1)); got != 8192 {
		t.Fatalf("file is %d bytes after a round under a step passed the first one, want 8192", got)
	}
	// a round of a step or more leaves no zeros after it: the next such
	// round would pass them anyway
	mustAppend(t, w, k1, bytes.Repeat([]byte("y"), 5000))
	grown += recordHeader + 5000
	if got := len(w.fileBytesForTest(t, k1)); got != grown {
		t.Fatalf("file is %d bytes after a round of more than a step, want its records' %d", got, grown)
	}
	mustAppend(t, w, k1, []byte("four")) // a small round writes ahead again
	grown += recordHeader + 4
	if got, want := len(w.fileBytesForTest(t, k1)), (grown/4096+1)*4096; got != want {
		t.Fatalf("file is %d bytes after a small round, want %d (to the next step)", got, want)
	}
	if err := w.Seal(k1, 6); err != nil {
		t.Fatal(err)
	}
	if got := len(w.fileBytesForTest(t, k1)); got != grown {
		t.Fatalf("sealed file is %d bytes, its records end at %d", got, grown)
	}
	w.Close()
}

// TestPreallocDiskFullFallsBackToAppending: when the zeros do not fit but
// the records do, the append succeeds (the disk is not full for it).
func TestPreallocDiskFullFallsBackToAppending(t *testing.T) {
	fsys := newMemFS()
	w := openWAL(t, "/d", Options{FS: fsys, Prealloc: 1 << 20})
	mustCreate(t, w, k1)
	fsys.setWriteFault(func(name string, p []byte) (int, error) {
		if len(p) >= 4096 && !bytes.ContainsFunc(p, func(r rune) bool { return r != 0 }) {
			return len(p) / 2, syscall.ENOSPC // the zeros: half fit
		}
		return len(p), nil
	})
	mustAppend(t, w, k1, []byte("fits"))
	fsys.setWriteFault(nil)
	if got, want := len(w.fileBytesForTest(t, k1)), headerLen(k1.Topic)+recordHeader+4; got != want {
		t.Fatalf("file is %d bytes, want the records' %d (the partial zeros cut)", got, want)
	}
	w.Close()
	w = openWAL(t, "/d", Options{FS: fsys.crash(nil)})
	expectEntries(t, readAll(t, w, k1), [][]byte{[]byte("fits")})
	w.Close()
}

// TestPreallocTornWriteKeepsLaterSector: in space written ahead, a crash
// can keep a later sector of an unsynced write and lose an earlier one.
// Recovery must cut that write as torn (its records say they were written
// while it was unsynced) and keep everything synced; damage to a synced
// record followed by a record written after that sync stays corruption.
func TestPreallocTornWriteKeepsLaterSector(t *testing.T) {
	fsys := newMemFS()
	w := openWAL(t, "/d", Options{FS: fsys, Prealloc: 1 << 16})
	mustCreate(t, w, k1)
	mustAppend(t, w, k1, []byte("synced"))
	synced := fsys.fileBytes("/d/" + openName(k1))
	end := headerLen(k1.Topic) + recordHeader + 6
	// an unsynced write of records spanning several sectors
	var big [][]byte
	for i := range 8 {
		big = append(big, bytes.Repeat([]byte{byte('a' + i)}, 300))
	}
	fsys.setSyncFault(func(string) error { return syscall.EIO }) // the write happens, its sync fails
	if _, err := w.Append(k1, big); err == nil {
		t.Fatal("append with a failing sync succeeded")
	}
	fsys.setSyncFault(nil)
	written := fsys.fileBytes("/d/" + openName(k1))
	w.Close()
	// what the disk holds: the synced bytes, plus the unsynced write's
	// sectors from the second one on (the first, holding its start, lost)
	disk := bytes.Clone(synced)
	firstSector := end / 512 * 512
	copy(disk[firstSector+512:], written[firstSector+512:])
	w, _, err := reopenBytes(t, openName(k1), disk)
	if err != nil {
		t.Fatalf("a torn unsynced write was taken for corruption: %v", err)
	}
	expectEntries(t, readAll(t, w, k1), [][]byte{[]byte("synced")})
	w.Close()

	// Damage to a synced record, with a record written after its sync.
	fsys2 := newMemFS()
	w = openWAL(t, "/d", Options{FS: fsys2, Prealloc: 1 << 16})
	mustCreate(t, w, k1)
	mustAppend(t, w, k1, []byte("first"))
	mustAppend(t, w, k1, []byte("second"))
	w.Close()
	data := fsys2.fileBytes("/d/" + openName(k1))
	data[headerLen(k1.Topic)+recordHeader] ^= 1 // in "first"'s payload
	_, _, err = reopenBytes(t, openName(k1), data)
	expectErr(t, err, ErrCorrupt)
}

func (w *WAL) fileBytesForTest(t *testing.T, key SegmentKey) []byte {
	t.Helper()
	s, err := w.lookup(key)
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, st.Size())
	if _, err := s.f.ReadAt(b, 0); err != nil && len(b) > 0 {
		t.Fatal(err)
	}
	return b
}

// reopenBytes opens a WAL over one file holding data, on a fresh memFS.
func reopenBytes(t *testing.T, name string, data []byte) (*WAL, *memFS, error) {
	t.Helper()
	fsys := newMemFS()
	_ = fsys.MkdirAll("/d", 0o755)
	f, _ := fsys.OpenFile("/d/"+name, os.O_RDWR|os.O_CREATE, 0o644)
	_, _ = f.WriteAt(data, 0)
	_ = f.Sync()
	_ = fsys.SyncDir("/d")
	w, err := Open("/d", Options{FS: fsys, Logger: quietLogger})
	return w, fsys, err
}

// writeLogFS wraps memFS so that its files record every WriteAt: where,
// how long, and whether it wrote only zeros.
type writeLogFS struct {
	*memFS
	mu     sync.Mutex
	writes []loggedWrite
}

type loggedWrite struct {
	off, n int64
	zeros  bool
	sync   bool // a Sync, not a write
}

func (f *writeLogFile) Sync() error {
	f.fs.mu.Lock()
	f.fs.writes = append(f.fs.writes, loggedWrite{sync: true})
	f.fs.mu.Unlock()
	return f.File.Sync()
}

type writeLogFile struct {
	File
	fs *writeLogFS
}

func (f *writeLogFile) WriteAt(p []byte, off int64) (int, error) {
	f.fs.mu.Lock()
	f.fs.writes = append(f.fs.writes, loggedWrite{off: off, n: int64(len(p)), zeros: !bytes.ContainsFunc(p, func(r rune) bool { return r != 0 })})
	f.fs.mu.Unlock()
	return f.File.WriteAt(p, off)
}

func (w *writeLogFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := w.memFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &writeLogFile{File: f, fs: w}, nil
}

// TestPreallocZerosOnlyAfterRecords: the zeros written ahead start where
// the round just written ends, so that no round writes over zeros written
// since the last sync (bytes that would reach the page cache twice); they
// end on a step and follow only rounds under a step; a round of a step or
// more is followed by none.
func TestPreallocZerosOnlyAfterRecords(t *testing.T) {
	const step = 4096
	fsys := &writeLogFS{memFS: newMemFS()}
	w := openWAL(t, "/d", Options{FS: fsys, Prealloc: step})
	mustCreate(t, w, k1)
	fsys.mu.Lock()
	fsys.writes = nil // the header's
	fsys.mu.Unlock()
	sizes := []int{10, 3000, 900, 5000, 20, 8000, 9000, 100, 4000, 60, 4070}
	for _, n := range sizes {
		mustAppend(t, w, k1, bytes.Repeat([]byte("r"), n))
	}
	fsys.mu.Lock()
	writes := append([]loggedWrite(nil), fsys.writes...)
	fsys.mu.Unlock()
	var last loggedWrite       // the last round's write
	var unsynced []loggedWrite // zeros written since the last sync
	rounds, zeroed := 0, 0
	for _, wr := range writes {
		switch {
		case wr.sync:
			unsynced = unsynced[:0]
			continue
		case !wr.zeros:
			for _, z := range unsynced {
				if wr.off < z.off+z.n && z.off < wr.off+wr.n {
					t.Fatalf("the round at [%d,%d) writes over zeros written at [%d,%d) since the last sync", wr.off, wr.off+wr.n, z.off, z.off+z.n)
				}
			}
			last = wr
			rounds++
			continue
		}
		unsynced = append(unsynced, wr)
		zeroed++
		if wr.off < last.off+last.n {
			t.Fatalf("zeros at [%d,%d) under the round written at [%d,%d)", wr.off, wr.off+wr.n, last.off, last.off+last.n)
		}
		if last.n >= step {
			t.Fatalf("zeros at [%d,%d) after a round of %d bytes (a step is %d)", wr.off, wr.off+wr.n, last.n, step)
		}
		if (wr.off+wr.n)%step != 0 {
			t.Fatalf("zeros at [%d,%d) do not end on a step", wr.off, wr.off+wr.n)
		}
	}
	if rounds != len(sizes) || zeroed < 4 {
		t.Fatalf("%d rounds written, %d zero writes: want %d rounds and zeros after the small ones that passed a step", rounds, zeroed, len(sizes))
	}
	w.Close()
	w = openWAL(t, "/d", Options{FS: fsys.crash(nil), Prealloc: step})
	got := readAll(t, w, k1)
	if len(got) != len(sizes) {
		t.Fatalf("%d entries read back after a reopen, want %d", len(got), len(sizes))
	}
	for i, e := range got {
		if len(e) != sizes[i] {
			t.Fatalf("entry %d is %d bytes, want %d", i, len(e), sizes[i])
		}
	}
	w.Close()
}
