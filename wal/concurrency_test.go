package wal

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"sync"
	"sync/atomic"
	"testing"
)

// selfCheck builds an entry that carries its writer, sequence number and a
// checksum, so a concurrent reader can verify any entry it sees.
func selfCheck(writer, seq int, size int) []byte {
	b := payload(fmt.Sprintf("w%d", writer), uint64(seq), max(size, 16))
	binary.LittleEndian.PutUint32(b[0:], uint32(writer))
	binary.LittleEndian.PutUint32(b[4:], uint32(seq))
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.ChecksumIEEE(b[:len(b)-4]))
	return b
}

func selfChecks(b []byte) bool {
	return len(b) >= 16 && crc32.ChecksumIEEE(b[:len(b)-4]) == binary.LittleEndian.Uint32(b[len(b)-4:])
}

// TestConcurrent runs many appenders (sync, async, batches) over several
// segments while readers, Info and Segments run alongside; afterwards every
// acknowledged entry is at the offset it was given, exactly once. Run with
// -race.
func TestConcurrent(t *testing.T) {
	for _, mode := range []SyncMode{SyncEveryBatch, SyncInterval, SyncNever} {
		t.Run(mode.String(), func(t *testing.T) { runConcurrent(t, mode) })
	}
}

func runConcurrent(t *testing.T, mode SyncMode) {
	w := openWAL(t, "/d", Options{FS: newMemFS(), Sync: mode})
	keys := []SegmentKey{{"x", 0}, {"x", 1}, {"y", 0}}
	for _, k := range keys {
		mustCreate(t, w, k)
	}
	const writers, perWriter = 12, 150
	type placed struct {
		key SegmentKey
		off uint64
		e   []byte
	}
	var mu sync.Mutex
	var all []placed
	record := func(k SegmentKey, first uint64, es [][]byte) {
		mu.Lock()
		for i, e := range es {
			all = append(all, placed{k, first + uint64(i), e})
		}
		mu.Unlock()
	}
	var stop atomic.Bool
	var readers sync.WaitGroup
	for r := 0; r < 3; r++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for i := 0; !stop.Load(); i++ {
				k := keys[i%len(keys)]
				info, err := w.Info(k)
				if err != nil {
					t.Error(err)
					return
				}
				from := uint64(0)
				if info.Count > 0 {
					from = uint64(i*7919) % info.Count
				}
				got, err := w.Read(k, from, 50, 4096)
				if err != nil {
					t.Errorf("Read(%v, %d): %v", k, from, err)
					return
				}
				for _, e := range got {
					if !selfChecks(e) {
						t.Errorf("reader saw a damaged entry")
						return
					}
				}
				_ = w.Segments()
			}
		}()
	}
	var wg sync.WaitGroup
	for g := 0; g < writers; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var async sync.WaitGroup
			for i := 0; i < perWriter; i++ {
				k := keys[(g+i)%len(keys)]
				e := selfCheck(g, i, 16+(g*31+i*17)%900)
				switch i % 3 {
				case 0:
					first, err := w.Append(k, [][]byte{e})
					if err != nil {
						t.Error(err)
						return
					}
					record(k, first, [][]byte{e})
				case 1:
					es := [][]byte{e, selfCheck(g, i+perWriter, 20)}
					async.Add(1)
					w.AppendAsync(k, es, func(first uint64, err error) {
						defer async.Done()
						if err != nil {
							t.Error(err)
							return
						}
						record(k, first, es)
					})
				case 2:
					// AppendAt races with other writers: it may lose, which is fine.
					info, _ := w.Info(k)
					async.Add(1)
					w.AppendAt(k, info.Count, [][]byte{e}, func(first uint64, err error) {
						defer async.Done()
						if err == nil {
							record(k, first, [][]byte{e})
						}
					})
				}
			}
			async.Wait()
		}()
	}
	wg.Wait()
	stop.Store(true)
	readers.Wait()

	seen := map[SegmentKey]map[uint64][]byte{}
	for _, p := range all {
		if seen[p.key] == nil {
			seen[p.key] = map[uint64][]byte{}
		}
		if _, dup := seen[p.key][p.off]; dup {
			t.Fatalf("%v offset %d acknowledged twice", p.key, p.off)
		}
		seen[p.key][p.off] = p.e
	}
	for _, k := range keys {
		got := readAll(t, w, k)
		if len(got) != len(seen[k]) {
			t.Fatalf("%v holds %d entries, %d acknowledged", k, len(got), len(seen[k]))
		}
		for off, e := range got {
			if !bytes.Equal(e, seen[k][uint64(off)]) {
				t.Fatalf("%v offset %d is not the entry acknowledged there", k, off)
			}
		}
		if err := w.Seal(k, uint64(len(got))); err != nil {
			t.Fatal(err)
		}
	}
}

// TestConcurrentControlOps mixes Seal, Truncate, Delete and Create with
// appends and reads on the same segments; it checks for races, deadlocks and
// that every call returns an allowed result.
func TestConcurrentControlOps(t *testing.T) {
	w := openWAL(t, "/d", Options{FS: newMemFS()})
	keys := []SegmentKey{{"c", 0}, {"c", 1}}
	var wg sync.WaitGroup
	for g := 0; g < 6; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 300; i++ {
				k := keys[(g+i)%2]
				var err error
				switch (g*7 + i) % 9 {
				case 0:
					err = w.Create(k)
				case 1, 2, 3:
					_, err = w.Append(k, [][]byte{selfCheck(g, i, 40)})
				case 4:
					var got [][]byte
					got, err = w.Read(k, 0, 100, 0)
					for _, e := range got {
						if !selfChecks(e) {
							t.Error("damaged entry")
						}
					}
				case 5:
					info, ierr := w.Info(k)
					if ierr == nil && info.Count > 0 {
						err = w.Truncate(k, info.Count/2)
					}
				case 6:
					info, ierr := w.Info(k)
					if ierr == nil && i%5 == 0 {
						err = w.Seal(k, info.Count)
					}
				case 7:
					if i%4 == 0 {
						err = w.Delete(k)
					}
				case 8:
					_ = w.Segments()
				}
				if err != nil && !isExpectedRace(err) {
					t.Errorf("unexpected error: %v", err)
				}
			}
		}()
	}
	wg.Wait()
}

// isExpectedRace: errors that concurrent control operations legitimately
// cause each other.
func isExpectedRace(err error) bool {
	for _, e := range []error{ErrUnknownSegment, ErrSealed, ErrShortSegment, ErrOutOfRange} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
