package wal

import (
	"bytes"
	"errors"
	"log/slog"
	"math/rand"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
)

// writeSegment writes entries to a fresh WAL in dir (one segment k1, sealed
// with all entries if seal) and returns the file's bytes, its name and the
// byte offset where each record starts (plus the end).
func writeSegment(t *testing.T, dir string, entries [][]byte, seal bool) (data []byte, name string, bounds []int) {
	t.Helper()
	w := openWAL(t, dir, Options{})
	mustCreate(t, w, k1)
	for i := 0; i < len(entries); i += 5 {
		mustAppend(t, w, k1, entries[i:min(i+5, len(entries))]...)
	}
	name = openName(k1)
	if seal {
		if err := w.Seal(k1, uint64(len(entries))); err != nil {
			t.Fatal(err)
		}
		name = sealedName(k1, uint64(len(entries)))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	pos := headerLen(k1.Topic)
	bounds = append(bounds, pos)
	for _, e := range entries {
		pos += recordHeader + len(e)
		bounds = append(bounds, pos)
	}
	if pos != len(data) {
		t.Fatalf("file is %d bytes, records end at %d", len(data), pos)
	}
	return data, name, bounds
}

func crashEntries(n int) [][]byte {
	var es [][]byte
	for i := 0; i < n; i++ {
		size := 1 + (i*131)%257
		if i%23 == 7 {
			size = 33 << 10 // crosses index points
		}
		es = append(es, payload("crash", uint64(i), size))
	}
	return es
}

// reopenDamaged writes data as the segment file name in an empty directory
// and opens a WAL there. Successive calls in one test reuse the directory
// (the caller closes the WAL first).
func reopenDamaged(t *testing.T, name string, data []byte) (*WAL, string, error) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "damaged")
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
		t.Fatal(err)
	}
	w, err := Open(dir, Options{Logger: quietLogger})
	return w, dir, err
}

var quietLogger = slog.New(slog.DiscardHandler)

// cutPoints returns every record boundary and several points inside each
// record (inside its header, at its payload's start, middle and end).
func cutPoints(bounds []int) []int {
	pts := []int{0, 1, headerFixed - 5, bounds[0] - 1}
	for i, b := range bounds {
		pts = append(pts, b)
		if i+1 < len(bounds) {
			next := bounds[i+1]
			for _, d := range []int{1, 4, 8, 15, 16, 17} {
				if b+d < next {
					pts = append(pts, b+d)
				}
			}
			pts = append(pts, (b+next)/2, next-1)
		}
	}
	return pts
}

// TestCrashCutOpenSegment cuts an open segment's file at every record
// boundary and at points inside records and inside the header (a crash that
// lost everything after the cut). Open must succeed, keep exactly the
// records wholly before the cut, byte-exact, and the WAL must go on working.
func TestCrashCutOpenSegment(t *testing.T) {
	entries := crashEntries(60)
	data, name, bounds := writeSegment(t, t.TempDir(), entries, false)
	for _, cut := range cutPoints(bounds) {
		w, dir, err := reopenDamaged(t, name, data[:cut])
		if err != nil {
			t.Fatalf("cut at %d: Open: %v", cut, err)
		}
		if cut < bounds[0] {
			// Crash during Create: the file is removed, the segment never existed.
			if len(w.Segments()) != 0 || len(segFiles(t, dir)) != 0 {
				t.Fatalf("cut at %d (inside header): segment not removed", cut)
			}
			_ = w.Close()
			continue
		}
		keep := 0
		for keep+1 < len(bounds) && bounds[keep+1] <= cut {
			keep++
		}
		expectEntries(t, readAll(t, w, k1), entries[:keep])
		// The torn tail is gone from disk, and appends continue at the cut.
		if f := mustAppend(t, w, k1, []byte("after-crash")); f != uint64(keep) {
			t.Fatalf("cut at %d: append after recovery at %d, want %d", cut, f, keep)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w2, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("cut at %d: second Open: %v", cut, err)
		}
		expectEntries(t, readAll(t, w2, k1), append(append([][]byte{}, entries[:keep]...), []byte("after-crash")))
		_ = w2.Close()
	}
}

