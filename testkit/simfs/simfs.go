// Package simfs is a crashable in-memory file system behind the wal.FS seam.
//
// Each file remembers what its last Sync made durable, and the namespace
// remembers what the last SyncDir of each directory made durable. PowerCut
// turns the file system into what a machine finds after losing power now:
// the durable namespace, each file with its synced bytes, plus (optionally)
// a random part of the bytes written since (a torn write). Faults: a disk
// that is full (writes past a byte quota fail with ENOSPC), fsyncs that fail
// with EIO, a stalled disk (every operation waits until Unstall), and bit
// rot (Corrupt flips a byte of a file, synced copy included), and hooks
// that fail any write or sync a test picks (SetWriteFault, SetSyncFault).
//
// It imports nothing of the module, so that the storage engine's own tests
// use it too (wal's memFS); its FS implements wal.FS but for OpenFile's
// result type (*File), which testkit and wal's tests wrap.
//
// A FS used inside a testing/synctest bubble must be created there (a
// stalled operation waits on a channel of the bubble).
package simfs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"math/rand"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// FS is the simulated file system. Safe for concurrent use; one mutex
// guards everything (files are small and the simulation runs on one P).
type FS struct {
	mu      sync.Mutex
	gen     uint64 // bumped by PowerCut and Wipe: older handles are dead
	dirs    map[string]bool
	files   map[string]*inode
	durable map[string]*inode
	quota   int64 // 0: unlimited
	stall   chan struct{}
	hold    chan struct{} // non-nil: File.Sync waits (writes go on)

	// fault hooks (SetWriteFault, SetSyncFault), called without mu held
	writeFault func(name string, p []byte) (keep int, err error)
	syncFault  func(name string) error

	Stats Stats
}

// Stats counts operations (read them with Snapshot).
type Stats struct {
	Writes, Syncs, SyncDirs, FailedWrites, FailedSyncs int
	TornBytesKept, LostBytes                           int64
}

type inode struct {
	data      []byte
	synced    []byte
	dirtyFrom int // lowest byte changed since the last Sync; <= len(synced)
}

// New returns an empty file system.
func New() *FS {
	return &FS{dirs: map[string]bool{"/": true, ".": true}, files: map[string]*inode{}, durable: map[string]*inode{}}
}

// errEIO is what a dead handle or an injected fsync failure returns.
var errEIO = syscall.EIO

// wait blocks while the disk is stalled.
func (f *FS) wait() {
	for {
		f.mu.Lock()
		ch := f.stall
		f.mu.Unlock()
		if ch == nil {
			return
		}
		<-ch
	}
}

// Stall makes every later operation wait until Unstall (a hung disk, or a
// paused process).
func (f *FS) Stall() {
	f.mu.Lock()
	if f.stall == nil {
		f.stall = make(chan struct{})
	}
	f.mu.Unlock()
}

// Unstall releases the operations waiting since Stall.
func (f *FS) Unstall() {
	f.mu.Lock()
	if f.stall != nil {
		close(f.stall)
		f.stall = nil
	}
	f.mu.Unlock()
}

// HoldSyncs makes every File.Sync wait until ReleaseSyncs while writes go
// on: a slow fsync, during which a power cut finds unsynced bytes to tear.
func (f *FS) HoldSyncs() {
	f.mu.Lock()
	if f.hold == nil {
		f.hold = make(chan struct{})
	}
	f.mu.Unlock()
}

// ReleaseSyncs lets held and later syncs proceed.
func (f *FS) ReleaseSyncs() {
	f.mu.Lock()
	if f.hold != nil {
		close(f.hold)
		f.hold = nil
	}
	f.mu.Unlock()
}

// UnsyncedBytes is how many bytes of file data a power cut now would put at
// risk.
func (f *FS) UnsyncedBytes() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	var n int64
	for _, ino := range f.files {
		n += int64(max(0, len(ino.data)-min(ino.dirtyFrom, len(ino.synced))))
	}
	return n
}

// SetQuota makes the disk hold at most n bytes of file data (0: no limit).
// Writes that would pass it keep what fits and fail with ENOSPC.
func (f *FS) SetQuota(n int64) {
	f.mu.Lock()
	f.quota = n
	f.mu.Unlock()
}

// Used is the number of bytes the files hold now.
func (f *FS) Used() int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.usedLocked()
}

func (f *FS) usedLocked() int64 {
	var n int64
	for _, ino := range f.files {
		n += int64(len(ino.data))
	}
	return n
}

// FailSyncs makes every File.Sync fail with EIO while on (a sync fault
// hook that always fails; off removes whatever hook is set).
func (f *FS) FailSyncs(on bool) {
	if on {
		f.SetSyncFault(func(string) error { return errEIO })
	} else {
		f.SetSyncFault(nil)
	}
}

