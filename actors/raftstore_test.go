package actors

import (
	"runtime"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/walrus-go/walrus/wal"
)

// heldLogStore is a raft log whose writes wait on release, as on a disk
// that stopped answering.
type heldLogStore struct {
	*raft.InmemStore
	release chan struct{}
}

func (s heldLogStore) StoreLogs(logs []*raft.Log) error {
	<-s.release
	return s.InmemStore.StoreLogs(logs)
}

// TestWatchedRaftStoreCountsWrites: a raft log write held by the disk shows
// in the node's disk watch as a call in progress and none finished (what
// the stall watchdog looks for), and as finished once it returns; reads
// are not counted, so they never pass for progress.
func TestWatchedRaftStoreCountsWrites(t *testing.T) {
	w := &wal.IOWatch{}
	mem := raft.NewInmemStore()
	held := heldLogStore{InmemStore: mem, release: make(chan struct{})}
	s := watchedRaftStore{log: held, stable: mem, w: w}

	if err := s.SetUint64([]byte("CurrentTerm"), 3); err != nil {
		t.Fatal(err)
	}
	if started, finished := w.Progress(); started != 1 || finished != 1 {
		t.Fatalf("after SetUint64: %d started, %d finished; want 1 and 1", started, finished)
	}

	done := make(chan error)
	go func() { done <- s.StoreLogs([]*raft.Log{{Index: 1, Term: 3}}) }()
	for deadline := time.Now().Add(10 * time.Second); ; runtime.Gosched() {
		if started, _ := w.Progress(); started == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a held raft log write never showed as a call in progress")
		}
	}
	if _, err := s.GetUint64([]byte("CurrentTerm")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LastIndex(); err != nil {
		t.Fatal(err)
	}
	if started, finished := w.Progress(); started != 2 || finished != 1 {
		t.Fatalf("with a log write held: %d started, %d finished; want 2 and 1 (reads not counted)", started, finished)
	}
	close(held.release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if started, finished := w.Progress(); started != 2 || finished != 2 {
		t.Fatalf("after the write returned: %d started, %d finished; want 2 and 2", started, finished)
	}
	var l raft.Log
	if err := s.GetLog(1, &l); err != nil || l.Term != 3 {
		t.Fatalf("GetLog(1) = %+v, %v: the write did not reach the store", l, err)
	}
}
