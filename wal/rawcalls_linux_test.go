package wal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

// The raw and the plain write path give the same bytes, the same sizes and
// the same errors, and every raw-call slot taken is given back.
func TestRawAndPlainCallsAgree(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("raw calls need GOMAXPROCS >= 2")
	}
	dir := t.TempDir()
	for i, fsys := range []FS{OSFS(), OSFSWith(OSFSOptions{PlainSyscalls: true})} {
		made := rawMade.Load()
		f, err := fsys.OpenFile(filepath.Join(dir, "f"), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		want := bytes.Repeat([]byte("0123456789"), 100_000) // 1 MB: more than one page, maybe more than one pwrite
		if n, err := f.WriteAt(want[:10], 0); n != 10 || err != nil {
			t.Fatalf("WriteAt: %d, %v", n, err)
		}
		if n, err := f.WriteAt(want[10:], 10); n != len(want)-10 || err != nil {
			t.Fatalf("WriteAt: %d, %v", n, err)
		}
		if err := f.Sync(); err != nil {
			t.Fatal(err)
		}
		got := make([]byte, len(want))
		if _, err := f.ReadAt(got, 0); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("read back: %v, equal %v", err, bytes.Equal(got, want))
		}
		if n, err := f.WriteAt(nil, 5); n != 0 || err != nil {
			t.Fatalf("empty WriteAt: %d, %v", n, err)
		}
		if _, err := f.WriteAt([]byte("x"), -1); err == nil {
			t.Fatal("WriteAt at a negative offset succeeded")
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
		// two writes and a sync, raw with OSFS, none with PlainSyscalls
		if got, want := rawMade.Load()-made, uint64(3*(1-i)); got != want {
			t.Fatalf("fs %d made %d raw calls, want %d", i, got, want)
		}
		if n := rawCalls.Load(); n != 0 {
			t.Fatalf("%d raw-call slots still taken", n)
		}
	}
}

// /dev/full fails every write with ENOSPC: the raw path must say so in an
// error the WAL recognises as a full disk, as os.File's does.
func TestRawWriteENOSPC(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("raw calls need GOMAXPROCS >= 2")
	}
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	for _, fsys := range []FS{OSFS(), OSFSWith(OSFSOptions{PlainSyscalls: true})} {
		f, err := fsys.OpenFile("/dev/full", os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		n, err := f.WriteAt([]byte("hello"), 0)
		var pe *os.PathError
		if n != 0 || !errors.Is(err, syscall.ENOSPC) || !errors.As(err, &pe) || pe.Op != "write" || pe.Path != "/dev/full" {
			t.Fatalf("write to /dev/full: %d, %#v", n, err)
		}
		f.Close()
	}
	if n := rawCalls.Load(); n != 0 {
		t.Fatalf("%d raw-call slots still taken", n)
	}
}

// A sync error comes back from the raw call as from the plain one.
func TestRawSyncError(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 {
		t.Skip("raw calls need GOMAXPROCS >= 2")
	}
	var errs []error
	made := rawMade.Load()
	for _, fsys := range []FS{OSFS(), OSFSWith(OSFSOptions{PlainSyscalls: true})} {
		// a pipe's fd cannot be synced: EINVAL
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		of, err := newOSFile(w, fsys.(osFS).plain)
		if err != nil {
			t.Fatal(err)
		}
		defer of.Close()
		errs = append(errs, of.Sync())
	}
	if errs[0] == nil || !errors.Is(errs[0], syscall.EINVAL) || errs[0].Error() != errs[1].Error() {
		t.Fatalf("sync of a pipe: raw %v, plain %v", errs[0], errs[1])
	}
	if got := rawMade.Load() - made; got != 1 {
		t.Fatalf("%d raw syncs made, want the first file's one", got)
	}
	// and a good sync after a failed one reports nothing stale
	f, err := OSFS().OpenFile(filepath.Join(t.TempDir(), "g"), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
}

// The bound: never more raw calls at once than GOMAXPROCS-1, none at 1.
func TestRawCallSlots(t *testing.T) {
	prev := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(prev)
	if acquireRaw() {
		t.Fatal("a raw-call slot at GOMAXPROCS=1")
	}
	runtime.GOMAXPROCS(3)
	for i := range 2 {
		if !acquireRaw() {
			t.Fatalf("slot %d of two not free at GOMAXPROCS=3", i+1)
		}
	}
	if acquireRaw() {
		t.Fatal("a third slot at GOMAXPROCS=3")
	}
	releaseRaw()
	if !acquireRaw() {
		t.Fatal("a released slot was not free again")
	}
	releaseRaw()
	releaseRaw()
	if n := rawCalls.Load(); n != 0 {
		t.Fatalf("%d slots taken after releasing all", n)
	}
}