// TestCrashCutSealedSegment: a sealed file must be intact; any cut is
// reported as corruption, never silently accepted.
func TestCrashCutSealedSegment(t *testing.T) {
	entries := crashEntries(30)
	data, name, bounds := writeSegment(t, t.TempDir(), entries, true)
	for _, cut := range cutPoints(bounds) {
		if cut == len(data) {
			continue
		}
		w, _, err := reopenDamaged(t, name, data[:cut])
		var ce *CorruptError
		if !errors.As(err, &ce) || !errors.Is(err, ErrCorrupt) {
			if w != nil {
				_ = w.Close()
			}
			t.Fatalf("sealed file cut at %d: Open error %v, want *CorruptError", cut, err)
		}
		if filepath.Base(ce.File) != name {
			t.Fatalf("CorruptError names %s", ce.File)
		}
	}
	w, _, err := reopenDamaged(t, name, data)
	if err != nil {
		t.Fatal(err)
	}
	expectEntries(t, readAll(t, w, k1), entries)
	_ = w.Close()
}

// flipPositions is every byte of the header and of each record's header and
// the first and last 8 bytes of each payload, and every 61st byte inside
// longer payloads.
func flipPositions(bounds []int) []int {
	var pts []int
	for p := 0; p < bounds[0]; p++ {
		pts = append(pts, p)
	}
	for i := 0; i+1 < len(bounds); i++ {
		for p := bounds[i]; p < bounds[i+1]; p++ {
			in := p - bounds[i] - recordHeader
			if in < 8 || bounds[i+1]-p <= 8 || in%61 == 0 {
				pts = append(pts, p)
			}
		}
	}
	return pts
}

// TestCrashBitFlips flips one bit at many positions (see flipPositions) of an
// open and of a sealed segment file. Open must either report a *CorruptError
// or return only byte-exact entries; the only entries allowed to vanish are
// those of the last write of an open segment (writeSegment appends five at a
// time), and only when the flip hit them: no later record proves that write
// was synced, so damage to it is indistinguishable from a torn write.
func TestCrashBitFlips(t *testing.T) {
	entries := crashEntries(24)
	for _, seal := range []bool{false, true} {
		data, name, bounds := writeSegment(t, t.TempDir(), entries, seal)
		corrupt, dropped := 0, 0
		pts := flipPositions(bounds)
		if testing.Short() {
			pts = pts[:len(pts)/4]
		}
		for _, pos := range pts {
			bad := bytes.Clone(data)
			bad[pos] ^= 1 << (pos % 8)
			w, _, err := reopenDamaged(t, name, bad)
			if err != nil {
				var ce *CorruptError
				if !errors.As(err, &ce) {
					t.Fatalf("flip at %d: Open error %v is not a *CorruptError", pos, err)
				}
				corrupt++
				continue
			}
			got := readAll(t, w, k1)
			_ = w.Close()
			lastWrite := (len(entries) - 1) / 5 * 5 // first entry of the last Append
			inLast := pos >= bounds[lastWrite]
			hit := sort.SearchInts(bounds, pos+1) - 1 // the entry the flip hit
			switch {
			case len(got) == len(entries):
			case len(got) == hit && inLast && !seal:
				dropped++
			default:
				t.Fatalf("sealed=%v flip at %d (last write from %d): recovered %d of %d entries", seal, pos, bounds[lastWrite], len(got), len(entries))
			}
			expectEntries(t, got, entries[:len(got)])
		}
		t.Logf("sealed=%v: %d bytes, %d flips, %d reported as corruption, %d cut the last write as torn", seal, len(data), len(pts), corrupt, dropped)
		if seal && dropped != 0 {
			t.Fatal("sealed file lost a record silently")
		}
	}
}

// TestCorruptHeader: a damaged header of a complete file is corruption, not a
// torn create.
func TestCorruptHeader(t *testing.T) {
	entries := crashEntries(3)
	data, name, bounds := writeSegment(t, t.TempDir(), entries, false)
	for pos := 0; pos < bounds[0]; pos++ {
		bad := bytes.Clone(data)
		bad[pos] ^= 0x10
		_, _, err := reopenDamaged(t, name, bad)
		var ce *CorruptError
		if !errors.As(err, &ce) || ce.Offset != 0 {
			t.Fatalf("header flip at %d: %v", pos, err)
		}
	}
	// A file whose name does not match its header.
	_, _, err := reopenDamaged(t, openName(SegmentKey{"other", 1}), data)
	expectErr(t, err, ErrCorrupt)
}

