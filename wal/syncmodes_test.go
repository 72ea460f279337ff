package wal

import (
	"errors"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
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

// heldSyncs holds the next Sync of one file inside the FS until released,
// once armed: the stand-in for an interval's slow fdatasync.
type heldSyncs struct {
	file    string
	armed   atomic.Bool
	started chan struct{}
	release chan struct{}
	once    sync.Once
}

func holdSyncs(t *testing.T, fsys *memFS, file string) *heldSyncs {
	h := &heldSyncs{file: file, started: make(chan struct{}, 1), release: make(chan struct{})}
	fsys.setSyncFault(func(name string) error {
		if strings.HasSuffix(name, h.file) && h.armed.CompareAndSwap(true, false) {
			h.started <- struct{}{}
			<-h.release
		}
		return nil
	})
	t.Cleanup(h.let) // a failed test must not leave the WAL's Close waiting for the sync
	return h
}

func (h *heldSyncs) let() { h.once.Do(func() { close(h.release) }) }

// heldSyncWAL opens, inside a synctest bubble (time moves only when every
// goroutine in it waits), a SyncInterval WAL with a 1 s interval on fsys
// (mem, or mem wrapped), creates k1, appends one entry and lets the
// interval run out: the interval's sync of k1's file is then being held.
func heldSyncWAL(t *testing.T, fsys FS, mem *memFS) (*WAL, *heldSyncs) {
	t.Helper()
	w := openWAL(t, "/d", Options{FS: fsys, Sync: SyncInterval, SyncInterval: time.Second, Prealloc: 4096})
	held := holdSyncs(t, mem, openName(k1)) // after openWAL: its cleanup runs before Close's
	mustCreate(t, w, k1)
	held.armed.Store(true)
	mustAppend(t, w, k1, []byte("before the sync"))
	time.Sleep(time.Second)
	<-held.started
	return w, held
}

// returned reports whether a call started in a goroutine has returned, once
// everything else in the bubble waits: a call still waiting then is
// blocked, not slow.
func returned(done chan error) (error, bool) {
	synctest.Wait()
	select {
	case err := <-done:
		return err, true
	default:
		return nil, false
	}
}

// TestSyncIntervalSyncsBesideAppends: the interval's sync runs beside the
// committer. While a sync is held (a slow disk), appends go on being
// written, acknowledged and read; once it returns, the next interval syncs
// what they wrote. (Made by the committer, the sync held every append
// behind it, once a second at --fsync interval:1s.)
func TestSyncIntervalSyncsBesideAppends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fsys := newMemFS()
		file := "/d/" + openName(k1)
		w, held := heldSyncWAL(t, fsys, fsys)
		done := make(chan error, 1)
		go func() {
			for i := uint64(0); i < 100; i++ {
				if _, err := w.Append(k1, [][]byte{payload("beside", i, 64)}); err != nil {
					done <- err
					return
				}
			}
			done <- nil
		}()
		if err, ok := returned(done); !ok || err != nil {
			t.Fatalf("appends while the interval's sync is held: returned %v, err %v", ok, err)
		}
		if got := readAll(t, w, k1); len(got) != 101 {
			t.Fatalf("read %d entries while the sync was held, want 101", len(got))
		}
		if fsys.syncedLen(file) == len(fsys.fileBytes(file)) {
			t.Fatal("the appends were synced before the held sync returned")
		}
		held.let()
		time.Sleep(time.Second)
		synctest.Wait()
		if fsys.syncedLen(file) != len(fsys.fileBytes(file)) {
			t.Fatal("the next interval did not sync the appends made beside the held sync")
		}
		w2 := openWAL(t, "/d", Options{FS: fsys.crash(nil)})
		if info, _ := w2.Info(k1); info.Count != 101 {
			t.Fatalf("%d entries survive a crash after the next sync, want 101", info.Count)
		}
	})
}

// TestSyncIntervalBackpressure: writes go on beside a sync only within its
// interval. Once the next interval has run out too, an append waits for
// the sync in flight (a disk slower than the writes must not let unsynced
// data pile up), and goes on when it returns, beside the next sync.
func TestSyncIntervalBackpressure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fsys := newMemFS()
		w, held := heldSyncWAL(t, fsys, fsys)
		mustAppend(t, w, k1, []byte("within the interval"))
		time.Sleep(time.Second) // the next interval runs out with the sync still held
		done := make(chan error, 1)
		go func() {
			_, err := w.Append(k1, [][]byte{[]byte("past it")})
			done <- err
		}()
		if _, ok := returned(done); ok {
			t.Fatal("an append went on while the sync was an interval late")
		}
		held.let()
		if err, ok := returned(done); !ok || err != nil {
			t.Fatalf("the append after the sync returned: returned %v, err %v", ok, err)
		}
		expectEntries(t, readAll(t, w, k1), [][]byte{[]byte("before the sync"), []byte("within the interval"), []byte("past it")})
	})
}

