package wal

import (
	"os"
	"sync/atomic"
	"testing"
)

// countingFS counts the bytes read through ReadAt.
type countingFS struct {
	*memFS
	read atomic.Int64
}

type countingFile struct {
	File
	fs *countingFS
}

func (c *countingFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := c.memFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return countingFile{f, c}, nil
}

func (f countingFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	f.fs.read.Add(int64(n))
	return n, err
}

// TestReadIsNotAScan: reads go through the sparse index and read about what
// they return, never the whole segment, whatever the limits.
func TestReadIsNotAScan(t *testing.T) {
	fsys := &countingFS{memFS: newMemFS()}
	w := openWAL(t, "/d", Options{FS: fsys})
	mustCreate(t, w, k1)
	const n, size = 10000, 1000 // ~10 MB
	batch := make([][]byte, 100)
	for i := uint64(0); i < n; i += 100 {
		for j := range batch {
			batch[j] = payload("scan", i+uint64(j), size)
		}
		mustAppend(t, w, k1, batch...)
	}
	for _, c := range []struct {
		from       uint64
		maxE, maxB int
		entries    int
	}{
		{5000, 1, 0, 1},
		{5001, 0, 4096, 4},
		{9999, 0, 0, 1},
		{123, 10, 0, 10},
		{7777, 50, 1 << 20, 50},
	} {
		fsys.read.Store(0)
		got, err := w.Read(k1, c.from, c.maxE, c.maxB)
		if err != nil || len(got) != c.entries {
			t.Fatalf("Read(%d, %d, %d): %d entries, %v", c.from, c.maxE, c.maxB, len(got), err)
		}
		for i, e := range got {
			if string(e) != string(payload("scan", c.from+uint64(i), size)) {
				t.Fatalf("entry %d wrong", c.from+uint64(i))
			}
		}
		// Index lookup (<= indexEveryBytes of headers) + what is returned +
		// slack of one average record and 4 KiB.
		limit := int64(indexEveryBytes + recordHeader + (c.entries+2)*(size+recordHeader) + 4096)
		if r := fsys.read.Load(); r > limit {
			t.Fatalf("Read(%d, %d, %d) read %d bytes from disk for %d entries (limit %d)", c.from, c.maxE, c.maxB, r, c.entries, limit)
		}
	}
}
