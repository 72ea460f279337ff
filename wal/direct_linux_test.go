//go:build linux

package wal

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// A directFile ends up holding exactly what an ordinary file given the same
// writes and truncations holds, whichever descriptor each write took.
func TestDirectFileMatchesOrdinaryFile(t *testing.T) {
	dir := t.TempDir()
	fs, err := DirectFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	for seed := int64(1); seed <= 20; seed++ {
		rng := rand.New(rand.NewSource(seed))
		name := filepath.Join(dir, "d")
		ref := filepath.Join(dir, "ref")
		_ = os.Remove(name)
		_ = os.Remove(ref)
		df, err := fs.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		d := df.(*directFile)
		rf, err := os.OpenFile(ref, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		size := int64(0)
		for op := 0; op < 300; op++ {
			switch k := rng.Intn(20); {
			case k == 0 && size > 0: // cut back
				to := rng.Int63n(size + 1)
				if err := d.Truncate(to); err != nil {
					t.Fatal(err)
				}
				if err := rf.Truncate(to); err != nil {
					t.Fatal(err)
				}
				size = to
			case k == 1:
				if err := d.Sync(); err != nil {
					t.Fatal(err)
				}
			default: // write: mostly appends into zeros written ahead, sometimes growth or overwrite
				var off int64
				switch {
				case k < 4 || size == 0:
					off = size + rng.Int63n(3*directBlock) // grow, with or without a gap
				default:
					off = rng.Int63n(size)
				}
				p := make([]byte, 1+rng.Intn([]int{40, 300, 5000, 20000}[rng.Intn(4)]))
				rng.Read(p)
				if n, err := d.WriteAt(p, off); err != nil || n != len(p) {
					t.Fatalf("seed %d op %d: WriteAt(%d bytes at %d) = %d, %v", seed, op, len(p), off, n, err)
				}
				if _, err := rf.WriteAt(p, off); err != nil {
					t.Fatal(err)
				}
				size = max(size, off+int64(len(p)))
			}
			if op%10 == 9 || op == 299 {
				got, _ := os.ReadFile(name)
				want, _ := os.ReadFile(ref)
				if !bytes.Equal(got, want) {
					t.Fatalf("seed %d op %d: direct file (%d bytes) differs from the ordinary one (%d bytes)", seed, op, len(got), len(want))
				}
			}
		}
		if d.directWrites == 0 {
			t.Fatalf("seed %d: no write went direct", seed)
		}
		if err := d.Close(); err != nil {
			t.Fatal(err)
		}
		_ = rf.Close()
	}
}

// With Prealloc, a WAL on DirectFS writes appends direct and fdatasyncs only
// for the steps of zeros; what it wrote reads back, across a reopen on the
// ordinary file system, sealed, truncated and open segments alike.
func TestDirectWALAppendsRoundTrip(t *testing.T) {
	dir := t.TempDir()
	fs, err := DirectFS(dir)
	if err != nil {
		t.Fatal(err)
	}
	w := openWAL(t, dir, Options{FS: fs, Prealloc: DefaultPrealloc})
	keys := []SegmentKey{{Topic: "a", Segment: 1}, {Topic: "b", Segment: 1}, {Topic: "c", Segment: 1}}
	want := map[SegmentKey][][]byte{}
	for _, k := range keys {
		mustCreate(t, w, k)
	}
	rng := rand.New(rand.NewSource(7))
	for round := 0; round < 400; round++ {
		k := keys[rng.Intn(len(keys))]
		var batch [][]byte
		for i := rng.Intn(5); i >= 0; i-- {
			size := []int{1, 100, 4075, 4096, 9000}[rng.Intn(5)]
			batch = append(batch, payload(k.Topic, uint64(len(want[k])+len(batch)), size))
		}
		mustAppend(t, w, k, batch...)
		want[k] = append(want[k], batch...)
	}
	s, err := w.lookup(keys[0])
	if err != nil {
		t.Fatal(err)
	}
	d := s.f.(*directFile)
	steps := int(s.alloc / DefaultPrealloc)
	if d.directWrites == 0 || d.datasyncs > steps+1 {
		t.Fatalf("segment a: %d direct writes, %d fdatasyncs for %d steps of zeros: appends should go direct, fdatasyncs only for the header and the zeros", d.directWrites, d.datasyncs, steps)
	}
	if err := w.Seal(keys[0], uint64(len(want[keys[0]]))); err != nil {
		t.Fatal(err)
	}
	cut := uint64(len(want[keys[1]]) / 2)
	if err := w.Truncate(keys[1], cut); err != nil {
		t.Fatal(err)
	}
	want[keys[1]] = want[keys[1]][:cut]
	more := [][]byte{payload("b", cut, 50), payload("b", cut+1, 5000)}
	mustAppend(t, w, keys[1], more...) // after the truncation, over the cut block
	want[keys[1]] = append(want[keys[1]], more...)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	w2 := openWAL(t, dir, Options{})
	for _, k := range keys {
		got := readAll(t, w2, k)
		if len(got) != len(want[k]) {
			t.Fatalf("%v: %d entries after reopen, want %d", k, len(got), len(want[k]))
		}
		for i := range got {
			if !bytes.Equal(got[i], want[k][i]) {
				t.Fatalf("%v entry %d differs after reopen", k, i)
			}
		}
	}
}