// TestSyncIntervalSealWaitsForTheSync: a Seal (which cuts, syncs and
// renames the file) waits for the interval's sync in flight on that file
// (contractFS reports a Truncate or Sync alongside it), then seals
// everything written, beside it too.
func TestSyncIntervalSealWaitsForTheSync(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fsys := newMemFS()
		w, held := heldSyncWAL(t, contractFS{fsys, t}, fsys)
		mustAppend(t, w, k1, []byte("beside"))
		sealed := make(chan error, 1)
		go func() { sealed <- w.Seal(k1, 2) }()
		if _, ok := returned(sealed); ok {
			t.Fatal("Seal returned while the interval's sync was held")
		}
		held.let()
		if err, ok := returned(sealed); !ok || err != nil {
			t.Fatalf("Seal after the sync returned: returned %v, err %v", ok, err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w2 := openWAL(t, "/d", Options{FS: fsys.crash(nil)})
		info, err := w2.Info(k1)
		if err != nil || !info.Sealed || info.Count != 2 {
			t.Fatalf("after a crash: %+v, %v; want sealed with 2 entries", info, err)
		}
		expectEntries(t, readAll(t, w2, k1), [][]byte{[]byte("before the sync"), []byte("beside")})
	})
}

// TestSyncIntervalFailedSyncFences: an interval's sync that fails, beside
// the committer, fences the engine: later appends get ErrFenced.
func TestSyncIntervalFailedSyncFences(t *testing.T) {
	fsys := newMemFS()
	var fail atomic.Bool
	fsys.setSyncFault(func(string) error {
		if fail.Load() {
			return errors.New("injected: disk gone")
		}
		return nil
	})
	w := openWAL(t, "/d", Options{FS: fsys, Sync: SyncInterval, SyncInterval: time.Millisecond})
	mustCreate(t, w, k1)
	fail.Store(true)
	mustAppend(t, w, k1, []byte("acknowledged, then lost with the sync"))
	waitFor(t, "the failed interval sync to fence the engine", func() bool {
		_, err := w.Append(k1, [][]byte{[]byte("after")})
		return errors.Is(err, ErrFenced)
	})
}

// contractFS is memFS with every File checking the FS contract's rule on
// concurrent calls: of one File's methods only ReadAt may run alongside
// others (not Close or Truncate), and Sync alongside WriteAt.
type contractFS struct {
	*memFS
	t *testing.T
}

func (c contractFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := c.memFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &contractFile{File: f, t: c.t, name: name, active: map[string]int{}}, nil
}

type contractFile struct {
	File
	t      *testing.T
	name   string
	mu     sync.Mutex
	active map[string]int
}

func concurrentAllowed(a, b string) bool {
	if a > b {
		a, b = b, a
	}
	switch {
	case a == "ReadAt":
		return b != "Close" && b != "Truncate"
	case a == "Sync" && b == "WriteAt":
		return true
	}
	return false
}

func (f *contractFile) enter(op string) func() {
	f.mu.Lock()
	for other, n := range f.active {
		if n > 0 && !concurrentAllowed(op, other) {
			f.t.Errorf("%s: %s ran alongside %s", f.name, op, other)
		}
	}
	f.active[op]++
	f.mu.Unlock()
	return func() {
		f.mu.Lock()
		f.active[op]--
		f.mu.Unlock()
	}
}

func (f *contractFile) ReadAt(p []byte, off int64) (int, error) {
	defer f.enter("ReadAt")()
	return f.File.ReadAt(p, off)
}

func (f *contractFile) WriteAt(p []byte, off int64) (int, error) {
	defer f.enter("WriteAt")()
	return f.File.WriteAt(p, off)
}

func (f *contractFile) Sync() error {
	defer f.enter("Sync")()
	return f.File.Sync()
}

func (f *contractFile) Truncate(size int64) error {
	defer f.enter("Truncate")()
	return f.File.Truncate(size)
}

func (f *contractFile) Close() error {
	defer f.enter("Close")()
	return f.File.Close()
}

func (f *contractFile) Stat() (os.FileInfo, error) {
	defer f.enter("Stat")()
	return f.File.Stat()
}
