//go:build !(linux && (amd64 || arm64))

package wal

import "testing"

const canDropCache = false

func dropCache(b *testing.B, dir string) {}

func residentPages(t *testing.T, path string) []bool {
	t.Skip("mincore: only on linux/amd64 and linux/arm64")
	return nil
}
