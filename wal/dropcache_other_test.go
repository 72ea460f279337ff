//go:build !(linux && (amd64 || arm64))

package wal

import "testing"

const canDropCache = false

func dropCache(b *testing.B, dir string) {}