// TestCrashMidFileCorruption: garbage in the middle of an open segment with
// valid records after it, written after it was synced, is corruption (Open
// fails naming file and offset); zeros past the last record are space
// written ahead, kept; garbage there is a torn tail, cut.
func TestCrashMidFileCorruption(t *testing.T) {
	entries := crashEntries(10)
	data, name, bounds := writeSegment(t, t.TempDir(), entries, false)
	bad := bytes.Clone(data)
	for i := bounds[4]; i < bounds[5]; i++ {
		bad[i] = 0
	}
	_, _, err := reopenDamaged(t, name, bad)
	var ce *CorruptError
	if !errors.As(err, &ce) || ce.Offset != int64(bounds[4]) || filepath.Base(ce.File) != name {
		t.Fatalf("zeroed record 4: got %v, want CorruptError at %d", err, bounds[4])
	}
	// Zeros past the last record: preallocated space, kept for the next
	// appends.
	tail := append(bytes.Clone(data), make([]byte, 4096)...)
	w, dir, err := reopenDamaged(t, name, tail)
	if err != nil {
		t.Fatal(err)
	}
	expectEntries(t, readAll(t, w, k1), entries)
	_ = w.Close()
	if st, _ := os.Stat(filepath.Join(dir, name)); st.Size() != int64(len(tail)) {
		t.Fatalf("preallocated zeros cut: size %d, want %d", st.Size(), len(tail))
	}
	// Garbage past the last record: torn tail, cut.
	tail = append(bytes.Clone(data), bytes.Repeat([]byte{0xA5}, 4096)...)
	w, dir, err = reopenDamaged(t, name, tail)
	if err != nil {
		t.Fatal(err)
	}
	expectEntries(t, readAll(t, w, k1), entries)
	_ = w.Close()
	if st, _ := os.Stat(filepath.Join(dir, name)); st.Size() != int64(len(data)) {
		t.Fatalf("torn tail not cut: size %d", st.Size())
	}
}

// TestCrashRandom runs random workloads on the crashable memFS and takes
// crash snapshots while appends are in flight, keeping random parts of
// unsynced data (torn writes: a prefix of what grew a file, any subset of
// the sectors overwritten in space written ahead), with and without
// Options.Prealloc. After every simulated crash, recovery must
// keep every acknowledged entry, return only byte-exact entries that were
// written, and restore exactly the segments whose Create, Seal and Delete had
// returned.
func TestCrashRandom(t *testing.T) {
	seeds := 20
	if testing.Short() {
		seeds = 4
	}
	for _, prealloc := range []int64{0, 1536} {
		for seed := int64(1); seed <= int64(seeds); seed++ {
			runCrashRandom(t, seed, prealloc)
		}
	}
}

type crashSeg struct {
	entries [][]byte // submitted, in offset order
	acked   int      // prefix of entries acknowledged
	sealed  bool
}

