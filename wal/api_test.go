package wal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

var k1 = SegmentKey{Topic: "logs", Segment: 1}

func TestCreateAppendReadReopen(t *testing.T) {
	dir := t.TempDir()
	w := openWAL(t, dir, Options{})
	mustCreate(t, w, k1)
	var want [][]byte
	for i := uint64(0); i < 50; i++ {
		e := payload("a", i, int(i*37%300)+1)
		if first := mustAppend(t, w, k1, e); first != i {
			t.Fatalf("Append #%d returned first=%d", i, first)
		}
		want = append(want, e)
	}
	batch := [][]byte{payload("b", 0, 10), payload("b", 1, 20000), payload("b", 2, 3)}
	if first := mustAppend(t, w, k1, batch...); first != 50 {
		t.Fatalf("batch first = %d, want 50", first)
	}
	want = append(want, batch...)
	expectEntries(t, readAll(t, w, k1), want)
	info, err := w.Info(k1)
	if err != nil {
		t.Fatal(err)
	}
	if info.Count != 53 || info.Sealed || info.Key != k1 {
		t.Fatalf("Info = %+v", info)
	}
	if st, err := os.Stat(filepath.Join(dir, openName(k1))); err != nil || st.Size() != info.Bytes {
		t.Fatalf("file size %v (err %v), Info.Bytes %d", st, err, info.Bytes)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w2 := openWAL(t, dir, Options{})
	expectEntries(t, readAll(t, w2, k1), want)
	if info2, _ := w2.Info(k1); info2 != info {
		t.Fatalf("after reopen Info = %+v, want %+v", info2, info)
	}
	if first := mustAppend(t, w2, k1, []byte("after")); first != 53 {
		t.Fatalf("append after reopen: first = %d", first)
	}
}

func TestCreate(t *testing.T) {
	fsys := newMemFS()
	w := openWAL(t, "/d", Options{FS: fsys})
	mustCreate(t, w, k1)
	mustAppend(t, w, k1, []byte("x"))
	mustCreate(t, w, k1) // idempotent: keeps the data
	if info, _ := w.Info(k1); info.Count != 1 {
		t.Fatalf("Create of an existing segment changed it: %+v", info)
	}
	expectErr(t, w.Create(SegmentKey{Topic: "", Segment: 1}), ErrEmptyTopic)
	// Durable before return: a crash right after Create keeps the segment.
	mustCreate(t, w, SegmentKey{Topic: "t", Segment: 9})
	w2 := openWAL(t, "/d", Options{FS: fsys.crash(nil)})
	if _, err := w2.Info(SegmentKey{Topic: "t", Segment: 9}); err != nil {
		t.Fatalf("created segment lost in a crash: %v", err)
	}
	// A sealed segment cannot be created again.
	if err := w.Seal(k1, 1); err != nil {
		t.Fatal(err)
	}
	expectErr(t, w.Create(k1), ErrSealed)
}

func TestTopicNamesAreEscaped(t *testing.T) {
	dir := t.TempDir()
	topics := []string{"a/b", "..", ".", "with space", "ünï©ødé", "%41", "a.b.c", "x~y", strings.Repeat("long/", 300), strings.Repeat("z", 200), "\x00\xff"}
	w := openWAL(t, dir, Options{})
	for i, tp := range topics {
		k := SegmentKey{Topic: tp, Segment: uint64(i)}
		mustCreate(t, w, k)
		mustAppend(t, w, k, []byte(tp))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := len(segFiles(t, dir)); n != len(topics) {
		t.Fatalf("%d files for %d topics", n, len(topics))
	}
	w2 := openWAL(t, dir, Options{})
	for i, tp := range topics {
		k := SegmentKey{Topic: tp, Segment: uint64(i)}
		got, err := w2.Read(k, 0, 10, 0)
		if err != nil || len(got) != 1 || string(got[0]) != tp {
			t.Fatalf("topic %q: got %q, %v", tp, got, err)
		}
	}
	if segs := w2.Segments(); len(segs) != len(topics) {
		t.Fatalf("Segments() = %d entries", len(segs))
	}
}

func TestAppendRejects(t *testing.T) {
	fsys := newMemFS()
	w := openWAL(t, "/d", Options{FS: fsys, MaxEntryBytes: 100})
	mustCreate(t, w, k1)
	mustAppend(t, w, k1, []byte("keep"))
	before := fsys.fileBytes("/d/" + openName(k1))

	_, err := w.Append(k1, [][]byte{[]byte("ok"), {}})
	expectErr(t, err, ErrEmptyEntry)
	_, err = w.Append(k1, [][]byte{[]byte("ok"), make([]byte, 101)})
	expectErr(t, err, ErrEntryTooLarge)
	_, err = w.Append(SegmentKey{Topic: "nope"}, [][]byte{[]byte("x")})
	expectErr(t, err, ErrUnknownSegment)
	if _, err := w.Append(k1, [][]byte{make([]byte, 100)}); err != nil {
		t.Fatalf("entry of exactly MaxEntryBytes: %v", err)
	}
	after := fsys.fileBytes("/d/" + openName(k1))
	if !bytes.Equal(after[:len(before)], before) || len(after) != len(before)+recordHeader+100 {
		t.Fatalf("rejected requests wrote to the file")
	}
	// Async rejections come through done, on the committer, exactly once.
	var wg sync.WaitGroup
	for _, es := range [][][]byte{{{}}, {make([]byte, 101)}} {
		wg.Add(1)
		w.AppendAsync(k1, es, func(first uint64, err error) {
			defer wg.Done()
			if err == nil {
				t.Errorf("bad async append accepted")
			}
		})
	}
	wg.Wait()
	if info, _ := w.Info(k1); info.Count != 2 {
		t.Fatalf("count %d after rejected appends, want 2", info.Count)
	}
	// Zero entries: a no-op that reports the end.
	if first := mustAppend(t, w, k1); first != 2 {
		t.Fatalf("empty append first = %d", first)
	}
}

func TestAppendAsyncOrderAndOnce(t *testing.T) {
	w := openWAL(t, "/d", Options{FS: newMemFS()})
	mustCreate(t, w, k1)
	const n = 2000
	var mu sync.Mutex
	var got []uint64
	calls := make([]int, n)
	var wg sync.WaitGroup
	wg.Add(n)
	for i := 0; i < n; i++ {
		w.AppendAsync(k1, [][]byte{payload("async", uint64(i), 8)}, func(first uint64, err error) {
			defer wg.Done()
			if err != nil {
				t.Errorf("async append %d: %v", i, err)
			}
			mu.Lock()
			calls[i]++
			got = append(got, first)
			mu.Unlock()
		})
	}
	wg.Wait()
	for i := range n {
		if calls[i] != 1 || got[i] != uint64(i) {
			t.Fatalf("callback %d: calls=%d first=%d (callbacks must run once, in call order)", i, calls[i], got[i])
		}
	}
	ents := readAll(t, w, k1)
	for i := range n {
		if !bytes.Equal(ents[i], payload("async", uint64(i), 8)) {
			t.Fatalf("entry %d wrong", i)
		}
	}
}

func TestAppendAt(t *testing.T) {
	w := openWAL(t, "/d", Options{FS: newMemFS()})
	mustCreate(t, w, k1)
	res := make(chan error, 10)
	first := make(chan uint64, 10)
	done := func(f uint64, err error) { first <- f; res <- err }

	w.AppendAt(k1, 0, [][]byte{[]byte("a"), []byte("b")}, done)
	// Queued-but-not-durable entries count: offset 2 is right even if the
	// first call has not committed yet.
	w.AppendAt(k1, 2, [][]byte{[]byte("c")}, done)
	for i, wantFirst := range []uint64{0, 2} {
		if err := <-res; err != nil {
			t.Fatalf("AppendAt #%d: %v", i, err)
		}
		if f := <-first; f != wantFirst {
			t.Fatalf("AppendAt #%d first = %d", i, f)
		}
	}
	for _, off := range []uint64{0, 2, 4, 100} {
		w.AppendAt(k1, off, [][]byte{[]byte("x")}, done)
		<-first
		err := <-res
		expectErr(t, err, ErrOffsetMismatch)
		var om *OffsetMismatchError
		if !errors.As(err, &om) || om.Have != 3 || om.Want != off {
			t.Fatalf("mismatch error %v, want Have=3 Want=%d", err, off)
		}
	}
	expectEntries(t, readAll(t, w, k1), [][]byte{[]byte("a"), []byte("b"), []byte("c")})
	// A plain Append moves the end too.
	mustAppend(t, w, k1, []byte("d"))
	w.AppendAt(k1, 4, [][]byte{[]byte("e")}, done)
	if <-first; true {
		if err := <-res; err != nil {
			t.Fatalf("AppendAt at the end after Append failed: %v", err)
		}
	}
	// After a Truncate the end moves back.
	if err := w.Truncate(k1, 1); err != nil {
		t.Fatal(err)
	}
	w.AppendAt(k1, 1, [][]byte{[]byte("B")}, done)
	if <-first; <-res != nil {
		t.Fatal("AppendAt at the end after Truncate failed")
	}
	expectEntries(t, readAll(t, w, k1), [][]byte{[]byte("a"), []byte("B")})
}

func TestRead(t *testing.T) {
	w := openWAL(t, "/d", Options{FS: newMemFS()})
	mustCreate(t, w, k1)
	// Empty segment.
	if got, err := w.Read(k1, 0, 10, 100); err != nil || len(got) != 0 {
		t.Fatalf("read of empty segment: %v %v", got, err)
	}
	_, err := w.Read(k1, 1, 10, 100)
	expectErr(t, err, ErrOutOfRange)
	// Mixed sizes: small ones (many per index point) and big ones (one per
	// point), so every read path is used.
	var want [][]byte
	for i := uint64(0); i < 3000; i++ {
		size := 1 + int(i*7919%200)
		if i%97 == 0 {
			size = 40000 + int(i)
		}
		want = append(want, payload("r", i, size))
	}
	for i := 0; i < len(want); i += 13 {
		mustAppend(t, w, k1, want[i:min(i+13, len(want))]...)
	}
	n := uint64(len(want))
	for from := uint64(0); from <= n; from += 1 + from%17 {
		for _, lim := range []struct{ e, b int }{{1, 0}, {5, 0}, {0, 1}, {0, 500}, {100, 3000}, {0, 0}} {
			got, err := w.Read(k1, from, lim.e, lim.b)
			if err != nil {
				t.Fatalf("Read(%d, %d, %d): %v", from, lim.e, lim.b, err)
			}
			if from == n {
				if len(got) != 0 {
					t.Fatalf("read at end returned %d entries", len(got))
				}
				continue
			}
			if len(got) == 0 {
				t.Fatalf("Read(%d, %d, %d) returned nothing", from, lim.e, lim.b)
			}
			total := 0
			for i, e := range got {
				if !bytes.Equal(e, want[from+uint64(i)]) {
					t.Fatalf("Read(%d,%d,%d): entry %d wrong", from, lim.e, lim.b, from+uint64(i))
				}
				total += len(e)
			}
			if lim.e > 0 && len(got) > lim.e {
				t.Fatalf("maxEntries %d exceeded: %d", lim.e, len(got))
			}
			if lim.b > 0 && len(got) > 1 && total > lim.b {
				t.Fatalf("maxBytes %d exceeded: %d", lim.b, total)
			}
			// Limits are filled, not undershot.
			next := from + uint64(len(got))
			if next < n && (lim.e == 0 || len(got) < lim.e) && (lim.b == 0 || total+len(want[next]) <= lim.b) {
				t.Fatalf("Read(%d,%d,%d) stopped early at %d", from, lim.e, lim.b, next)
			}
		}
	}
	_, err = w.Read(k1, n+1, 1, 0)
	expectErr(t, err, ErrOutOfRange)
	_, err = w.Read(SegmentKey{Topic: "nope"}, 0, 1, 0)
	expectErr(t, err, ErrUnknownSegment)
	// Returned entries are the caller's: appending to one must not clobber
	// the next.
	got, _ := w.Read(k1, 1, 2, 0)
	_ = append(got[0], 'X', 'X', 'X')
	if !bytes.Equal(got[1], want[2]) {
		t.Fatal("entries share capacity")
	}
}

func TestInfoAndSegments(t *testing.T) {
	w := openWAL(t, "/d", Options{FS: newMemFS()})
	keys := []SegmentKey{{"b", 2}, {"a", 10}, {"b", 1}, {"a", 9}, {"ab", 0}}
	for _, k := range keys {
		mustCreate(t, w, k)
	}
	mustAppend(t, w, SegmentKey{"a", 9}, []byte("12345"))
	segs := w.Segments()
	order := []SegmentKey{{"a", 9}, {"a", 10}, {"ab", 0}, {"b", 1}, {"b", 2}}
	for i, k := range order {
		if segs[i].Key != k {
			t.Fatalf("Segments()[%d] = %v, want %v", i, segs[i].Key, k)
		}
	}
	if segs[0].Count != 1 || segs[0].Bytes != int64(headerLen("a")+recordHeader+5) {
		t.Fatalf("info %+v", segs[0])
	}
	_, err := w.Info(SegmentKey{"zzz", 0})
	expectErr(t, err, ErrUnknownSegment)
}

func TestSeal(t *testing.T) {
	dir := t.TempDir()
	w := openWAL(t, dir, Options{})
	mustCreate(t, w, k1)
	for i := uint64(0); i < 10; i++ {
		mustAppend(t, w, k1, payload("s", i, 50))
	}
	expectErr(t, w.Seal(k1, 11), ErrShortSegment)
	if err := w.Seal(k1, 7); err != nil { // drops 7..9
		t.Fatal(err)
	}
	info, _ := w.Info(k1)
	if !info.Sealed || info.Count != 7 {
		t.Fatalf("after seal: %+v", info)
	}
	if err := w.Seal(k1, 7); err != nil {
		t.Fatalf("re-seal with the same count: %v", err)
	}
	expectErr(t, w.Seal(k1, 6), ErrSealed)
	_, err := w.Append(k1, [][]byte{[]byte("x")})
	expectErr(t, err, ErrSealed)
	ch := make(chan error, 1)
	w.AppendAt(k1, 7, [][]byte{[]byte("x")}, func(_ uint64, err error) { ch <- err })
	expectErr(t, <-ch, ErrSealed)
	expectErr(t, w.Truncate(k1, 3), ErrSealed)
	expectErr(t, w.Seal(SegmentKey{"none", 0}, 0), ErrUnknownSegment)
	files := segFiles(t, dir)
	if len(files) != 1 || filepath.Base(files[0]) != sealedName(k1, 7) {
		t.Fatalf("files after seal: %v", files)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w2 := openWAL(t, dir, Options{})
	info2, _ := w2.Info(k1)
	if info2 != info {
		t.Fatalf("after reopen %+v, want %+v", info2, info)
	}
	var want [][]byte
	for i := uint64(0); i < 7; i++ {
		want = append(want, payload("s", i, 50))
	}
	expectEntries(t, readAll(t, w2, k1), want)
	_, err = w2.Append(k1, [][]byte{[]byte("x")})
	expectErr(t, err, ErrSealed)
	// An empty segment can be sealed too.
	k2 := SegmentKey{"e", 0}
	mustCreate(t, w2, k2)
	if err := w2.Seal(k2, 0); err != nil {
		t.Fatal(err)
	}
}

func TestSealWaitsForQueuedAppends(t *testing.T) {
	w := openWAL(t, "/d", Options{FS: newMemFS()})
	mustCreate(t, w, k1)
	var wg sync.WaitGroup
	for i := 0; i < 100; i++ {
		wg.Add(1)
		w.AppendAsync(k1, [][]byte{[]byte("q")}, func(_ uint64, err error) {
			defer wg.Done()
			if err != nil {
				t.Error(err)
			}
		})
	}
	if err := w.Seal(k1, 100); err != nil {
		t.Fatalf("Seal after 100 queued appends: %v", err)
	}
	wg.Wait()
}

func TestTruncate(t *testing.T) {
	dir := t.TempDir()
	w := openWAL(t, dir, Options{})
	mustCreate(t, w, k1)
	var want [][]byte
	for i := uint64(0); i < 1000; i++ {
		e := payload("t", i, 100)
		want = append(want, e)
	}
	mustAppend(t, w, k1, want...)
	for _, c := range []uint64{1000, 999, 600, 257, 256, 255} {
		if err := w.Truncate(k1, c); err != nil {
			t.Fatalf("Truncate(%d): %v", c, err)
		}
		expectEntries(t, readAll(t, w, k1), want[:c])
	}
	expectErr(t, w.Truncate(k1, 256), ErrShortSegment)
	expectErr(t, w.Truncate(SegmentKey{"x", 1}, 0), ErrUnknownSegment)
	// Appends continue at the new end, and the index is right across the cut.
	want = want[:255]
	for i := uint64(0); i < 300; i++ {
		e := payload("t2", i, 70)
		want = append(want, e)
		if f := mustAppend(t, w, k1, e); f != 255+i {
			t.Fatalf("first = %d", f)
		}
	}
	expectEntries(t, readAll(t, w, k1), want)
	if err := w.Truncate(k1, 0); err != nil {
		t.Fatal(err)
	}
	expectEntries(t, readAll(t, w, k1), nil)
	mustAppend(t, w, k1, want[:10]...)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w2 := openWAL(t, dir, Options{})
	expectEntries(t, readAll(t, w2, k1), want[:10])
}

func TestDelete(t *testing.T) {
	dir := t.TempDir()
	w := openWAL(t, dir, Options{})
	mustCreate(t, w, k1)
	k2 := SegmentKey{"other", 3}
	mustCreate(t, w, k2)
	mustAppend(t, w, k1, []byte("gone"))
	mustAppend(t, w, k2, []byte("stays"))
	if err := w.Delete(k1); err != nil {
		t.Fatal(err)
	}
	if len(segFiles(t, dir)) != 1 {
		t.Fatalf("files after delete: %v", segFiles(t, dir))
	}
	_, err := w.Read(k1, 0, 1, 0)
	expectErr(t, err, ErrUnknownSegment)
	_, err = w.Append(k1, [][]byte{[]byte("x")})
	expectErr(t, err, ErrUnknownSegment)
	_, err = w.Info(k1)
	expectErr(t, err, ErrUnknownSegment)
	expectErr(t, w.Delete(k1), ErrUnknownSegment)
	// Deleting a sealed segment works too.
	if err := w.Seal(k2, 1); err != nil {
		t.Fatal(err)
	}
	if err := w.Delete(k2); err != nil {
		t.Fatal(err)
	}
	// And a deleted segment can be created afresh.
	mustCreate(t, w, k1)
	if info, _ := w.Info(k1); info.Count != 0 {
		t.Fatalf("recreated segment not empty: %+v", info)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w2 := openWAL(t, dir, Options{})
	if segs := w2.Segments(); len(segs) != 1 || segs[0].Key != k1 || segs[0].Count != 0 {
		t.Fatalf("after reopen: %+v", segs)
	}
}

func TestDeleteFailsQueuedAppendsAfterIt(t *testing.T) {
	w := openWAL(t, "/d", Options{FS: newMemFS()})
	mustCreate(t, w, k1)
	// Queue appends, then delete; appends queued before Delete complete.
	var wg sync.WaitGroup
	for i := 0; i < 50; i++ {
		wg.Add(1)
		w.AppendAsync(k1, [][]byte{[]byte("x")}, func(_ uint64, err error) {
			defer wg.Done()
			if err != nil {
				t.Error(err)
			}
		})
	}
	if err := w.Delete(k1); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
}

func TestClose(t *testing.T) {
	w := openWAL(t, "/d", Options{FS: newMemFS()})
	mustCreate(t, w, k1)
	mustAppend(t, w, k1, []byte("x"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	expectErr(t, w.Close(), ErrClosed)
	_, err := w.Append(k1, [][]byte{[]byte("x")})
	expectErr(t, err, ErrClosed)
	called := 0
	w.AppendAsync(k1, [][]byte{[]byte("x")}, func(_ uint64, err error) {
		called++
		expectErr(t, err, ErrClosed)
	})
	w.AppendAt(k1, 1, [][]byte{[]byte("x")}, func(_ uint64, err error) {
		called++
		expectErr(t, err, ErrClosed)
	})
	if called != 2 {
		t.Fatalf("done called %d times after Close", called)
	}
	_, err = w.Read(k1, 0, 1, 0)
	expectErr(t, err, ErrClosed)
	_, err = w.Info(k1)
	expectErr(t, err, ErrClosed)
	expectErr(t, w.Create(k1), ErrClosed)
	expectErr(t, w.Seal(k1, 1), ErrClosed)
	expectErr(t, w.Truncate(k1, 0), ErrClosed)
	expectErr(t, w.Delete(k1), ErrClosed)
	if w.Segments() != nil {
		t.Fatal("Segments after Close")
	}
}

func TestCloseCompletesQueuedAppends(t *testing.T) {
	fsys := newMemFS()
	w := openWAL(t, "/d", Options{FS: fsys, Sync: SyncNever})
	mustCreate(t, w, k1)
	var wg sync.WaitGroup
	for i := 0; i < 500; i++ {
		wg.Add(1)
		w.AppendAsync(k1, [][]byte{[]byte("x")}, func(_ uint64, err error) {
			defer wg.Done()
			if err != nil {
				t.Error(err)
			}
		})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	// Close synced even under SyncNever: a crash now loses nothing.
	w2 := openWAL(t, "/d", Options{FS: fsys.crash(nil)})
	if info, _ := w2.Info(k1); info.Count != 500 {
		t.Fatalf("after Close+crash: %d entries, want 500", info.Count)
	}
}

func TestOpenOptions(t *testing.T) {
	if _, err := Open("/d", Options{FS: newMemFS(), MaxEntryBytes: -1}); err == nil {
		t.Fatal("negative MaxEntryBytes accepted")
	}
	if _, err := Open("/d", Options{FS: newMemFS(), Sync: 7}); err == nil {
		t.Fatal("unknown sync mode accepted")
	}
	for _, p := range []int64{-1, MaxPrealloc + 1} {
		if _, err := Open("/d", Options{FS: newMemFS(), Prealloc: p}); err == nil || !strings.Contains(err.Error(), "Prealloc") {
			t.Fatalf("Prealloc %d: %v, want an error naming it", p, err)
		}
	}
	if _, err := Open("/d", Options{FS: newMemFS(), DropBehind: -1}); err == nil || !strings.Contains(err.Error(), "DropBehind") {
		t.Fatalf("DropBehind -1: %v, want an error naming it", err)
	}
	// Unknown files in the directory are left alone.
	fsys := newMemFS()
	_ = fsys.MkdirAll("/d", 0o755)
	f, _ := fsys.OpenFile("/d/README", os.O_CREATE|os.O_RDWR, 0o644)
	_, _ = f.WriteAt([]byte("hello"), 0)
	w := openWAL(t, "/d", Options{FS: fsys})
	if len(w.Segments()) != 0 {
		t.Fatal("unknown file taken for a segment")
	}
}

// A sealed file that fails its checks fails Open, unless SetAsideCorrupt:
// then it is renamed aside and its segment left out, the rest opens, and
// the next Open does not see it. An open segment's damage stays fatal.
func TestSetAsideCorruptSealedFile(t *testing.T) {
	dir := t.TempDir()
	w := openWAL(t, dir, Options{})
	k2 := SegmentKey{Topic: "logs", Segment: 2}
	for _, k := range []SegmentKey{k1, k2} {
		mustCreate(t, w, k)
		mustAppend(t, w, k, []byte("one"), []byte("two"))
	}
	if err := w.Seal(k1, 2); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	sealed := filepath.Join(dir, sealedName(k1, 2))
	b, err := os.ReadFile(sealed)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-1] ^= 0x40 // inside the last record
	if err := os.WriteFile(sealed, b, 0o644); err != nil {
		t.Fatal(err)
	}

	if _, err := Open(dir, Options{}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open without SetAsideCorrupt: %v, want ErrCorrupt", err)
	}
	w = openWAL(t, dir, Options{SetAsideCorrupt: true})
	if got, want := w.SetAside(), []string{sealedName(k1, 2) + corruptSuffix}; !slices.Equal(got, want) {
		t.Fatalf("SetAside() = %v, want %v", got, want)
	}
	if _, err := w.Info(k1); !errors.Is(err, ErrUnknownSegment) {
		t.Fatalf("Info(set-aside segment): %v, want ErrUnknownSegment", err)
	}
	expectEntries(t, readAll(t, w, k2), [][]byte{[]byte("one"), []byte("two")})
	if _, err := os.Stat(sealed + corruptSuffix); err != nil {
		t.Fatalf("the set-aside bytes: %v", err)
	}
	// the segment can be filled again from another replica
	mustCreate(t, w, k1)
	mustAppend(t, w, k1, []byte("one"), []byte("two"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w = openWAL(t, dir, Options{})
	if len(w.SetAside()) != 0 {
		t.Fatalf("second Open set aside %v", w.SetAside())
	}
	expectEntries(t, readAll(t, w, k1), [][]byte{[]byte("one"), []byte("two")})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}

	// an open segment's damage is never set aside
	open := filepath.Join(dir, openName(k2))
	b, err = os.ReadFile(open)
	if err != nil {
		t.Fatal(err)
	}
	b[3] ^= 0x40 // the header
	if err := os.WriteFile(open, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{SetAsideCorrupt: true}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open with a corrupt open segment: %v, want ErrCorrupt", err)
	}
}

// renameFails is a memFS whose Rename fails (a read-only directory).
type renameFails struct{ *memFS }

func (renameFails) Rename(string, string) error { return os.ErrPermission }

// When the corrupt sealed file cannot be renamed aside, Open fails as it
// would without SetAsideCorrupt, saying both what is wrong and why the
// file is still there.
func TestSetAsideCorruptRenameFails(t *testing.T) {
	m := newMemFS()
	w := openWAL(t, "/d", Options{FS: m})
	mustCreate(t, w, k1)
	mustAppend(t, w, k1, []byte("one"))
	if err := w.Seal(k1, 1); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !m.FS.Corrupt(filepath.Join("/d", sealedName(k1, 1)), 3) {
		t.Fatal("no such file to corrupt")
	}
	_, err := Open("/d", Options{FS: renameFails{m}, SetAsideCorrupt: true})
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "could not set it aside") {
		t.Fatalf("Open: %v, want ErrCorrupt that says the file could not be set aside", err)
	}
}
