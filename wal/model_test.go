package wal

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"strconv"
	"testing"
	"time"
)

// The model test drives the WAL with random operations and checks every
// result against a trivial in-memory model. A failure prints the seed; rerun
// one seed with WAL_MODEL_SEED=<seed> go test -run TestModel ./wal.

type modelSeg struct {
	entries [][]byte
	sealed  bool
}

type modelRun struct {
	t     *testing.T
	seed  int64
	step  int
	rng   *rand.Rand
	w     *WAL
	dir   string
	opts  Options
	model map[SegmentKey]*modelSeg
	keys  []SegmentKey
}

const modelMaxEntry = 64 << 10

func TestModel(t *testing.T) {
	seeds := []int64{}
	if s := os.Getenv("WAL_MODEL_SEED"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, n)
	} else {
		n := 30
		if testing.Short() {
			n = 5
		}
		for i := 1; i <= n; i++ {
			seeds = append(seeds, int64(i))
		}
	}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("memfs/seed=%d", seed), func(t *testing.T) {
			// every other seed preallocates (a step below most rounds' size);
			// under SyncInterval a sync runs beside the committer almost all
			// the time, and contractFS reports a file touched under it
			runModel(t, seed, 400, "/d", Options{FS: contractFS{newMemFS(), t}, MaxEntryBytes: modelMaxEntry, Sync: SyncMode(seed % 3), SyncInterval: 50 * time.Microsecond, Prealloc: seed % 2 * 2048})
		})
	}
	t.Run("osfs/seed=1000", func(t *testing.T) {
		runModel(t, 1000, 300, t.TempDir(), Options{MaxEntryBytes: modelMaxEntry})
	})
	t.Run("osfs/seed=1001/prealloc", func(t *testing.T) {
		runModel(t, 1001, 300, t.TempDir(), Options{MaxEntryBytes: modelMaxEntry, Prealloc: 64 << 10})
	})
}

func runModel(t *testing.T, seed int64, steps int, dir string, opts Options) {
	opts.Logger = quietLogger
	r := &modelRun{t: t, seed: seed, rng: rand.New(rand.NewSource(seed)), dir: dir, opts: opts, model: map[SegmentKey]*modelSeg{}}
	for _, tp := range []string{"a", "b/c", "é.d"} {
		for s := uint64(0); s < 2; s++ {
			r.keys = append(r.keys, SegmentKey{tp, s})
		}
	}
	r.open()
	defer func() { _ = r.w.Close() }()
	for r.step = 0; r.step < steps; r.step++ {
		k := r.keys[r.rng.Intn(len(r.keys))]
		switch op := r.rng.Intn(100); {
		case op < 10:
			r.create(k)
		case op < 35:
			r.append(k)
		case op < 45:
			r.appendAsync(k)
		case op < 55:
			r.appendAt(k)
		case op < 80:
			r.read(k)
		case op < 85:
			r.seal(k)
		case op < 90:
			r.truncate(k)
		case op < 93:
			r.delete(k)
		case op < 97:
			r.info(k)
		default:
			r.reopen()
		}
	}
	r.reopen()
	for _, k := range r.keys {
		if m := r.model[k]; m != nil {
			expectEntries(t, readAll(t, r.w, k), m.entries)
		}
	}
}

func (r *modelRun) fail(format string, args ...any) {
	r.t.Helper()
	r.t.Fatalf("seed %d step %d: %s", r.seed, r.step, fmt.Sprintf(format, args...))
}

func (r *modelRun) check(what string, got, want error) {
	r.t.Helper()
	if want == nil && got != nil || want != nil && !errors.Is(got, want) {
		r.fail("%s: got error %v, want %v", what, got, want)
	}
}

func (r *modelRun) open() {
	w, err := Open(r.dir, r.opts)
	if err != nil {
		r.fail("Open: %v", err)
	}
	r.w = w
}

func (r *modelRun) reopen() {
	if err := r.w.Close(); err != nil {
		r.fail("Close: %v", err)
	}
	r.open()
	r.segments()
}

