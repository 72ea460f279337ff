//go:build linux && (amd64 || arm64)

package wal

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"unsafe"
)

const canDropCache = true

// dropCache evicts the page-cache pages of every file in dir (they are
// clean: the WAL synced them) with the WAL's own osFile.DropCache
// (POSIX_FADV_DONTNEED, a length of 0 reaching to the end), so the next
// read comes from the disk. Only this benchmark's own files are touched.
func dropCache(b *testing.B, dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		b.Fatal(err)
	}
	for _, e := range ents {
		f, err := OSFS().OpenFile(filepath.Join(dir, e.Name()), os.O_RDONLY, 0)
		if err != nil {
			b.Fatal(err)
		}
		if err := f.(cacheDropper).DropCache(0, 0); err != nil {
			b.Fatal(err)
		}
		_ = f.Close()
	}
}

// residentPages reports, page by page, whether the file at path is in the
// page cache (mincore(2) over a read-only mapping of it).
func residentPages(t *testing.T, path string) []bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() == 0 {
		return nil
	}
	m, err := syscall.Mmap(int(f.Fd()), 0, int(fi.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(m)
	page := int64(os.Getpagesize())
	vec := make([]byte, (fi.Size()+page-1)/page)
	if _, _, errno := syscall.Syscall(syscall.SYS_MINCORE, uintptr(unsafe.Pointer(&m[0])), uintptr(len(m)), uintptr(unsafe.Pointer(&vec[0]))); errno != 0 {
		t.Fatal(errno)
	}
	resident := make([]bool, len(vec))
	for i, v := range vec {
		resident[i] = v&1 != 0
	}
	return resident
}
