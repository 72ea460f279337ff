package wal

import (
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Benchmarks. Run: go test -run '^$' -bench . ./wal
//
// BenchmarkAppend: every appender goroutine calls Append with one entry and
// waits, over and over; all appenders share one segment (segments=1) or
// spread over 16.
// BenchmarkAppendBatches: 16 appenders each append batches of 1 or 100
// entries of 128 B to one segment, as a node's WAL sees 16 producers' PUTs
// or MPUTs, with and without the node's preallocation step (zeros written
// ahead of the records; --wal-prealloc).
// Both report entries/s, MB/s of payload, entries per round (one write per
// file) and per sync.
// BenchmarkDiskBaseline: the disk's own limits in the same run: append a
// 4 KiB or 1 MiB block and fdatasync, in a loop, in b.TempDir().

func BenchmarkAppend(b *testing.B) {
	for _, mode := range []SyncMode{SyncEveryBatch, SyncInterval, SyncNever} {
		for _, size := range []int{128, 1024} {
			for _, appenders := range []int{1, 16, 256} {
				for _, segs := range []int{1, 16} {
					if segs > appenders {
						continue
					}
					name := fmt.Sprintf("sync=%s/size=%d/appenders=%d/segments=%d", mode, size, appenders, segs)
					b.Run(name, func(b *testing.B) { benchAppend(b, Options{Sync: mode}, size, 1, appenders, segs) })
				}
			}
		}
	}
}

func BenchmarkAppendBatches(b *testing.B) {
	for _, batch := range []int{1, 100} {
		for _, prealloc := range []int64{0, DefaultPrealloc} {
			b.Run(fmt.Sprintf("batch=%d/prealloc=%d", batch, prealloc), func(b *testing.B) {
				benchAppend(b, Options{Prealloc: prealloc}, 128, batch, 16, 1)
			})
		}
	}
}

// benchAppend: appenders goroutines append batches of batch entries of
// size bytes, spread over segs segments, until b.N entries are written.
func benchAppend(b *testing.B, opts Options, size, batch, appenders, segs int) {
	w, err := Open(b.TempDir(), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	keys := make([]SegmentKey, segs)
	for i := range keys {
		keys[i] = SegmentKey{Topic: "bench", Segment: uint64(i)}
		if err := w.Create(keys[i]); err != nil {
			b.Fatal(err)
		}
	}
	entry := make([]byte, size)
	rand.New(rand.NewSource(1)).Read(entry)
	es := make([][]byte, batch)
	for i := range es {
		es[i] = entry
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for a := 0; a < appenders; a++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			k := keys[a%segs]
			for next.Add(int64(batch)) < int64(b.N)+int64(batch) {
				if _, err := w.Append(k, es); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	el := time.Since(start).Seconds()
	b.StopTimer()
	st := w.Stats()
	b.ReportMetric(float64(st.Entries)/el, "entries/s")
	b.ReportMetric(float64(st.Entries)*float64(size)/el/1e6, "MB/s")
	if st.Batches > 0 {
		b.ReportMetric(float64(st.Entries)/float64(st.Batches), "entries/round")
	}
	if st.Syncs > uint64(segs) { // Create synced each segment once
		b.ReportMetric(float64(st.Entries)/float64(st.Syncs-uint64(segs)), "entries/sync")
	}
}

func BenchmarkDiskBaseline(b *testing.B) {
	for _, size := range []int{4 << 10, 256 << 10, 1 << 20} {
		name := fmt.Sprintf("write=%dKiB+fdatasync", size>>10)
		if size == 1<<20 {
			name = "write=1MiB+fdatasync"
		}
		b.Run(name, func(b *testing.B) {
			f, err := OSFS().OpenFile(filepath.Join(b.TempDir(), "baseline"), os.O_CREATE|os.O_RDWR, 0o644)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, size)
			rand.New(rand.NewSource(1)).Read(buf)
			written := 0
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				if _, err := f.WriteAt(buf, int64(written)); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
				if written += size; written >= 256<<20 { // keep the file bounded; like the WAL, it appends
					if err := f.Truncate(0); err != nil {
						b.Fatal(err)
					}
					written = 0
				}
			}
			el := time.Since(start).Seconds()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/el, "syncs/s")
			b.ReportMetric(float64(b.N)*float64(size)/el/1e6, "MB/s")
		})
	}
}

// BenchmarkDiskBaseline16Files: the limit for a commit cycle that touches 16
// files: append 4 KiB to each of 16 files, then fdatasync all 16 in parallel.
func BenchmarkDiskBaseline16Files(b *testing.B) {
	dir := b.TempDir()
	files := make([]File, 16)
	for i := range files {
		f, err := OSFS().OpenFile(filepath.Join(dir, fmt.Sprint(i)), os.O_CREATE|os.O_RDWR, 0o644)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		files[i] = f
	}
	buf := make([]byte, 4<<10)
	errs := make([]error, len(files))
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		var wg sync.WaitGroup
		for j, f := range files {
			if _, err := f.WriteAt(buf, int64(i)*int64(len(buf))); err != nil {
				b.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[j] = f.Sync()
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	el := time.Since(start).Seconds()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el, "cycles/s")
	b.ReportMetric(float64(b.N)*16*4096/el/1e6, "MB/s")
}

// BenchmarkReopen measures Open (full recovery: every record read and
// checksummed, sparse index rebuilt) of a WAL holding ~1 GiB in 8 segments.
// warm: the files are in the page cache; cold: their pages were dropped
// first (fadvise DONTNEED, Linux only), so the disk is read. Skipped with
// -short.
func BenchmarkReopen(b *testing.B) {
	if testing.Short() {
		b.Skip("builds a 1 GiB WAL")
	}
	base := b.TempDir() // removed when BenchmarkReopen and all its sub-benchmarks end
	for _, size := range []int{128, 4096} {
		dir := filepath.Join(base, fmt.Sprint(size))
		var once sync.Once
		for _, cold := range []bool{false, true} {
			name := fmt.Sprintf("size=%d/cache=warm", size)
			if cold {
				if !canDropCache {
					continue
				}
				name = fmt.Sprintf("size=%d/cache=cold", size)
			}
			b.Run(name, func(b *testing.B) {
				once.Do(func() { buildReopenWAL(b, dir, size) })
				benchReopen(b, dir, cold)
			})
		}
	}
}

// buildReopenWAL writes ~1 GiB of size-byte entries into 8 segments.
func buildReopenWAL(b *testing.B, dir string, size int) {
	w, err := Open(dir, Options{Sync: SyncNever})
	if err != nil {
		b.Fatal(err)
	}
	const total, segs = 1 << 30, 8
	entry := make([]byte, size)
	rand.New(rand.NewSource(2)).Read(entry)
	batch := make([][]byte, (1<<20)/size)
	for i := range batch {
		batch[i] = entry
	}
	per := total / segs / (recordHeader + size)
	for s := 0; s < segs; s++ {
		k := SegmentKey{Topic: "reopen", Segment: uint64(s)}
		if err := w.Create(k); err != nil {
			b.Fatal(err)
		}
		for n := 0; n < per; n += len(batch) {
			if _, err := w.Append(k, batch[:min(len(batch), per-n)]); err != nil {
				b.Fatal(err)
			}
		}
	}
	if err := w.Close(); err != nil { // syncs: the pages are clean, so they can be dropped
		b.Fatal(err)
	}
}

func benchReopen(b *testing.B, dir string, cold bool) {
	var bytes int64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if cold {
			b.StopTimer()
			dropCache(b, dir)
			b.StartTimer()
		}
		w, err := Open(dir, Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		bytes = 0
		for _, s := range w.Segments() {
			bytes += s.Bytes
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.StopTimer()
	b.ReportMetric(float64(bytes)/(1<<30), "GiB")
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/open")
}
