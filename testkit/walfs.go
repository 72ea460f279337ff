package testkit

import (
	"os"

	"github.com/walrus-go/walrus/testkit/simfs"
	"github.com/walrus-go/walrus/wal"
)

// walFS is a simulated disk as the storage engine's file system seam.
// simfs implements wal.FS but for OpenFile's result type (*simfs.File, not
// wal.File): it may not import wal, whose own tests use it.
type walFS struct{ *simfs.FS }

func (w walFS) OpenFile(name string, flag int, perm os.FileMode) (wal.File, error) {
	f, err := w.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err // not a typed nil *simfs.File in the interface
	}
	return f, nil
}
