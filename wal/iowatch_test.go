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
		c.Look(s, f) // the first look has nothing to compare with
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

// TestStallCounter: Look counts only looks in a row with calls in
// progress and none finished; Quiet only looks in a row with none in
// progress and none finished; any progress starts both over.
func TestStallCounter(t *testing.T) {
	var c StallCounter
	steps := []struct {
		started, finished uint64
		stalled, quiet    int
	}{
		{0, 0, 0, 0}, // the first look: nothing to compare with
		{0, 0, 0, 1}, // idle
		{0, 0, 0, 2}, // still idle
		{1, 0, 1, 0}, // one call in progress, nothing finished since
		{1, 0, 2, 0}, // still
		{2, 0, 3, 0}, // another started, still none finished
		{2, 1, 0, 0}, // one finished: progress
		{2, 1, 1, 0}, // the other still in progress
		{2, 2, 0, 0}, // it finished: progress, idle now
		{2, 2, 0, 1}, // idle
		{3, 2, 1, 0}, // a new call
		{9, 8, 0, 0}, // several finished between looks
		{9, 8, 1, 0},
		{9, 9, 0, 0},
		{9, 9, 0, 1},
	}
	for i, s := range steps {
		if got := c.Look(s.started, s.finished); got != s.stalled || c.Quiet() != s.quiet {
			t.Fatalf("step %d (%d started, %d finished): %d stalled looks, %d quiet; want %d, %d",
				i, s.started, s.finished, got, c.Quiet(), s.stalled, s.quiet)
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
