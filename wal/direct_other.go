//go:build !linux

package wal

import "errors"

// DirectFS is Linux only (see direct_linux.go).
func DirectFS(dir string) (FS, error) {
	return nil, errors.New("wal: O_DIRECT writes are supported on Linux only")
}
