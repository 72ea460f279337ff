//go:build linux && (amd64 || arm64)

package wal

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

const canDropCache = true

// dropCache evicts the page-cache pages of every file in dir (they are
// clean: the WAL synced them) with posix_fadvise(POSIX_FADV_DONTNEED), so
// the next read comes from the disk. Only this benchmark's own files are
// touched.
func dropCache(b *testing.B, dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range ents {
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			b.Fatal(err)
		}
		const posixFadvDontneed = 4
		if _, _, errno := syscall.Syscall6(syscall.SYS_FADVISE64, f.Fd(), 0, 0, posixFadvDontneed, 0, 0); errno != 0 {
			b.Fatal(errno)
		}
		_ = f.Close()
	}
}
