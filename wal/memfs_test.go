package wal

import (
	"math/rand"
	"os"

	"github.com/walrus-go/walrus/testkit/simfs"
)

// memFS is the crashable in-memory disk of the engine's tests: the
// testkit's simulated file system (testkit/simfs, the one the cluster
// simulations run on), as this package's FS, with the helpers the tests
// use. Each file remembers what Sync made durable and the namespace what
// SyncDir did; crash returns the disk a power cut now would leave, fault
// hooks make writes and syncs fail.
type memFS struct{ *simfs.FS }

func newMemFS() *memFS { return &memFS{simfs.New()} }

func (m *memFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := m.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err // not a typed nil *simfs.File in the interface
	}
	return f, nil
}

// crash returns the file system as a machine would find it after losing
// power now, leaving m (and the handles open on it) as it is: the durable
// namespace, each file with its synced contents. With rng, each file that
// only grew since its last sync also keeps a random part of the unsynced
// bytes (a torn write: of the overwritten 512-byte sectors any subset, of
// what grew the file a prefix).
func (m *memFS) crash(rng *rand.Rand) *memFS {
	c := m.FS.Clone()
	c.PowerCut(rng)
	return &memFS{c}
}

// setWriteFault and setSyncFault install (or, with nil, remove) fault
// hooks: a write fault returns how many bytes of the write to keep and the
// error to fail it with (nil: no fault).
func (m *memFS) setWriteFault(f func(name string, p []byte) (int, error)) { m.FS.SetWriteFault(f) }
func (m *memFS) setSyncFault(f func(name string) error)                   { m.FS.SetSyncFault(f) }

// fileBytes returns a copy of a file's current contents (nil if absent).
func (m *memFS) fileBytes(name string) []byte { return m.FS.ReadFile(name) }

// syncedLen returns how many bytes of a file are durable (-1: no file).
func (m *memFS) syncedLen(name string) int { return m.FS.SyncedLen(name) }

// syncCount is the number of successful File.Sync calls so far.
func (m *memFS) syncCount() int { return m.FS.Syncs() }

// names lists the current namespace.
func (m *memFS) names() []string { return m.FS.Names() }