// entries makes 1..4 random entries; bad asks for one invalid entry, and
// returns the error it must cause.
func (r *modelRun) entries() ([][]byte, error) {
	n := r.rng.Intn(4) + 1
	es := make([][]byte, n)
	for i := range es {
		size := r.rng.Intn(300) + 1
		if r.rng.Intn(20) == 0 {
			size = r.rng.Intn(modelMaxEntry) + 1
		}
		es[i] = payload(fmt.Sprintf("m%d", r.seed), uint64(r.step)<<8|uint64(i), size)
	}
	switch r.rng.Intn(25) {
	case 0:
		es[r.rng.Intn(n)] = []byte{}
		return es, ErrEmptyEntry
	case 1:
		es[r.rng.Intn(n)] = make([]byte, modelMaxEntry+1)
		return es, ErrEntryTooLarge
	}
	return es, nil
}

// appendErr is what an append to k must fail with (nil: succeed), given the
// entries' own error.
func (r *modelRun) appendErr(k SegmentKey, bad error) error {
	m := r.model[k]
	switch {
	case bad != nil:
		return bad
	case m == nil:
		return ErrUnknownSegment
	case m.sealed:
		return ErrSealed
	}
	return nil
}

func (r *modelRun) create(k SegmentKey) {
	m := r.model[k]
	var want error
	if m != nil && m.sealed {
		want = ErrSealed
	}
	r.check("Create", r.w.Create(k), want)
	if m == nil {
		r.model[k] = &modelSeg{}
	}
}

func (r *modelRun) append(k SegmentKey) {
	es, bad := r.entries()
	want := r.appendErr(k, bad)
	first, err := r.w.Append(k, es)
	r.check("Append", err, want)
	if want == nil {
		m := r.model[k]
		if first != uint64(len(m.entries)) {
			r.fail("Append first=%d, model end %d", first, len(m.entries))
		}
		m.entries = append(m.entries, es...)
	}
}

func (r *modelRun) appendAsync(k SegmentKey) {
	n := r.rng.Intn(8) + 1
	type res struct {
		first uint64
		err   error
	}
	results := make(chan res, n)
	var wants []error
	var firsts []uint64
	for i := 0; i < n; i++ {
		es, bad := r.entries()
		want := r.appendErr(k, bad)
		wants = append(wants, want)
		if want == nil {
			m := r.model[k]
			firsts = append(firsts, uint64(len(m.entries)))
			m.entries = append(m.entries, es...)
		} else {
			firsts = append(firsts, 0)
		}
		r.w.AppendAsync(k, es, func(first uint64, err error) { results <- res{first, err} })
	}
	for i := 0; i < n; i++ { // callbacks run in call order
		got := <-results
		r.check(fmt.Sprintf("AppendAsync #%d", i), got.err, wants[i])
		if wants[i] == nil && got.first != firsts[i] {
			r.fail("AppendAsync #%d first=%d, want %d", i, got.first, firsts[i])
		}
	}
}

func (r *modelRun) appendAt(k SegmentKey) {
	m := r.model[k]
	off := uint64(0)
	if m != nil {
		off = uint64(len(m.entries))
	}
	if r.rng.Intn(3) == 0 {
		off = uint64(r.rng.Intn(int(off) + 3))
	}
	es, bad := r.entries()
	want := r.appendErr(k, bad)
	if want == nil && off != uint64(len(m.entries)) {
		want = ErrOffsetMismatch
	}
	ch := make(chan error, 1)
	var first uint64
	r.w.AppendAt(k, off, es, func(f uint64, err error) { first = f; ch <- err })
	err := <-ch
	r.check("AppendAt", err, want)
	if errors.Is(want, ErrOffsetMismatch) {
		var om *OffsetMismatchError
		if !errors.As(err, &om) || om.Have != uint64(len(m.entries)) || om.Want != off {
			r.fail("AppendAt mismatch %v, want Have=%d Want=%d", err, len(m.entries), off)
		}
	}
	if want == nil {
		if first != off {
			r.fail("AppendAt first=%d, want %d", first, off)
		}
		m.entries = append(m.entries, es...)
	}
}