// SetWriteFault makes every File.WriteAt first call fault (nil: none).
// When fault returns an error, the write keeps the first keep bytes of p
// and fails with that error (as a *os.PathError).
func (f *FS) SetWriteFault(fault func(name string, p []byte) (keep int, err error)) {
	f.mu.Lock()
	f.writeFault = fault
	f.mu.Unlock()
}

// SetSyncFault makes every File.Sync first call fault (nil: none); an
// error it returns fails the sync, which makes nothing durable.
func (f *FS) SetSyncFault(fault func(name string) error) {
	f.mu.Lock()
	f.syncFault = fault
	f.mu.Unlock()
}

// SyncedLen is how many bytes of file name are durable (-1: no such file).
func (f *FS) SyncedLen(name string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	ino := f.files[path.Clean(name)]
	if ino == nil {
		return -1
	}
	return len(ino.synced)
}

// Syncs is the number of successful File.Sync calls so far.
func (f *FS) Syncs() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.Stats.Syncs
}

// Names lists every file, sorted.
func (f *FS) Names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, 0, len(f.files))
	for p := range f.files {
		out = append(out, p)
	}
	sort.Strings(out)
	return out
}

// Clone returns an independent copy of the disk as it is now (contents,
// what is durable, directories, quota), without fault hooks, holds or
// open handles: PowerCut on the copy is a crash the original does not
// see, so a test can keep using the original.
func (f *FS) Clone() *FS {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := New()
	c.quota = f.quota
	for d := range f.dirs {
		c.dirs[d] = true
	}
	copied := map[*inode]*inode{}
	dup := func(ino *inode) *inode {
		if n, ok := copied[ino]; ok {
			return n
		}
		n := &inode{data: bytes.Clone(ino.data), synced: bytes.Clone(ino.synced), dirtyFrom: ino.dirtyFrom}
		copied[ino] = n
		return n
	}
	for p, ino := range f.files {
		c.files[p] = dup(ino)
	}
	for p, ino := range f.durable {
		c.durable[p] = dup(ino)
	}
	return c
}

// PowerCut replaces the state with what survives a power failure now. Open
// handles die (their operations fail with EIO). With rng, each file not
// shorter than at its last sync keeps a random part of what was written
// since (torn write): each overwritten 512-byte sector inside its synced
// length is the new or the old one, and of what grew the file a random
// prefix survives; without rng, exactly the synced bytes.
func (f *FS) PowerCut(rng *rand.Rand) {
	if rng == nil {
		f.powerCut(nil, nil)
		return
	}
	f.powerCut(func(n int) int { return rng.Intn(n + 1) }, func(int, int) bool { return rng.Intn(2) == 0 })
}

// PowerCutKeeping is PowerCut where keep(n) says how much of each file's
// unsynced writes survives (nil: none): of the n bytes that grew it, the
// first keep(n); of its n overwritten sectors, the last keep(n), the
// earlier ones keeping their old bytes (the tear a preallocated file can
// suffer, which only its records' unsynced field tells from damage).
func (f *FS) PowerCutKeeping(keep func(n int) int) {
	if keep == nil {
		f.powerCut(nil, nil)
		return
	}
	f.powerCut(keep, func(i, n int) bool { return i >= n-keep(n) })
}

// powerCut: grown(n) is the surviving prefix of n bytes that grew a file,
// sector(i, n) whether the i-th of its n overwritten sectors holds its new
// bytes (both nil: only synced bytes survive).
func (f *FS) powerCut(grown func(n int) int, sector func(i, n int) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen++
	if f.hold != nil {
		close(f.hold) // held syncs of the dead process fail (stale handles)
		f.hold = nil
	}
	files := map[string]*inode{}
	names := make([]string, 0, len(f.durable))
	for p := range f.durable {
		names = append(names, p)
	}
	sort.Strings(names)
	for _, p := range names {
		ino := f.durable[p]
		data := bytes.Clone(ino.synced)
		if grown != nil && len(ino.data) >= len(ino.synced) {
			// overwritten sectors inside the synced length: each the new
			// or the old one (a preallocated file's writes land there)
			var secs []int // sectors whose bytes changed
			for sec := ino.dirtyFrom / 512 * 512; sec < len(ino.synced); sec += 512 {
				lo, hi := max(sec, ino.dirtyFrom), min(sec+512, len(ino.synced))
				if !bytes.Equal(ino.data[lo:hi], ino.synced[lo:hi]) {
					secs = append(secs, sec)
				}
			}
			for i, sec := range secs {
				lo, hi := max(sec, ino.dirtyFrom), min(sec+512, len(ino.synced))
				if sector(i, len(secs)) {
					copy(data[lo:hi], ino.data[lo:hi])
					f.Stats.TornBytesKept += int64(hi - lo)
				} else {
					f.Stats.LostBytes += int64(hi - lo)
				}
			}
			// what grew the file: a prefix
			extra := ino.data[len(ino.synced):]
			k := min(max(grown(len(extra)), 0), len(extra))
			data = append(data, extra[:k]...)
			f.Stats.TornBytesKept += int64(k)
			f.Stats.LostBytes += int64(len(extra) - k)
		} else {
			f.Stats.LostBytes += int64(max(0, len(ino.data)-len(ino.synced)))
		}
		c := &inode{data: data, synced: bytes.Clone(data), dirtyFrom: len(data)}
		files[p] = c
	}
	f.files = files
	f.durable = map[string]*inode{}
	for p, ino := range files {
		f.durable[p] = ino
	}
}

