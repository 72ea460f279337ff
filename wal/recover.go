package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"sort"
	"sync"
	"sync/atomic"
)

// corruptSuffix is appended to a sealed segment file Open sets aside
// (Options.SetAsideCorrupt); parseName ignores such names.
const corruptSuffix = ".corrupt"

// recoverBufSize is the read window used to scan files on Open.
const recoverBufSize = 4 << 20

// recoverWorkers is how many files Open verifies at once: enough to keep
// several reads in flight on an SSD and to use every core for checksums.
const recoverWorkers = 4

// recover opens and verifies every segment file in the directory, several
// files at a time. Called by Open before the committer starts.
func (w *WAL) recover() error {
	ents, err := w.fs.ReadDir(w.dir)
	if err != nil {
		return fmt.Errorf("wal: open %s: %w", w.dir, err)
	}
	type job struct {
		name string
		pn   parsedName
		s    *segment
		gone bool
		err  error
	}
	var jobs []*job
	for _, e := range ents {
		if e.IsDir() {
			continue
		}
		pn, ok := parseName(e.Name())
		if !ok {
			w.log.Debug("ignoring unknown file", "file", e.Name())
			continue
		}
		jobs = append(jobs, &job{name: e.Name(), pn: pn})
	}
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].name < jobs[j].name })

	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(recoverWorkers, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf []byte // read window, grown to min(recoverBufSize, largest file)
			for {
				i := next.Add(1) - 1
				if i >= int64(len(jobs)) {
					return
				}
				j := jobs[i]
				j.s, j.gone, j.err = w.recoverFile(j.name, j.pn, &buf)
			}
		}()
	}
	wg.Wait()

	removed := false
	for _, j := range jobs {
		if w.opts.SetAsideCorrupt && j.pn.sealed && errors.Is(j.err, ErrCorrupt) {
			j.err = w.setAsideFile(j.name, j.err)
			removed = removed || j.err == nil // the directory changed: synced below
		}
		if err == nil && j.err != nil {
			err = j.err
		}
		removed = removed || j.gone
		if j.s == nil {
			continue
		}
		if prev := w.segs[j.s.key]; prev != nil && err == nil {
			err = &CorruptError{File: j.s.path, Offset: 0, Reason: fmt.Sprintf("second file for segment %v (first: %s)", j.s.key, prev.path)}
		}
		if err != nil {
			_ = j.s.f.Close()
			continue
		}
		w.segs[j.s.key] = j.s
	}
	if err != nil {
		return err // Open closes the files already in w.segs
	}
	if removed {
		if err := w.fs.SyncDir(w.dir); err != nil {
			return fmt.Errorf("wal: open %s: sync dir: %w", w.dir, err)
		}
	}
	return nil
}

// setAsideFile renames a corrupt sealed file (cause: why) to end in
// corruptSuffix, so that Open and later Opens leave its segment out. It
// returns nil once the file is aside, else cause with the rename's error.
func (w *WAL) setAsideFile(name string, cause error) error {
	to := name + corruptSuffix
	if err := w.fs.Rename(w.path(name), w.path(to)); err != nil {
		return fmt.Errorf("%w (could not set it aside: %v)", cause, err)
	}
	w.log.Error("corrupt sealed segment file set aside; its entries must come from another replica",
		"file", to, "err", cause)
	w.setAside = append(w.setAside, to)
	return nil
}

