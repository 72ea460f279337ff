package testkit

import (
	"testing"

	"github.com/walrus-go/walrus/testkit/simfs"
	"github.com/walrus-go/walrus/wal"
)

// TestWALReopenAppendAt is the regression test of KB3 (found by the
// simulator, fixed on main): after the WAL is reopened, AppendAt at a
// recovered open segment's end must work (wal.recoverFile used to leave the
// segment's nextOff at 0, so it failed with "segment ends at 0" forever).
func TestWALReopenAppendAt(t *testing.T) {
	fs := simfs.New()
	key := wal.SegmentKey{Topic: "t", Segment: 1}
	w, err := wal.Open("/d/wal", wal.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Create(key); err != nil {
		t.Fatal(err)
	}
	appendAt := func(w *wal.WAL, off uint64) error {
		done := make(chan error, 1)
		w.AppendAt(key, off, [][]byte{[]byte("a"), []byte("b")}, func(_ uint64, err error) { done <- err })
		return <-done
	}
	if err := appendAt(w, 0); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w, err = wal.Open("/d/wal", wal.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	info, _ := w.Info(key)
	if err := appendAt(w, info.Count); err != nil {
		t.Fatalf("after reopen Info says %d entries, but AppendAt(%d) fails: %v", info.Count, info.Count, err)
	}
}
