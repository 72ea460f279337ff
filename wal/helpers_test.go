package wal

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// testLogger routes engine logs to t.Log (visible with -v or on failure).
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// openWAL opens a WAL and closes it at the end of the test (if still open).
func openWAL(t testing.TB, dir string, opts Options) *WAL {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	w, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

// payload is deterministic test content for entry i of a segment: size
// bytes, never empty, different for every (tag, i).
func payload(tag string, i uint64, size int) []byte {
	if size <= 0 {
		size = 1
	}
	b := make([]byte, size)
	s := fmt.Sprintf("%s#%d|", tag, i)
	for k := range b {
		b[k] = s[k%len(s)] ^ byte(k/len(s))
	}
	return b
}

func mustCreate(t testing.TB, w *WAL, key SegmentKey) {
	t.Helper()
	if err := w.Create(key); err != nil {
		t.Fatalf("Create(%v): %v", key, err)
	}
}

func mustAppend(t testing.TB, w *WAL, key SegmentKey, entries ...[]byte) uint64 {
	t.Helper()
	first, err := w.Append(key, entries)
	if err != nil {
		t.Fatalf("Append(%v, %d entries): %v", key, len(entries), err)
	}
	return first
}

// readAll reads every durable entry of a segment in small batches.
func readAll(t testing.TB, w *WAL, key SegmentKey) [][]byte {
	t.Helper()
	var out [][]byte
	for {
		got, err := w.Read(key, uint64(len(out)), 7, 1000)
		if err != nil {
			t.Fatalf("Read(%v, %d): %v", key, len(out), err)
		}
		if len(got) == 0 {
			return out
		}
		out = append(out, got...)
	}
}

func expectEntries(t testing.TB, got, want [][]byte) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if !bytes.Equal(got[i], want[i]) {
			t.Fatalf("entry %d: got %q, want %q", i, trunc(got[i]), trunc(want[i]))
		}
	}
}

func trunc(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}

func expectErr(t testing.TB, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("got error %v, want %v", err, target)
	}
}

// waitFor polls cond until it holds, failing after a generous deadline with
// what it waited for. Tests wait on conditions, never on sleeps alone.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// segFiles lists the segment files in a real directory.
func segFiles(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if _, ok := parseName(e.Name()); ok {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	return out
}