func runCrashRandom(t *testing.T, seed, prealloc int64) {
	rng := rand.New(rand.NewSource(seed))
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("seed %d prealloc %d: "+format, append([]any{seed, prealloc}, args...)...)
	}
	fsys := newMemFS()
	w, err := Open("/d", Options{FS: fsys, Logger: testLogger(t), Prealloc: prealloc})
	if err != nil {
		fail("%v", err)
	}
	defer w.Close()
	keys := []SegmentKey{{"a", 0}, {"a", 1}, {"b.c", 0}}
	var mu sync.Mutex // guards model acked counters (callbacks run on the committer)
	model := map[SegmentKey]*crashSeg{}
	var inflight sync.WaitGroup
	settle := func() { inflight.Wait() }

	for step := 0; step < 300; step++ {
		k := keys[rng.Intn(len(keys))]
		m := model[k]
		switch op := rng.Intn(20); {
		case op < 12: // burst of async appends
			if m == nil || m.sealed {
				continue
			}
			for n := rng.Intn(20) + 1; n > 0; n-- {
				e := payload(k.Topic, uint64(len(m.entries))+uint64(rng.Intn(1000))<<32, rng.Intn(3000)+1)
				m.entries = append(m.entries, e)
				want := uint64(len(m.entries) - 1)
				inflight.Add(1)
				w.AppendAsync(k, [][]byte{e}, func(first uint64, err error) {
					defer inflight.Done()
					if err != nil || first != want {
						t.Errorf("seed %d: append to %v: first=%d want %d err=%v", seed, k, first, want, err)
						return
					}
					mu.Lock()
					if int(first)+1 > m.acked {
						m.acked = int(first) + 1
					}
					mu.Unlock()
				})
			}
		case op < 13:
			settle()
			if err := w.Create(k); err != nil && !(m != nil && m.sealed && errors.Is(err, ErrSealed)) {
				fail("create %v: %v", k, err)
			}
			if m == nil {
				model[k] = &crashSeg{}
			}
		case op < 14:
			if m == nil || m.sealed {
				continue
			}
			settle()
			c := rng.Intn(len(m.entries) + 1)
			if err := w.Truncate(k, uint64(c)); err != nil {
				fail("truncate %v: %v", k, err)
			}
			m.entries, m.acked = m.entries[:c], c
		case op < 15:
			if m == nil || m.sealed {
				continue
			}
			settle()
			c := rng.Intn(len(m.entries) + 1)
			if err := w.Seal(k, uint64(c)); err != nil {
				fail("seal %v: %v", k, err)
			}
			m.entries, m.acked, m.sealed = m.entries[:c], c, true
		case op < 16:
			if m == nil {
				continue
			}
			settle()
			if err := w.Delete(k); err != nil {
				fail("delete %v: %v", k, err)
			}
			delete(model, k)
		default: // crash now, with appends possibly in flight
			mu.Lock()
			acked := map[SegmentKey]int{}
			for k, m := range model {
				acked[k] = m.acked
			}
			mu.Unlock()
			snap := fsys.crash(rng)
			checkCrash(t, seed, step, snap, model, acked, prealloc)
		}
	}
	settle()
}

func checkCrash(t *testing.T, seed int64, step int, snap *memFS, model map[SegmentKey]*crashSeg, acked map[SegmentKey]int, prealloc int64) {
	t.Helper()
	w, err := Open("/d", Options{FS: snap, Logger: testLogger(t), Prealloc: prealloc})
	if err != nil {
		t.Fatalf("seed %d step %d: Open after crash: %v", seed, step, err)
	}
	defer w.Close()
	segs := w.Segments()
	if len(segs) != len(model) {
		t.Fatalf("seed %d step %d: %d segments after crash, model has %d (%v)", seed, step, len(segs), len(model), segs)
	}
	for _, info := range segs {
		m := model[info.Key]
		if m == nil {
			t.Fatalf("seed %d step %d: unexpected segment %v", seed, step, info.Key)
		}
		if info.Sealed != m.sealed {
			t.Fatalf("seed %d step %d: %v sealed=%v, model %v", seed, step, info.Key, info.Sealed, m.sealed)
		}
		n := int(info.Count)
		if n < acked[info.Key] || n > len(m.entries) {
			t.Fatalf("seed %d step %d: %v recovered %d entries; acknowledged %d, submitted %d", seed, step, info.Key, n, acked[info.Key], len(m.entries))
		}
		got := readAll(t, w, info.Key)
		for i := range got {
			if !bytes.Equal(got[i], m.entries[i]) {
				t.Fatalf("seed %d step %d: %v entry %d differs from what was written", seed, step, info.Key, i)
			}
		}
	}
	// The recovered WAL works: append, reopen, same state.
	for _, info := range segs {
		if !info.Sealed {
			if _, err := w.Append(info.Key, [][]byte{[]byte("post-crash")}); err != nil {
				t.Fatalf("seed %d step %d: append after recovery: %v", seed, step, err)
			}
		}
	}
}
