package wal

import (
	"bytes"
	"errors"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// TestDiskFull: ENOSPC in the middle of a batch write fails that batch with
// ErrDiskFull, rolls the file back to its last good size (so nothing of the
// batch is visible or recovered), keeps earlier data intact, and appends
// succeed again once space returns.
func TestDiskFull(t *testing.T) {
	fsys := newMemFS()
	w := openWAL(t, "/d", Options{FS: fsys})
	k2 := SegmentKey{"other", 0}
	mustCreate(t, w, k1)
	mustCreate(t, w, k2)
	var want [][]byte
	for i := uint64(0); i < 20; i++ {
		want = append(want, payload("full", i, 100))
	}
	mustAppend(t, w, k1, want...)
	mustAppend(t, w, k2, []byte("k2"))
	file := "/d/" + openName(k1)
	before := fsys.fileBytes(file)

	for _, keep := range []func(int) int{func(n int) int { return n / 2 }, func(int) int { return 0 }, func(n int) int { return n - 1 }} {
		fsys.setWriteFault(func(name string, p []byte) (int, error) {
			if strings.HasSuffix(name, openName(k1)) {
				return keep(len(p)), syscall.ENOSPC
			}
			return len(p), nil
		})
		_, err := w.Append(k1, [][]byte{payload("lost", 0, 300), payload("lost", 1, 300)})
		expectErr(t, err, ErrDiskFull)
		expectErr(t, err, syscall.ENOSPC)
		if got := fsys.fileBytes(file); !bytes.Equal(got, before) {
			t.Fatalf("file not rolled back: %d bytes, had %d", len(got), len(before))
		}
		if fsys.syncedLen(file) != len(before) {
			t.Fatal("rollback not synced")
		}
		// Other segments are unaffected.
		mustAppend(t, w, k2, []byte("k2"))
		expectEntries(t, readAll(t, w, k1), want)
		if info, _ := w.Info(k1); info.Count != 20 {
			t.Fatalf("count %d after failed append", info.Count)
		}
	}
	// AppendAt after the failure sees the rolled-back end.
	fsys.setWriteFault(nil)
	ch := make(chan error, 1)
	w.AppendAt(k1, 20, [][]byte{payload("full", 20, 100)}, func(_ uint64, err error) { ch <- err })
	if err := <-ch; err != nil {
		t.Fatalf("append after space returned: %v", err)
	}
	want = append(want, payload("full", 20, 100))
	expectEntries(t, readAll(t, w, k1), want)
	// A crash now recovers exactly the acknowledged entries.
	w2 := openWAL(t, "/d", Options{FS: fsys.crash(nil)})
	expectEntries(t, readAll(t, w2, k1), want)
}

// TestDiskFullQueuedAppendAt: an AppendAt queued behind an append that then
// fails with ENOSPC fails with a mismatch instead of leaving a gap.
func TestDiskFullQueuedAppendAt(t *testing.T) {
	fsys := newMemFS()
	w := openWAL(t, "/d", Options{FS: fsys})
	mustCreate(t, w, k1)
	fsys.setWriteFault(func(name string, p []byte) (int, error) { return 0, syscall.ENOSPC })
	errs := make(chan error, 2)
	// Whether or not the two land in one batch, the second must not succeed:
	// either it is checked against the rolled-back end (mismatch) or it hits
	// the full disk itself.
	w.AppendAt(k1, 0, [][]byte{[]byte("a")}, func(_ uint64, err error) { errs <- err })
	w.AppendAt(k1, 1, [][]byte{[]byte("b")}, func(_ uint64, err error) { errs <- err })
	expectErr(t, <-errs, ErrDiskFull)
	if err := <-errs; !errors.Is(err, ErrOffsetMismatch) && !errors.Is(err, ErrDiskFull) {
		t.Fatalf("second AppendAt: %v", err)
	}
	fsys.setWriteFault(nil)
	if info, _ := w.Info(k1); info.Count != 0 {
		t.Fatalf("count %d", info.Count)
	}
	w.AppendAt(k1, 0, [][]byte{[]byte("a")}, func(_ uint64, err error) { errs <- err })
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
}

func TestDiskFullOnCreate(t *testing.T) {
	fsys := newMemFS()
	w := openWAL(t, "/d", Options{FS: fsys})
	fsys.setWriteFault(func(string, []byte) (int, error) { return 3, syscall.ENOSPC })
	err := w.Create(k1)
	expectErr(t, err, ErrDiskFull)
	if names := fsys.names(); len(names) != 0 {
		t.Fatalf("failed Create left %v", names)
	}
	fsys.setWriteFault(nil)
	mustCreate(t, w, k1)
	mustAppend(t, w, k1, []byte("x"))
}

// TestSyncFailureFences: a failed fsync fails its batch with ErrFenced, and
// every later write too; reads of durable data keep working.
func TestSyncFailureFences(t *testing.T) {
	fsys := newMemFS()
	w := openWAL(t, "/d", Options{FS: fsys})
	k2 := SegmentKey{"other", 0}
	mustCreate(t, w, k1)
	mustCreate(t, w, k2)
	mustAppend(t, w, k1, []byte("durable"))
	fsys.setSyncFault(func(name string) error {
		if strings.HasSuffix(name, openName(k1)) {
			return syscall.EIO
		}
		return nil
	})
	_, err := w.Append(k1, [][]byte{[]byte("unknown fate")})
	expectErr(t, err, ErrFenced)
	expectErr(t, err, syscall.EIO)
	fsys.setSyncFault(nil) // even with the disk "healthy" again, stay fenced

	_, err = w.Append(k2, [][]byte{[]byte("x")})
	expectErr(t, err, ErrFenced)
	ch := make(chan error, 2)
	w.AppendAsync(k2, [][]byte{[]byte("x")}, func(_ uint64, err error) { ch <- err })
	expectErr(t, <-ch, ErrFenced)
	w.AppendAt(k2, 0, [][]byte{[]byte("x")}, func(_ uint64, err error) { ch <- err })
	expectErr(t, <-ch, ErrFenced)
	expectErr(t, w.Create(SegmentKey{"new", 0}), ErrFenced)
	expectErr(t, w.Seal(k2, 0), ErrFenced)
	expectErr(t, w.Truncate(k1, 0), ErrFenced)
	expectErr(t, w.Delete(k2), ErrFenced)

	got, err := w.Read(k1, 0, 10, 0)
	if err != nil || len(got) != 1 || string(got[0]) != "durable" {
		t.Fatalf("read after fence: %q %v (the unsynced entry must not be visible)", got, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopening is how an operator clears the fence.
	w2 := openWAL(t, "/d", Options{FS: fsys})
	mustAppend(t, w2, k2, []byte("after reopen"))
}

// TestWriteErrorFences: a write error other than ENOSPC fences too.
func TestWriteErrorFences(t *testing.T) {
	fsys := newMemFS()
	w := openWAL(t, "/d", Options{FS: fsys})
	mustCreate(t, w, k1)
	fsys.setWriteFault(func(string, []byte) (int, error) { return 0, syscall.EIO })
	_, err := w.Append(k1, [][]byte{[]byte("x")})
	expectErr(t, err, ErrFenced)
	fsys.setWriteFault(nil)
	_, err = w.Append(k1, [][]byte{[]byte("x")})
	expectErr(t, err, ErrFenced)
}

// TestSyncFailureParallel: with several files in one batch, a failure of one
// sync fences the whole batch.
func TestSyncFailureParallel(t *testing.T) {
	fsys := newMemFS()
	w := openWAL(t, "/d", Options{FS: fsys})
	keys := []SegmentKey{{"a", 0}, {"b", 0}, {"c", 0}, {"d", 0}}
	for _, k := range keys {
		mustCreate(t, w, k)
	}
	fsys.setSyncFault(func(name string) error {
		if strings.Contains(name, "/c.") {
			return syscall.EIO
		}
		return nil
	})
	var wg sync.WaitGroup
	var fencedN int
	var mu sync.Mutex
	for i := 0; i < 40; i++ {
		wg.Add(1)
		w.AppendAsync(keys[i%4], [][]byte{[]byte("x")}, func(_ uint64, err error) {
			defer wg.Done()
			if errors.Is(err, ErrFenced) {
				mu.Lock()
				fencedN++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if fencedN == 0 {
		t.Fatal("no append fenced")
	}
	_, err := w.Append(keys[0], [][]byte{[]byte("x")})
	expectErr(t, err, ErrFenced)
}