// Wipe empties the disk (a replaced drive). Open handles die.
func (f *FS) Wipe() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gen++
	f.files = map[string]*inode{}
	f.durable = map[string]*inode{}
	f.dirs = map[string]bool{"/": true, ".": true}
}

// FileInfo describes a file for fault selection.
type FileInfo struct {
	Name         string
	Size, Synced int64
}

// Files lists the files under dir (recursively), sorted by name.
func (f *FS) Files(dir string) []FileInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	dir = path.Clean(dir)
	var out []FileInfo
	for p, ino := range f.files {
		if strings.HasPrefix(p, dir+"/") {
			out = append(out, FileInfo{Name: p, Size: int64(len(ino.data)), Synced: int64(len(ino.synced))})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Corrupt flips the bits of the byte at off of file name, in the current
// and the synced contents (bit rot at rest). It reports whether the file
// had such a byte.
func (f *FS) Corrupt(name string, off int64) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	ino := f.files[path.Clean(name)]
	if ino == nil || off < 0 || off >= int64(len(ino.data)) {
		return false
	}
	ino.data[off] ^= 0xff
	if off < int64(len(ino.synced)) {
		ino.synced[off] ^= 0xff
	}
	return true
}

// ReadFile returns a copy of a file's current contents (nil if absent).
func (f *FS) ReadFile(name string) []byte {
	f.mu.Lock()
	defer f.mu.Unlock()
	ino := f.files[path.Clean(name)]
	if ino == nil {
		return nil
	}
	return bytes.Clone(ino.data)
}

// ---- the file system (it implements wal.FS but for OpenFile's result
// type: testkit and wal's tests wrap it, as this package may not import wal) ----

// File is an open file of an FS.
type File struct {
	fs     *FS
	ino    *inode
	gen    uint64
	name   string
	flag   int
	closed bool
}

type info struct {
	name string
	size int64
}

func (i info) Name() string       { return i.name }
func (i info) Size() int64        { return i.size }
func (i info) Mode() fs.FileMode  { return 0o644 }
func (i info) ModTime() time.Time { return time.Time{} }
func (i info) IsDir() bool        { return false }
func (i info) Sys() any           { return nil }

// OpenFile opens name with os-style flags (O_RDONLY, O_RDWR, O_CREATE,
// O_EXCL, O_TRUNC).
func (f *FS) OpenFile(name string, flag int, perm os.FileMode) (*File, error) {
	f.wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	name = path.Clean(name)
	ino := f.files[name]
	switch {
	case ino != nil && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrExist}
	case ino == nil && flag&os.O_CREATE == 0:
		return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	case ino == nil:
		if !f.dirs[path.Dir(name)] {
			return nil, &os.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
		}
		ino = &inode{}
		f.files[name] = ino
	}
	if flag&os.O_TRUNC != 0 {
		ino.data = ino.data[:0]
		ino.dirtyFrom = 0
	}
	return &File{fs: f, ino: ino, gen: f.gen, name: name, flag: flag}, nil
}

