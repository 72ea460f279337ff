package wal

import (
	"bytes"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"path"
	"sort"
	"sync"
	"syscall"
	"time"
)

// memFS is a crashable in-memory FS for tests. Each file remembers what was
// made durable by Sync, and the namespace remembers what was made durable by
// SyncDir; crash() returns a new memFS holding only durable state (plus, if
// asked, part of each file's unsynced writes, which is what a real disk may
// keep: see tear). Fault hooks make writes and syncs fail.
type memFS struct {
	mu      sync.Mutex
	dirs    map[string]bool
	files   map[string]*memInode // current namespace
	durable map[string]*memInode // namespace as of the last SyncDir of each dir

	// Fault injection, guarded by mu. writeFault returns how many bytes of
	// the write to keep and the error to return (nil: no fault).
	writeFault func(name string, p []byte) (keep int, err error)
	syncFault  func(name string) error
	syncs      int // number of successful File.Sync calls
}

type memInode struct {
	mu        sync.Mutex
	data      []byte
	synced    []byte
	dirtyFrom int // lowest byte changed since the last Sync; <= len(synced)
}

func newMemFS() *memFS {
	return &memFS{dirs: map[string]bool{}, files: map[string]*memInode{}, durable: map[string]*memInode{}}
}

type memFile struct {
	fs     *memFS
	ino    *memInode
	name   string
	flag   int
	closed bool
}

type memInfo struct {
	name string
	size int64
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) Mode() fs.FileMode  { return 0o644 }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return false }
func (i memInfo) Sys() any           { return nil }