func (r *modelRun) read(k SegmentKey) {
	m := r.model[k]
	n := 0
	if m != nil {
		n = len(m.entries)
	}
	from := r.rng.Intn(n + 2)
	maxE := r.rng.Intn(10)
	maxB := []int{0, 1, 100, 1000, 100000}[r.rng.Intn(5)]
	got, err := r.w.Read(k, uint64(from), maxE, maxB)
	switch {
	case m == nil:
		r.check("Read", err, ErrUnknownSegment)
		return
	case from > n:
		r.check("Read", err, ErrOutOfRange)
		return
	}
	r.check("Read", err, nil)
	var want [][]byte
	total := 0
	for i := from; i < n; i++ {
		if maxE > 0 && len(want) == maxE {
			break
		}
		if maxB > 0 && len(want) > 0 && total+len(m.entries[i]) > maxB {
			break
		}
		want = append(want, m.entries[i])
		total += len(m.entries[i])
	}
	if len(got) != len(want) {
		r.fail("Read(%v, %d, %d, %d): %d entries, want %d", k, from, maxE, maxB, len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			r.fail("Read(%v, %d, %d, %d): entry %d differs", k, from, maxE, maxB, from+i)
		}
	}
}

func (r *modelRun) seal(k SegmentKey) {
	m := r.model[k]
	n := 0
	if m != nil {
		n = len(m.entries)
	}
	c := r.rng.Intn(n + 2)
	if r.rng.Intn(2) == 0 {
		c = n
	}
	var want error
	switch {
	case m == nil:
		want = ErrUnknownSegment
	case m.sealed && c != n:
		want = ErrSealed
	case c > n:
		want = ErrShortSegment
	}
	r.check("Seal", r.w.Seal(k, uint64(c)), want)
	if want == nil {
		m.entries, m.sealed = m.entries[:c], true
	}
}

func (r *modelRun) truncate(k SegmentKey) {
	m := r.model[k]
	n := 0
	if m != nil {
		n = len(m.entries)
	}
	c := r.rng.Intn(n + 2)
	var want error
	switch {
	case m == nil:
		want = ErrUnknownSegment
	case m.sealed:
		want = ErrSealed
	case c > n:
		want = ErrShortSegment
	}
	r.check("Truncate", r.w.Truncate(k, uint64(c)), want)
	if want == nil {
		m.entries = m.entries[:c]
	}
}

func (r *modelRun) delete(k SegmentKey) {
	var want error
	if r.model[k] == nil {
		want = ErrUnknownSegment
	}
	r.check("Delete", r.w.Delete(k), want)
	delete(r.model, k)
}

func (r *modelRun) info(k SegmentKey) {
	m := r.model[k]
	info, err := r.w.Info(k)
	if m == nil {
		r.check("Info", err, ErrUnknownSegment)
		return
	}
	r.check("Info", err, nil)
	if info.Key != k || info.Count != uint64(len(m.entries)) || info.Sealed != m.sealed {
		r.fail("Info(%v) = %+v, model count %d sealed %v", k, info, len(m.entries), m.sealed)
	}
	r.segments()
}

func (r *modelRun) segments() {
	segs := r.w.Segments()
	if len(segs) != len(r.model) {
		r.fail("Segments() has %d, model %d", len(segs), len(r.model))
	}
	for i, s := range segs {
		m := r.model[s.Key]
		if m == nil || s.Count != uint64(len(m.entries)) || s.Sealed != m.sealed {
			r.fail("Segments()[%d] = %+v disagrees with the model", i, s)
		}
		if i > 0 {
			p := segs[i-1].Key
			if p.Topic > s.Key.Topic || p.Topic == s.Key.Topic && p.Segment >= s.Key.Segment {
				r.fail("Segments() not sorted at %d", i)
			}
		}
	}
}
