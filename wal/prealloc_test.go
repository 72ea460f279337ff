package wal

import (
	"bytes"
	"os"
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
	mustAppend(t, w, k1, bytes.Repeat([]byte("x"), 5000)) // past the first step
	if got := len(w.fileBytesForTest(t, k1)); got != 8192 {
		t.Fatalf("file is %d bytes after growing past a step, want 8192", got)
	}
	if err := w.Seal(k1, 3); err != nil {
		t.Fatal(err)
	}
	if got, want := len(w.fileBytesForTest(t, k1)), records+recordHeader+5000; got != want {
		t.Fatalf("sealed file is %d bytes, its records end at %d", got, want)
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
