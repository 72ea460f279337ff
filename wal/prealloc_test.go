package wal

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// TestOSFSPreallocatesAppendedFiles: on Linux an open segment file is
// allocated ahead of its records (so that an fdatasync after an append does
// not have to commit a size change); a crash leaves that space behind as
// zeros, which recovery drops without losing a record; Seal and a clean
// Close leave every file exactly its records.
func TestOSFSPreallocatesAppendedFiles(t *testing.T) {
	dir := t.TempDir()
	w := openWAL(t, dir, Options{})
	mustCreate(t, w, k1)
	var want [][]byte
	for i := range 300 {
		e := []byte(fmt.Sprintf("entry-%04d-%s", i, make([]byte, 100)))
		want = append(want, e)
		mustAppend(t, w, k1, e)
	}
	info, err := w.Info(k1)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, openName(k1))
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS == "linux" && (st.Size() <= info.Bytes || st.Size()%preallocChunk != 0) {
		t.Fatalf("open file is %d bytes for %d bytes of records: not allocated ahead in %d-byte steps",
			st.Size(), info.Bytes, preallocChunk)
	}

	// A crash now: the file as it is on disk, allocated space and all.
	crashed, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	w2, dir2, err := reopenDamaged(t, openName(k1), crashed)
	if err != nil {
		t.Fatalf("recovery of a file ending in allocated space: %v", err)
	}
	expectEntries(t, readAll(t, w2, k1), want)
	if st, _ := os.Stat(filepath.Join(dir2, openName(k1))); st.Size() < info.Bytes {
		t.Fatalf("recovered file is %d bytes, records take %d", st.Size(), info.Bytes)
	}
	// it takes appends again, after its last record
	more := []byte("after the crash")
	if first := mustAppend(t, w2, k1, more); first != uint64(len(want)) {
		t.Fatalf("append after recovery at offset %d, want %d", first, len(want))
	}
	if err := w2.Close(); err != nil {
		t.Fatal(err)
	}
	// a clean close leaves exactly the records
	w3 := openWAL(t, dir2, Options{})
	expectEntries(t, readAll(t, w3, k1), append(want, more))
	info3, _ := w3.Info(k1)
	if err := w3.Close(); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(filepath.Join(dir2, openName(k1))); st.Size() != info3.Bytes {
		t.Fatalf("after a clean close the file is %d bytes, its records %d", st.Size(), info3.Bytes)
	}

	// Seal cuts the allocated space: a sealed file is exactly its records.
	if err := w.Seal(k1, uint64(len(want))); err != nil {
		t.Fatal(err)
	}
	sealed := filepath.Join(dir, sealedName(k1, uint64(len(want))))
	if st, err := os.Stat(sealed); err != nil {
		t.Fatal(err)
	} else if st.Size() != info.Bytes {
		t.Fatalf("sealed file is %d bytes, its records %d", st.Size(), info.Bytes)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w4 := openWAL(t, dir, Options{})
	defer w4.Close()
	expectEntries(t, readAll(t, w4, k1), want)
}
