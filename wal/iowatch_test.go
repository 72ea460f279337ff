package wal

import (
	"testing"
	"testing/synctest"
)

// TestIOWatchCountsWhatWaitsForTheDisk: through Watched, appends, syncs,
// seals and deletes are counted as they start and finish; a sync held in
// the FS shows as a call in progress until it returns; the engine's hints
// still reach a file that takes them.
func TestIOWatchCountsWhatWaitsForTheDisk(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mem := newMemFS()
		var watch IOWatch
		w := openWAL(t, "/d", Options{FS: Watched(mem, &watch)})
		held := holdSyncs(t, mem, openName(k1))
		mustCreate(t, w, k1)
		started, finished := watch.Progress()
		if started == 0 || started != finished {
			t.Fatalf("after Create: %d started, %d finished; want some, all finished", started, finished)
		}
		held.armed.Store(true)
		done := make(chan error, 1)
		go func() {
			_, err := w.Append(k1, [][]byte{[]byte("x")})
			done <- err
		}()
		<-held.started
		synctest.Wait()
		if s, f := watch.Progress(); s != f+1 {
			t.Fatalf("with a sync held: %d started, %d finished; want exactly one in progress", s, f)
		}
		var c StallCounter
		s, f := watch.Progress()
		c.Look(s, f) // the first look sees the finished count move from 0
		for want := 1; want <= 3; want++ {
			if got := c.Look(watch.Progress()); got != want {
				t.Fatalf("look %d at a held sync: %d looks without progress", want, got)
			}
		}
		held.let()
		if err, ok := returned(done); !ok || err != nil {
			t.Fatalf("append after the sync returned: returned %v, err %v", ok, err)
		}
		s, f = watch.Progress()
		if s != f {
			t.Fatalf("after the sync: %d started, %d finished", s, f)
		}
		if got := c.Look(s, f); got != 0 {
			t.Fatalf("after progress: %d looks without progress, want 0", got)
		}
	})
}

// TestStallCounter: only looks in a row with calls in progress and none
// finished count; idle or progress starts over.
func TestStallCounter(t *testing.T) {
	var c StallCounter
	steps := []struct {
		started, finished uint64
		want              int
	}{
		{0, 0, 0}, // idle
		{1, 0, 1}, // one call in progress, nothing finished since
		{1, 0, 2}, // still
		{2, 0, 3}, // another started, still none finished
		{2, 1, 0}, // one finished: progress
		{2, 1, 1}, // the other still in progress
		{2, 2, 0}, // idle again
		{2, 2, 0}, // idle looks never count
		{3, 2, 1}, // a new call
		{9, 8, 0}, // several finished between looks
		{9, 8, 1}, //
		{9, 9, 0}, //
	}
	for i, s := range steps {
		if got := c.Look(s.started, s.finished); got != s.want {
			t.Fatalf("step %d (%d started, %d finished): %d looks, want %d", i, s.started, s.finished, got, s.want)
		}
	}
}

// TestWatchedPassesHints: the engine's writeback and drop hints reach a
// watched file that takes them.
func TestWatchedPassesHints(t *testing.T) {
	fsys := newHintFS()
	var watch IOWatch
	w := openWAL(t, "/d", Options{FS: Watched(fsys, &watch), Sync: SyncNever, DropBehind: 1 << 20})
	mustCreate(t, w, k1)
	entry := make([]byte, 64<<10)
	for range 48 { // 3 MiB
		mustAppend(t, w, k1, entry)
	}
	if len(callsFor(fsys, fsys.writebacks, openName(k1))) == 0 {
		t.Fatal("no writeback hint reached the file through Watched")
	}
	if err := w.Seal(k1, 48); err != nil { // a sync: drops behind it
		t.Fatal(err)
	}
	if len(callsFor(fsys, fsys.drops, openName(k1))) == 0 {
		t.Fatal("no drop hint reached the file through Watched")
	}
}
