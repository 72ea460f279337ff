//go:build linux && (amd64 || arm64)

package wal

import "syscall"

// posixFadvDontneed is POSIX_FADV_DONTNEED.
const posixFadvDontneed = 4

// DropCache evicts n bytes at off from the page cache
// (posix_fadvise(2) with POSIX_FADV_DONTNEED; the kernel keeps dirty
// pages). A hint: the next read of the range comes from the device.
// Only where fadvise64 takes whole 64-bit arguments (amd64, arm64).
func (f *osFile) DropCache(off, n int64) error {
	var errno syscall.Errno
	if cerr := f.raw.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall6(syscall.SYS_FADVISE64, fd, uintptr(off), uintptr(n), posixFadvDontneed, 0, 0)
	}); cerr != nil {
		return cerr
	}
	if errno != 0 {
		return errno
	}
	return nil
}
