package testkit

import (
	"errors"
	"testing"

	"github.com/walrus-go/walrus/testkit/simfs"
	"github.com/walrus-go/walrus/wal"
)

// TestKnownBugKB3WALReopenAppendAt reproduces KB3 without a cluster: after
// the WAL is reopened, AppendAt at a recovered open segment's end fails
// with an offset mismatch that claims the segment ends at 0
// (wal.recoverFile never sets the segment's nextOff, the end AppendAt is
// checked against before it is queued). It is skipped while the bug is
// known; -strict runs it (and it fails until wal is fixed).
func TestKnownBugKB3WALReopenAppendAt(t *testing.T) {
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
	err = appendAt(w, info.Count)
	if err == nil {
		t.Logf("KB3 looks fixed: AppendAt at the recovered end %d works", info.Count)
		return
	}
	var om *wal.OffsetMismatchError
	if !errors.As(err, &om) {
		t.Fatalf("AppendAt after reopen: %v", err)
	}
	msg := "KB3: after reopen Info says %d entries, but AppendAt(%d) fails: %v"
	if !*flagStrict {
		t.Skipf(msg+" (known bug; -strict fails)", info.Count, info.Count, err)
	}
	t.Fatalf(msg, info.Count, info.Count, err)
}
