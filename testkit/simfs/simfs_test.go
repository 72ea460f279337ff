package simfs

import (
	"errors"
	"math/rand"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/walrus-go/walrus/wal"
)

func create(t *testing.T, fs *FS, name string) wal.File {
	t.Helper()
	if err := fs.MkdirAll(filepath.Dir(name), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := fs.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestPowerCutKeepsOnlySyncedData(t *testing.T) {
	fs := New()
	f := create(t, fs, "/d/a")
	f.Write([]byte("synced"))
	f.Sync()
	fs.SyncDir("/d")
	f.Write([]byte("-lost"))
	g := create(t, fs, "/d/b") // never made durable in the directory
	g.Write([]byte("x"))
	g.Sync()
	fs.PowerCut(nil)
	if got := string(fs.ReadFile("/d/a")); got != "synced" {
		t.Fatalf("after power cut /d/a = %q", got)
	}
	if fs.ReadFile("/d/b") != nil {
		t.Fatal("a file whose directory entry was never synced survived")
	}
	if _, err := f.Write([]byte("zombie")); !errors.Is(err, syscall.EIO) {
		t.Fatalf("write through a handle from before the cut: %v", err)
	}
}

func TestTornWriteKeepsAPrefix(t *testing.T) {
	fs := New()
	f := create(t, fs, "/d/a")
	f.Sync()
	fs.SyncDir("/d")
	f.Write([]byte("0123456789"))
	fs.PowerCutKeeping(func(n int) int { return n / 2 })
	if got := string(fs.ReadFile("/d/a")); got != "01234" {
		t.Fatalf("torn file = %q", got)
	}
	fs2 := New()
	f2 := create(t, fs2, "/d/a")
	f2.Sync()
	fs2.SyncDir("/d")
	f2.Write([]byte("0123456789"))
	fs2.PowerCut(rand.New(rand.NewSource(1)))
	if got := string(fs2.ReadFile("/d/a")); !strings.HasPrefix("0123456789", got) {
		t.Fatalf("torn file = %q, want a prefix of what was written", got)
	}
}

func TestQuotaFailsWithENOSPCAndKeepsWhatFits(t *testing.T) {
	fs := New()
	f := create(t, fs, "/d/a")
	fs.SetQuota(4)
	n, err := f.Write([]byte("abcdef"))
	if n != 4 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write past the quota: %d, %v", n, err)
	}
	fs.SetQuota(0)
	if _, err := f.Write([]byte("g")); err != nil {
		t.Fatal(err)
	}
}

func TestFailedSyncAndCorruption(t *testing.T) {
	fs := New()
	f := create(t, fs, "/d/a")
	f.Write([]byte("abc"))
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