func (m *memFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	name = path.Clean(name)
	ino := m.files[name]
	switch {
	case ino != nil && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	case ino == nil && flag&os.O_CREATE == 0:
		return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	case ino == nil:
		if !m.dirs[path.Dir(name)] {
			return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		ino = &memInode{}
		m.files[name] = ino
	}
	if flag&os.O_TRUNC != 0 {
		ino.mu.Lock()
		ino.data = ino.data[:0]
		ino.dirtyFrom = 0
		ino.mu.Unlock()
	}
	return &memFile{fs: m, ino: ino, name: name, flag: flag}, nil
}

func (m *memFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	name = path.Clean(name)
	if m.files[name] == nil {
		return &os.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	delete(m.files, name)
	return nil
}

func (m *memFS) Rename(oldpath, newpath string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	oldpath, newpath = path.Clean(oldpath), path.Clean(newpath)
	ino := m.files[oldpath]
	if ino == nil {
		return &os.PathError{Op: "rename", Path: oldpath, Err: fs.ErrNotExist}
	}
	delete(m.files, oldpath)
	m.files[newpath] = ino
	return nil
}

func (m *memFS) MkdirAll(p string, perm os.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for p = path.Clean(p); ; p = path.Dir(p) {
		m.dirs[p] = true
		if p == "." || p == "/" {
			return nil
		}
	}
}

func (m *memFS) ReadDir(name string) ([]os.DirEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	name = path.Clean(name)
	if !m.dirs[name] {
		return nil, &os.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	var out []os.DirEntry
	for p, ino := range m.files {
		if path.Dir(p) == name {
			ino.mu.Lock()
			out = append(out, fs.FileInfoToDirEntry(memInfo{name: path.Base(p), size: int64(len(ino.data))}))
			ino.mu.Unlock()
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

func (m *memFS) SyncDir(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	name = path.Clean(name)
	for p := range m.durable {
		if path.Dir(p) == name {
			delete(m.durable, p)
		}
	}
	for p, ino := range m.files {
		if path.Dir(p) == name {
			m.durable[p] = ino
		}
	}
	return nil
}

// crash returns the file system as a machine would find it after losing
// power now: the durable namespace, each file with its synced contents. With
// rng, each file that only grew since its last sync also keeps a random
// prefix of the unsynced bytes (a torn write).
func (m *memFS) crash(rng *rand.Rand) *memFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := newMemFS()
	for d := range m.dirs {
		n.dirs[d] = true
	}
	for p, ino := range m.durable {
		ino.mu.Lock()
		data := bytes.Clone(ino.synced)
		if rng != nil && len(ino.data) >= len(ino.synced) {
			data = tear(ino.synced, ino.data, ino.dirtyFrom, rng)
		}
		ino.mu.Unlock()
		c := &memInode{data: data, synced: bytes.Clone(data), dirtyFrom: len(data)}
		n.files[p] = c
		n.durable[p] = c
	}
	return n
}

// tear is what a disk may hold after a power cut, of a file that held
// synced after its last sync and data now (not shorter), with bytes from
// dirtyFrom on written since: of the bytes overwritten inside the synced
// length, each 512-byte sector is the new one or the old one at random;
// of the bytes that grew the file, a random prefix.
func tear(synced, data []byte, dirtyFrom int, rng *rand.Rand) []byte {
	out := bytes.Clone(synced)
	for sec := dirtyFrom / 512 * 512; sec < len(synced); sec += 512 {
		if rng.Intn(2) == 0 {
			lo, hi := max(sec, dirtyFrom), min(sec+512, len(synced))
			copy(out[lo:hi], data[lo:hi])
		}
	}
	extra := data[len(synced):]
	return append(out, extra[:rng.Intn(len(extra)+1)]...)
}

// setWriteFault and setSyncFault install (or, with nil, remove) fault hooks.
func (m *memFS) setWriteFault(f func(name string, p []byte) (int, error)) {
	m.mu.Lock()
	m.writeFault = f
	m.mu.Unlock()
}

func (m *memFS) setSyncFault(f func(name string) error) {
	m.mu.Lock()
	m.syncFault = f
	m.mu.Unlock()
}

// fileBytes returns a copy of a file's current contents (nil if absent).
func (m *memFS) fileBytes(name string) []byte {
	m.mu.Lock()
	ino := m.files[path.Clean(name)]
	m.mu.Unlock()
	if ino == nil {
		return nil
	}
	ino.mu.Lock()
	defer ino.mu.Unlock()
	return bytes.Clone(ino.data)
}

// syncedLen returns how many bytes of a file are durable.
func (m *memFS) syncedLen(name string) int {
	m.mu.Lock()
	ino := m.files[path.Clean(name)]
	m.mu.Unlock()
	if ino == nil {
		return -1
	}
	ino.mu.Lock()
	defer ino.mu.Unlock()
	return len(ino.synced)
}

// syncCount is the number of successful File.Sync calls so far.
func (m *memFS) syncCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.syncs
}

// names lists the current namespace.
func (m *memFS) names() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for p := range m.files {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.ino.mu.Lock()
	defer f.ino.mu.Unlock()
	if f.closed {
		return 0, fs.ErrClosed
	}
	if off < 0 {
		return 0, syscall.EINVAL
	}
	if off >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) WriteAt(p []byte, off int64) (int, error) {
	if f.flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return 0, &os.PathError{Op: "write", Path: f.name, Err: syscall.EBADF}
	}
	f.fs.mu.Lock()
	fault := f.fs.writeFault
	f.fs.mu.Unlock()
	keep, err := len(p), error(nil)
	if fault != nil {
		if k, ferr := fault(f.name, p); ferr != nil {
			keep, err = k, &os.PathError{Op: "write", Path: f.name, Err: ferr}
		}
	}
	f.ino.mu.Lock()
	defer f.ino.mu.Unlock()
	if f.closed {
		return 0, fs.ErrClosed
	}
	i := f.ino
	if end := off + int64(keep); end > int64(len(i.data)) {
		i.data = append(i.data, make([]byte, end-int64(len(i.data)))...)
	}
	copy(i.data[off:], p[:keep])
	i.dirtyFrom = min(i.dirtyFrom, int(off))
	return keep, err
}

func (f *memFile) Close() error {
	f.ino.mu.Lock()
	defer f.ino.mu.Unlock()
	if f.closed {
		return fs.ErrClosed
	}
	f.closed = true
	return nil
}

func (f *memFile) Sync() error {
	f.fs.mu.Lock()
	fault := f.fs.syncFault
	f.fs.mu.Unlock()
	if fault != nil {
		if err := fault(f.name); err != nil {
			return &os.PathError{Op: "fdatasync", Path: f.name, Err: err}
		}
	}
	f.ino.mu.Lock()
	if f.closed {
		f.ino.mu.Unlock()
		return fs.ErrClosed
	}
	i := f.ino
	i.synced = append(i.synced[:min(i.dirtyFrom, len(i.synced))], i.data[min(i.dirtyFrom, len(i.data)):]...)
	i.dirtyFrom = len(i.synced)
	f.ino.mu.Unlock()
	f.fs.mu.Lock()
	f.fs.syncs++
	f.fs.mu.Unlock()
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.ino.mu.Lock()
	defer f.ino.mu.Unlock()
	if f.closed {
		return fs.ErrClosed
	}
	old := len(f.ino.data)
	if size < int64(old) {
		f.ino.data = f.ino.data[:size]
	} else {
		f.ino.data = append(f.ino.data, make([]byte, size-int64(len(f.ino.data)))...)
	}
	f.ino.dirtyFrom = min(f.ino.dirtyFrom, int(size), old)
	return nil
}

func (f *memFile) Stat() (os.FileInfo, error) {
	f.ino.mu.Lock()
	defer f.ino.mu.Unlock()
	return memInfo{name: path.Base(f.name), size: int64(len(f.ino.data))}, nil
}
