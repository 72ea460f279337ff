package wal

import "testing"

// Regression tests of WAL bugs the cluster simulator found (docs/testing.md,
// "Findings"), reproduced on the simulated disk without a cluster.

var regressionKey = SegmentKey{Topic: "t", Segment: 1}

// openRegressionWAL opens the WAL at /d/wal on fsys.
func openRegressionWAL(t *testing.T, fsys *memFS) *WAL {
	t.Helper()
	w, err := Open("/d/wal", Options{FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// regressionWALWithTwo opens a WAL on a fresh disk holding regressionKey
// with two entries.
func regressionWALWithTwo(t *testing.T) (*memFS, *WAL) {
	t.Helper()
	fsys := newMemFS()
	w := openRegressionWAL(t, fsys)
	if err := w.Create(regressionKey); err != nil {
		t.Fatal(err)
	}
	if err := appendTwoAt(w, 0); err != nil {
		t.Fatal(err)
	}
	return fsys, w
}

// appendTwoAt appends two entries at offset off of regressionKey and waits.
func appendTwoAt(w *WAL, off uint64) error {
	done := make(chan error, 1)
	w.AppendAt(regressionKey, off, [][]byte{[]byte("first"), []byte("second")}, func(_ uint64, err error) { done <- err })
	return <-done
}

// TestWALReopenAppendAt is the regression test of KB3: after the WAL is
// reopened, AppendAt at a recovered open segment's end must work
// (recoverFile used to leave the segment's nextOff at 0, so it failed
// with "segment ends at 0" forever).
func TestWALReopenAppendAt(t *testing.T) {
	fsys, w := regressionWALWithTwo(t)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = openRegressionWAL(t, fsys)
	defer w.Close()
	info, _ := w.Info(regressionKey)
	if err := appendTwoAt(w, info.Count); err != nil {
		t.Fatalf("after reopen Info says %d entries, but AppendAt(%d) fails: %v", info.Count, info.Count, err)
	}
}

// TestWALRecoveredBytesAreSyncedBeforeSeal is the regression test of KB8:
// bytes a process wrote but never synced (here: the fsync failed and the
// WAL fenced itself), still in the page cache when the process restarts,
// were recovered as durable, and a seal right after did not sync them (the
// recovered segment was not "dirty"). A power cut then tore a sealed file,
// and the WAL refused the disk at the next start.
func TestWALRecoveredBytesAreSyncedBeforeSeal(t *testing.T) {
	fsys, w := regressionWALWithTwo(t)
	fsys.FailSyncs(true)
	if err := appendTwoAt(w, 2); err == nil {
		t.Fatal("append with failing fsync succeeded")
	}
	_ = w.Close() // the process exits; the page cache keeps what it wrote
	fsys.FailSyncs(false)
	w = openRegressionWAL(t, fsys)
	info, _ := w.Info(regressionKey)
	if err := w.Seal(regressionKey, info.Count); err != nil {
		t.Fatal(err)
	}
	_ = w.Close()
	fsys.PowerCutKeeping(func(n int) int { return n / 2 }) // a torn write of what was never synced
	w, err := Open("/d/wal", Options{FS: fsys})
	if err != nil {
		t.Fatalf("KB8 regression: recovered %d entries (some never synced), sealed them, and after a power cut the WAL refuses: %v", info.Count, err)
	}
	w.Close()
}