func (f *FS) Remove(name string) error {
	f.wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	name = path.Clean(name)
	if f.files[name] == nil {
		return &os.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	delete(f.files, name)
	return nil
}

func (f *FS) Rename(oldpath, newpath string) error {
	f.wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	oldpath, newpath = path.Clean(oldpath), path.Clean(newpath)
	ino := f.files[oldpath]
	if ino == nil {
		return &os.PathError{Op: "rename", Path: oldpath, Err: fs.ErrNotExist}
	}
	delete(f.files, oldpath)
	f.files[newpath] = ino
	return nil
}

func (f *FS) MkdirAll(p string, perm os.FileMode) error {
	f.wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	for p = path.Clean(p); ; p = path.Dir(p) {
		f.dirs[p] = true
		if p == "." || p == "/" {
			return nil
		}
	}
}

func (f *FS) ReadDir(name string) ([]os.DirEntry, error) {
	f.wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	name = path.Clean(name)
	if !f.dirs[name] {
		return nil, &os.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	var out []os.DirEntry
	for p, ino := range f.files {
		if path.Dir(p) == name {
			out = append(out, fs.FileInfoToDirEntry(info{name: path.Base(p), size: int64(len(ino.data))}))
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name() < out[j].Name() })
	return out, nil
}

func (f *FS) SyncDir(name string) error {
	f.wait()
	f.mu.Lock()
	defer f.mu.Unlock()
	name = path.Clean(name)
	f.Stats.SyncDirs++
	for p := range f.durable {
		if path.Dir(p) == name {
			delete(f.durable, p)
		}
	}
	for p, ino := range f.files {
		if path.Dir(p) == name {
			f.durable[p] = ino
		}
	}
	return nil
}

// live reports whether the handle may still be used (caller holds fs.mu).
func (h *File) liveLocked() error {
	if h.closed {
		return fs.ErrClosed
	}
	if h.gen != h.fs.gen {
		return &os.PathError{Op: "io", Path: h.name, Err: errEIO}
	}
	return nil
}

func (h *File) ReadAt(p []byte, off int64) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.liveLocked(); err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, syscall.EINVAL
	}
	if off >= int64(len(h.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, h.ino.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (h *File) WriteAt(p []byte, off int64) (int, error) {
	h.fs.wait()
	h.fs.mu.Lock()
	fault := h.fs.writeFault
	h.fs.mu.Unlock()
	keep := len(p)
	var err error
	if fault != nil {
		if k, ferr := fault(h.name, p); ferr != nil {
			keep, err = min(max(k, 0), len(p)), &os.PathError{Op: "write", Path: h.name, Err: ferr}
		}
	}
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.liveLocked(); err != nil {
		return 0, err
	}
	if h.flag&(os.O_WRONLY|os.O_RDWR) == 0 {
		return 0, &os.PathError{Op: "write", Path: h.name, Err: syscall.EBADF}
	}
	if err != nil {
		h.fs.Stats.FailedWrites++
	}
	i := h.ino
	if q := h.fs.quota; q > 0 {
		// every written byte needs free space, as on a copy-on-write file
		// system (where an overwrite allocates too): a full disk refuses
		// writes into a file's preallocated space as well
		if room := q - h.fs.usedLocked(); int64(keep) > room {
			keep = int(max(0, room))
			err = &os.PathError{Op: "write", Path: h.name, Err: syscall.ENOSPC}
			h.fs.Stats.FailedWrites++
		}
	}
	h.fs.Stats.Writes++
	if end := off + int64(keep); end > int64(len(i.data)) {
		i.data = append(i.data, make([]byte, end-int64(len(i.data)))...)
	}
	copy(i.data[off:], p[:keep])
	i.dirtyFrom = min(i.dirtyFrom, int(off))
	return keep, err
}

func (h *File) Close() error {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if h.closed {
		return fs.ErrClosed
	}
	h.closed = true
	return nil
}

func (h *File) Sync() error {
	h.fs.wait()
	for {
		h.fs.mu.Lock()
		ch := h.fs.hold
		gen := h.fs.gen
		h.fs.mu.Unlock()
		if ch == nil || gen != h.gen {
			break
		}
		<-ch
	}
	h.fs.mu.Lock()
	fault := h.fs.syncFault
	h.fs.mu.Unlock()
	var faultErr error
	if fault != nil {
		faultErr = fault(h.name)
	}
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.liveLocked(); err != nil {
		return err
	}
	if faultErr != nil {
		h.fs.Stats.FailedSyncs++
		return &os.PathError{Op: "fdatasync", Path: h.name, Err: faultErr}
	}
	i := h.ino
	i.synced = append(i.synced[:min(i.dirtyFrom, len(i.synced))], i.data[min(i.dirtyFrom, len(i.data)):]...)
	i.dirtyFrom = len(i.synced)
	h.fs.Stats.Syncs++
	return nil
}

func (h *File) Truncate(size int64) error {
	h.fs.wait()
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.liveLocked(); err != nil {
		return err
	}
	i := h.ino
	old := len(i.data)
	if size < int64(old) {
		i.data = i.data[:size]
	} else {
		i.data = append(i.data, make([]byte, size-int64(old))...)
	}
	i.dirtyFrom = min(i.dirtyFrom, int(size), old)
	return nil
}

func (h *File) Stat() (os.FileInfo, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if err := h.liveLocked(); err != nil {
		return nil, err
	}
	return info{name: path.Base(h.name), size: int64(len(h.ino.data))}, nil
}

// IsNoSpace reports whether err is a disk-full error.
func IsNoSpace(err error) bool { return errors.Is(err, syscall.ENOSPC) }
