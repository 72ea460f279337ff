package wal

import (
	"testing"
	"time"
)

// TestSyncEveryBatchIsDurableOnReturn: when Append returns, the entry is
// synced (a crash right then keeps it).
func TestSyncEveryBatchIsDurableOnReturn(t *testing.T) {
	fsys := newMemFS()
	w := openWAL(t, "/d", Options{FS: fsys})
	mustCreate(t, w, k1)
	file := "/d/" + openName(k1)
	for i := uint64(0); i < 20; i++ {
		mustAppend(t, w, k1, payload("e", i, 40))
		if s, n := fsys.syncedLen(file), len(fsys.fileBytes(file)); s != n {
			t.Fatalf("after Append returned: %d of %d bytes synced", s, n)
		}
	}
	w2 := openWAL(t, "/d", Options{FS: fsys.crash(nil)})
	if info, _ := w2.Info(k1); info.Count != 20 {
		t.Fatalf("crash lost acknowledged entries: %d of 20", info.Count)
	}
}

// TestSyncNever: appends are acknowledged and readable after the write, with
// no fsync; a crash (power loss) loses them; Seal and Close sync.
func TestSyncNever(t *testing.T) {
	fsys := newMemFS()
	w := openWAL(t, "/d", Options{FS: fsys, Sync: SyncNever})
	mustCreate(t, w, k1)
	syncs := fsys.syncCount()
	for i := uint64(0); i < 10; i++ {
		mustAppend(t, w, k1, payload("n", i, 40))
	}
	if fsys.syncCount() != syncs {
		t.Fatalf("SyncNever synced %d times", fsys.syncCount()-syncs)
	}
	if got := readAll(t, w, k1); len(got) != 10 {
		t.Fatalf("read %d entries, want 10 (visible after write)", len(got))
	}
	// What SyncNever gives up: an OS crash or power loss loses them.
	lost := openWAL(t, "/d", Options{FS: fsys.crash(nil)})
	if info, _ := lost.Info(k1); info.Count != 0 {
		t.Fatalf("unsynced entries survived a simulated power loss: %d", info.Count)
	}
	// Seal makes them durable.
	if err := w.Seal(k1, 10); err != nil {
		t.Fatal(err)
	}
	kept := openWAL(t, "/d", Options{FS: fsys.crash(nil)})
	if info, _ := kept.Info(k1); info.Count != 10 || !info.Sealed {
		t.Fatalf("after Seal + crash: %+v", info)
	}
}

// TestSyncIntervalAcksBeforeSync: with a long interval, appends return (and
// are readable) before any fsync, and Close syncs them.
func TestSyncIntervalAcksBeforeSync(t *testing.T) {
	fsys := newMemFS()
	w := openWAL(t, "/d", Options{FS: fsys, Sync: SyncInterval, SyncInterval: time.Hour})
	mustCreate(t, w, k1)
	syncs := fsys.syncCount()
	for i := uint64(0); i < 10; i++ {
		mustAppend(t, w, k1, payload("i", i, 40))
	}
	if fsys.syncCount() != syncs {
		t.Fatalf("synced before the interval elapsed")
	}
	if got := readAll(t, w, k1); len(got) != 10 {
		t.Fatalf("read %d entries, want 10", len(got))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w2 := openWAL(t, "/d", Options{FS: fsys.crash(nil)})
	if info, _ := w2.Info(k1); info.Count != 10 {
		t.Fatalf("Close did not sync: %d entries survive", info.Count)
	}
}

// TestSyncIntervalSyncsPeriodically: written data becomes durable within
// the interval, both when idle and under continuous load.
func TestSyncIntervalSyncsPeriodically(t *testing.T) {
	fsys := newMemFS()
	w := openWAL(t, "/d", Options{FS: fsys, Sync: SyncInterval, SyncInterval: 2 * time.Millisecond})
	mustCreate(t, w, k1)
	file := "/d/" + openName(k1)
	mustAppend(t, w, k1, []byte("idle"))
	waitFor(t, "idle data to be synced by the interval timer", func() bool {
		return fsys.syncedLen(file) == len(fsys.fileBytes(file))
	})
	// Under continuous load the committer never idles; it must still sync.
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				return
			default:
				if _, err := w.Append(k1, [][]byte{[]byte("busy")}); err != nil {
					t.Error(err)
					return
				}
			}
		}
	}()
	base := fsys.syncedLen(file)
	waitFor(t, "a sync under load", func() bool { return fsys.syncedLen(file) > base })
	close(stop)
	<-done
}