// recoverFile verifies one file and rebuilds its segment. gone reports that
// the file was the remains of an interrupted Create and has been removed.
func (w *WAL) recoverFile(name string, pn parsedName, bufp *[]byte) (s *segment, gone bool, err error) {
	path := w.path(name)
	flag := os.O_RDWR
	if pn.sealed {
		flag = os.O_RDONLY
	}
	f, err := w.fs.OpenFile(path, flag, 0)
	if err != nil {
		return nil, false, fmt.Errorf("wal: open %s: %w", path, err)
	}
	defer func() {
		if err != nil || gone {
			_ = f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		return nil, false, fmt.Errorf("wal: stat %s: %w", path, err)
	}
	size := st.Size()
	if want := min(size, recoverBufSize); int64(len(*bufp)) < want {
		*bufp = make([]byte, want)
	}

	// Header. Its length follows from the topic in the name when the name is
	// not hashed, else from the header's own topic length field.
	nameTopic, nameOK := unescapeTopic(pn.escTopic)
	want := int64(-1)
	if nameOK {
		want = int64(headerLen(nameTopic))
	} else if size >= headerFixed-4 {
		var fixed [headerFixed - 4]byte
		if err := readFull(f, fixed[:], 0); err != nil {
			return nil, false, err
		}
		want = headerFixed + int64(headerTopicLen(fixed[:]))
	}
	if want < 0 || size < want {
		if pn.sealed {
			return nil, false, &CorruptError{File: path, Offset: size, Reason: "sealed file shorter than its header"}
		}
		// A crash during Create: the header (written and synced before
		// Create returned) never fully reached the disk, so the segment
		// never held an entry.
		w.log.Warn("removing segment file cut short during create", "file", path, "size", size)
		_ = f.Close()
		if err := w.fs.Remove(path); err != nil {
			return nil, false, fmt.Errorf("wal: remove %s: %w", path, err)
		}
		return nil, true, nil
	}
	if want > int64(len(*bufp)) {
		*bufp = make([]byte, want)
	}
	hb := (*bufp)[:want]
	if err := readFull(f, hb, 0); err != nil {
		return nil, false, err
	}
	key, hl, _, reason := parseHeader(hb)
	if reason != "" {
		return nil, false, &CorruptError{File: path, Offset: 0, Reason: reason}
	}
	if int64(hl) != want || escapeTopic(key.Topic) != pn.escTopic || key.Segment != pn.segment {
		return nil, false, &CorruptError{File: path, Offset: 0, Reason: fmt.Sprintf("header (segment %v) does not match the file name", key)}
	}
	s = &segment{key: key, f: f, path: path}

	// Records.
	pos := int64(hl)
	var expect uint64
	var win []byte
	winPos := pos
	badPos, badReason := int64(-1), ""
	for pos < size {
		rel := pos - winPos
		_, n, st, reason := decodeRecord(win[rel:], expect)
		if st == recShort {
			need := int64(n)
			if need == 0 {
				need = recordHeader
			}
			if pos+need > size {
				badPos, badReason = pos, "record runs past the end of the file"
				break
			}
			if need > int64(len(*bufp)) {
				*bufp = make([]byte, need)
			}
			m := min(int64(len(*bufp)), size-pos)
			if err := readFull(f, (*bufp)[:m], pos); err != nil {
				return nil, false, fmt.Errorf("wal: recover %s: %w", path, err)
			}
			win, winPos = (*bufp)[:m], pos
			continue
		}
		if st == recBad {
			badPos, badReason = pos, reason
			break
		}
		s.noteRecord(expect, pos, n)
		expect++
		pos += int64(n)
	}
	alloc, cut := size, false
	if badPos >= 0 {
		if pn.sealed {
			return nil, false, &CorruptError{File: path, Offset: badPos, Reason: badReason}
		}
		zeros, err := allZero(f, badPos, size, *bufp)
		if err != nil {
			return nil, false, fmt.Errorf("wal: recover %s: %w", path, err)
		}
		if zeros {
			// The records end here; the zeros after them were written ahead
			// (Options.Prealloc) and stay for the next appends.
			w.log.Debug("records end before preallocated space", "file", path, "at", badPos, "preallocated", size-badPos)
			size = badPos
		} else {
			q, err := findSyncedAfter(f, badPos, size, expect, *bufp)
			if err != nil {
				return nil, false, fmt.Errorf("wal: recover %s: %w", path, err)
			}
			if q >= 0 {
				return nil, false, &CorruptError{File: path, Offset: badPos,
					Reason: fmt.Sprintf("%s, but the valid record at byte %d was written after this one was synced", badReason, q)}
			}
			// Torn tail: the last writes before a crash did not fully reach
			// the disk (any of their sectors may be missing). Nothing after
			// the first bad record was synced, so cut it all away.
			w.log.Warn("cutting torn tail", "file", path, "at", badPos, "dropped_bytes", size-badPos, "reason", badReason, "entries", expect)
			if err := f.Truncate(badPos); err != nil {
				return nil, false, fmt.Errorf("wal: recover %s: truncate torn tail: %w", path, err)
			}
			if err := f.Sync(); err != nil {
				return nil, false, fmt.Errorf("wal: recover %s: sync: %w", path, err)
			}
			size, alloc, cut = badPos, badPos, true
		}
	}
	if !pn.sealed && size > int64(hl) && !cut { // a cut synced already
		// The records found may include bytes that were written but never
		// synced before the crash (the page cache kept them). They count as
		// held from now on (a replica reports them, Seal keeps them), so
		// make them durable before publishing the count: a second power cut
		// must not take back what this recovery reported.
		if err := f.Sync(); err != nil {
			return nil, false, fmt.Errorf("wal: recover %s: sync: %w", path, err)
		}
	}
	if pn.sealed && expect != pn.count {
		return nil, false, &CorruptError{File: path, Offset: size,
			Reason: fmt.Sprintf("sealed file holds %d entries, its name says %d", expect, pn.count)}
	}
	s.count, s.size, s.nextOff = expect, size, expect
	s.alloc, s.synced = alloc, size
	s.durable.Store(expect)
	s.durableSize.Store(size)
	s.sealed.Store(pn.sealed)
	return s, false, nil
}

// findSyncedAfter looks for a valid record after the bad one at bad that
// proves bad was synced: written when the file's synced end already lay
// past bad (its position minus its unsynced field). Valid means: length
// plausible, offset above expect (the offset the bad record should have
// had) yet reachable from bad with records of at least recordHeader+1
// bytes, and checksum correct. Valid records that do not prove it are
// from the same unsynced writes as the bad one (a tear that kept a later
// sector and lost an earlier one). It returns the proof's position, or -1.
func findSyncedAfter(f File, bad, size int64, expect uint64, buf []byte) (int64, error) {
	var win []byte
	winPos := int64(0)
	for q := bad + 1; q+recordHeader+1 <= size; q++ {
		rel := q - winPos
		if win == nil || rel+recordHeader > int64(len(win)) {
			m := min(int64(len(buf)), size-q)
			if err := readFull(f, buf[:m], q); err != nil {
				return 0, err
			}
			win, winPos, rel = buf[:m], q, 0
		}
		h := win[rel:]
		l := int64(binary.LittleEndian.Uint32(h[0:4]))
		if l == 0 || q+recordHeader+l > size {
			continue
		}
		off := recordOffset(h)
		if off <= expect || off-expect > uint64(q-bad)/(recordHeader+1) {
			continue
		}
		if q-recordUnsynced(h) <= bad {
			continue // written while bad was not yet synced: proves nothing
		}
		var body []byte
		if rel+recordHeader+l <= int64(len(win)) {
			body = h[8 : recordHeader+l]
		} else {
			body = make([]byte, recordHeader-8+l)
			if err := readFull(f, body, q+8); err != nil {
				return 0, err
			}
		}
		if crc32.Update(0, castagnoli, body) == binary.LittleEndian.Uint32(h[4:8]) {
			return q, nil
		}
	}
	return -1, nil
}

// allZero reports whether bytes [from, to) of f are all zero.
func allZero(f File, from, to int64, buf []byte) (bool, error) {
	for at := from; at < to; {
		m := min(int64(len(buf)), to-at)
		if err := readFull(f, buf[:m], at); err != nil {
			return false, err
		}
		for _, b := range buf[:m] {
			if b != 0 {
				return false, nil
			}
		}
		at += m
	}
	return true, nil
}
