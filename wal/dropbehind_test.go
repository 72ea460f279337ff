package wal

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"testing/synctest"
	"time"
)

// TestDropBehindEvictsWhatSyncsMadeDurable: with Options.DropBehind the
// committer hands each file's bytes to DropCache in whole dropSteps,
// contiguously from the start, never within DropBehind of the file's end
// when it calls (what a tailing reader reads stays cached), and without
// skipping a step; after a Truncate it goes on from the cut. Without the
// option it drops nothing.
func TestDropBehindEvictsWhatSyncsMadeDurable(t *testing.T) {
	const window = 1 << 20
	entry := bytes.Repeat([]byte("d"), 64<<10)
	for _, dropBehind := range []int64{0, window} {
		fsys := newHintFS()
		w := openWAL(t, "/d", Options{FS: fsys, DropBehind: dropBehind})
		mustCreate(t, w, k1)
		for range 96 { // 6 MiB of records, each append synced
			mustAppend(t, w, k1, entry)
		}
		size := int64(len(w.fileBytesForTest(t, k1)))
		calls := callsFor(fsys, fsys.drops, openName(k1))
		if dropBehind == 0 {
			if len(calls) != 0 {
				t.Fatalf("DropBehind 0 dropped %v", calls)
			}
			w.Close()
			continue
		}
		next := int64(0)
		for _, c := range calls {
			off, n, sizeThen := c[0], c[1], c[2]
			if off != next || n < dropStep || (off+n)%dropStep != 0 || off+n > sizeThen-window {
				t.Fatalf("drop (%d, %d) of a %d-byte file after %d: want contiguous whole steps of %d ending %d or more before the end; all: %v",
					off, n, sizeThen, next, dropStep, window, calls)
			}
			next = off + n
		}
		if size-window-next >= dropStep {
			t.Fatalf("dropped up to %d of %d bytes with a window of %d: a step was skipped", next, size, window)
		}

		// cut back below what was dropped: the drops go on from the cut
		if err := w.Truncate(k1, 8); err != nil {
			t.Fatal(err)
		}
		cut := int64(len(w.fileBytesForTest(t, k1)))
		for range 48 {
			mustAppend(t, w, k1, entry)
		}
		after := callsFor(fsys, fsys.drops, openName(k1))[len(calls):]
		if len(after) == 0 || after[0][0] > cut || after[0][0] < cut-dropStep {
			t.Fatalf("after a cut to %d bytes and 3 MiB more, drops %v: want the first to start at the cut", cut, after)
		}
		want := make([][]byte, 8+48)
		for i := range want {
			want[i] = entry
		}
		expectEntries(t, readAll(t, w, k1), want)
		w.Close()
	}
}

// TestDropBehindUnderSyncInterval: the interval's sync, run beside the
// committer, drops what it made durable too (whole steps, never within
// DropBehind of the end it synced).
func TestDropBehindUnderSyncInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const window = 1 << 20
		fsys := newHintFS()
		w := openWAL(t, "/d", Options{FS: fsys, DropBehind: window, Sync: SyncInterval, SyncInterval: time.Second})
		mustCreate(t, w, k1)
		entry := bytes.Repeat([]byte("d"), 64<<10)
		for range 96 { // 6 MiB of records, none synced yet
			mustAppend(t, w, k1, entry)
		}
		time.Sleep(time.Second) // the interval's sync
		synctest.Wait()
		size := int64(len(w.fileBytesForTest(t, k1)))
		calls := callsFor(fsys, fsys.drops, openName(k1))
		if len(calls) == 0 {
			t.Fatal("the interval's sync dropped nothing behind it")
		}
		last := calls[len(calls)-1]
		if end := last[0] + last[1]; end%dropStep != 0 || end > size-window || size-window-end >= dropStep {
			t.Fatalf("drops %v of a %d-byte file: want whole steps up to within a step of %d before the end", calls, size, window)
		}
	})
}

// TestDropBehindOnRealFiles: on the operating system's files (where the
// platform has the hint) the pages a sync made durable more than
// DropBehind ago leave the page cache, the recent ones stay, and every
// entry still reads back, from the disk, before and after a reopen.
func TestDropBehindOnRealFiles(t *testing.T) {
	const window = 1 << 20
	dir := t.TempDir()
	w := openWAL(t, dir, Options{DropBehind: window})
	mustCreate(t, w, k1)
	want := appendLettered(t, w, k1, 96) // 6 MiB
	s, err := w.lookup(k1)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.f.(cacheDropper); ok {
		resident := residentPages(t, filepath.Join(dir, openName(k1)))
		pages, page := int64(len(resident)), int64(os.Getpagesize())
		dropped := (pages*page - window - dropStep) / page // pages surely below the last drop
		for i := int64(0); i < dropped; i++ {
			if resident[i] {
				t.Fatalf("page %d of %d is still cached: the drop did not reach the kernel", i, pages)
			}
		}
		if !resident[pages-1] {
			t.Fatalf("the last page of %d, within the window, is not cached (mincore not answering?)", pages)
		}
	}
	expectEntries(t, readAll(t, w, k1), want)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = openWAL(t, dir, Options{DropBehind: window})
	expectEntries(t, readAll(t, w, k1), want)
	w.Close()
}

// TestDropBehindWhenFilesSyncTogether: a cycle that syncs several files at
// once (in parallel) drops behind each of them too, as a cycle of one
// file does.
func TestDropBehindWhenFilesSyncTogether(t *testing.T) {
	const window = 1 << 20
	fsys := newHintFS()
	w := openWAL(t, "/d", Options{FS: fsys, DropBehind: window})
	held := holdSyncs(t, fsys.memFS, openName(k1)) // after openWAL: its cleanup runs before Close's
	k2 := SegmentKey{Topic: "logs", Segment: 2}
	mustCreate(t, w, k1)
	mustCreate(t, w, k2)

	// hold one cycle's sync so that the next cycle takes both files' writes
	held.armed.Store(true)
	first := make(chan error, 1)
	w.AppendAsync(k1, [][]byte{[]byte("first")}, func(_ uint64, err error) { first <- err })
	<-held.started
	big := make([][]byte, 48) // 3 MiB a file
	for i := range big {
		big[i] = bytes.Repeat([]byte("d"), 64<<10)
	}
	done := make(chan error, 2)
	for _, k := range []SegmentKey{k1, k2} {
		w.AppendAsync(k, big, func(_ uint64, err error) { done <- err })
	}
	held.let()
	for _, ch := range []chan error{first, done, done} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []SegmentKey{k1, k2} {
		if calls := callsFor(fsys, fsys.drops, openName(k)); len(calls) == 0 {
			t.Fatalf("%v: 3 MiB synced with a window of 1 MiB and nothing dropped behind it", k)
		}
	}
}
