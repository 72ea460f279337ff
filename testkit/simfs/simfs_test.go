package simfs

import (
	"bytes"
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func create(t *testing.T, fs *FS, name string) *File {
	t.Helper()
	if err := fs.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := fs.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// syncedThenMore returns a disk whose durable /d/a holds "synced", with
// more written after it and not synced.
func syncedThenMore(t *testing.T, more string) (*FS, *File) {
	t.Helper()
	fs := New()
	f := create(t, fs, "/d/a")
	f.WriteAt([]byte("synced"), 0)
	f.Sync()
	fs.SyncDir("/d")
	f.WriteAt([]byte(more), 6)
	return fs, f
}

func TestPowerCutKeepsOnlySyncedData(t *testing.T) {
	fs, f := syncedThenMore(t, "-lost")
	g := create(t, fs, "/d/b") // never made durable in the directory
	g.WriteAt([]byte("x"), 0)
	g.Sync()
	fs.PowerCut(nil)
	if got := string(fs.ReadFile("/d/a")); got != "synced" {
		t.Fatalf("after power cut /d/a = %q", got)
	}
	if fs.ReadFile("/d/b") != nil {
		t.Fatal("a file whose directory entry was never synced survived")
	}
	if _, err := f.WriteAt([]byte("zombie"), 6); !errors.Is(err, syscall.EIO) {
		t.Fatalf("write through a handle from before the cut: %v", err)
	}
}

func TestTornWriteKeepsAPrefix(t *testing.T) {
	fs := New()
	f := create(t, fs, "/d/a")
	f.Sync()
	fs.SyncDir("/d")
	f.WriteAt([]byte("0123456789"), 0)
	fs.PowerCutKeeping(func(n int) int { return n / 2 })
	if got := string(fs.ReadFile("/d/a")); got != "01234" {
		t.Fatalf("torn file = %q", got)
	}
	fs2 := New()
	f2 := create(t, fs2, "/d/a")
	f2.Sync()
	fs2.SyncDir("/d")
	f2.WriteAt([]byte("0123456789"), 0)
	fs2.PowerCut(rand.New(rand.NewSource(1)))
	if got := string(fs2.ReadFile("/d/a")); !strings.HasPrefix("0123456789", got) {
		t.Fatalf("torn file = %q, want a prefix of what was written", got)
	}
}

func TestQuotaFailsWithENOSPCAndKeepsWhatFits(t *testing.T) {
	fs := New()
	f := create(t, fs, "/d/a")
	fs.SetQuota(4)
	n, err := f.WriteAt([]byte("abcdef"), 0)
	if n != 4 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write past the quota: %d, %v", n, err)
	}
	if n, err := f.WriteAt([]byte("ABCD"), 0); n != 0 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("overwrite at the quota: %d, %v (a full disk refuses overwrites too, as copy-on-write file systems do)", n, err)
	}
	fs.SetQuota(0)
	if _, err := f.WriteAt([]byte("g"), 4); err != nil {
		t.Fatal(err)
	}
}

// TestTornOverwriteKeepsAnySectors: bytes overwritten inside the synced
// length survive a power cut sector by sector, in any combination (a
// preallocated file's writes): here the second sector's new bytes survive
// and the first's do not.
func TestTornOverwriteKeepsAnySectors(t *testing.T) {
	fs := New()
	f := create(t, fs, "/d/a")
	f.WriteAt(make([]byte, 2048), 0) // zeros written ahead
	f.Sync()
	fs.SyncDir("/d")
	f.WriteAt(bytes.Repeat([]byte{'n'}, 1024), 0)
	fs.PowerCutKeeping(func(n int) int { return n / 2 }) // of 2 sectors, the last one
	got := fs.ReadFile("/d/a")
	if len(got) != 2048 || got[0] != 0 || got[511] != 0 || got[512] != 'n' || got[1023] != 'n' || got[1024] != 0 {
		t.Fatalf("after the cut: len %d, bytes 0,511,512,1023,1024 = %v %v %v %v %v", len(got), got[0], got[511], got[512], got[1023], got[1024])
	}
}

func TestFailedSyncAndCorruption(t *testing.T) {
	fs := New()
	f := create(t, fs, "/d/a")
	f.WriteAt([]byte("abc"), 0)
	fs.FailSyncs(true)
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("sync: %v", err)
	}
	fs.FailSyncs(false)
	f.Sync()
	fs.SyncDir("/d")
	if !fs.Corrupt("/d/a", 1) {
		t.Fatal("corrupt reported no such byte")
	}
	fs.PowerCut(nil)
	if got := fs.ReadFile("/d/a"); got[1] != 'b'^0xff {
		t.Fatalf("bit rot did not survive the power cut: %q", got)
	}
}

// TestFaultHooks: a write fault keeps the bytes it says and fails the
// write; a sync fault fails the sync and makes nothing durable; removing
// the hooks heals the disk.
func TestFaultHooks(t *testing.T) {
	fs := New()
	f := create(t, fs, "/d/a")
	fs.SetWriteFault(func(name string, p []byte) (int, error) {
		if name != "/d/a" {
			t.Errorf("write fault called for %q", name)
		}
		return 2, syscall.ENOSPC
	})
	if n, err := f.WriteAt([]byte("abcd"), 0); n != 2 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("faulted write = %d, %v; want 2, ENOSPC", n, err)
	}
	fs.SetWriteFault(nil)
	if n, err := f.WriteAt([]byte("cd"), 2); n != 2 || err != nil {
		t.Fatalf("write after the fault = %d, %v", n, err)
	}
	fs.SetSyncFault(func(string) error { return syscall.EIO })
	if err := f.Sync(); !errors.Is(err, syscall.EIO) {
		t.Fatalf("faulted sync = %v, want EIO", err)
	}
	if fs.SyncedLen("/d/a") != 0 || fs.Syncs() != 0 {
		t.Fatalf("a failed sync made %d bytes durable (%d syncs)", fs.SyncedLen("/d/a"), fs.Syncs())
	}
	fs.SetSyncFault(nil)
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	if fs.SyncedLen("/d/a") != 4 || fs.Syncs() != 1 || fs.SyncedLen("/d/none") != -1 {
		t.Fatalf("synced %d bytes, %d syncs, absent file %d", fs.SyncedLen("/d/a"), fs.Syncs(), fs.SyncedLen("/d/none"))
	}
	if got := fs.Names(); len(got) != 1 || got[0] != "/d/a" {
		t.Fatalf("Names() = %v", got)
	}
}

// TestCloneIsIndependent: a power cut of a clone leaves the original and
// its open handles alone, and writes to either do not reach the other.
func TestCloneIsIndependent(t *testing.T) {
	fs, f := syncedThenMore(t, "+more")
	c := fs.Clone()
	c.PowerCut(nil)
	if got := string(c.ReadFile("/d/a")); got != "synced" {
		t.Fatalf("clone after power cut = %q, want the synced bytes", got)
	}
	if _, err := f.WriteAt([]byte("!"), 11); err != nil {
		t.Fatalf("the original's handle died with the clone's power cut: %v", err)
	}
	if got := string(fs.ReadFile("/d/a")); got != "synced+more!" {
		t.Fatalf("original = %q", got)
	}
	if got := string(c.ReadFile("/d/a")); got != "synced" {
		t.Fatalf("a write to the original reached the clone: %q", got)
	}
}
