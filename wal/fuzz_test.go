package wal

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

func encodeRecord(off uint64, p []byte) []byte { return encodeRecordUnsynced(off, 0, p) }

func encodeRecordUnsynced(off uint64, unsynced int64, p []byte) []byte {
	b := make([]byte, recordHeader+len(p))
	putRecord(b, off, unsynced, p)
	return b
}

// FuzzDecodeRecord: decodeRecord never panics, and whatever it accepts is
// exactly a record that putRecord would write for that offset and payload —
// it never returns garbage.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(0, []byte("hello")), uint64(0))
	f.Add(encodeRecord(7, []byte("x")), uint64(7))
	f.Add(encodeRecord(7, []byte("x")), uint64(8))
	f.Add(encodeRecord(1, bytes.Repeat([]byte{0xAB}, 300))[:200], uint64(1))
	f.Add(append(encodeRecord(3, []byte("abc")), encodeRecord(4, []byte("def"))...), uint64(3))
	f.Add(make([]byte, 40), uint64(0))
	f.Add([]byte{1, 2, 3}, uint64(0))
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, uint64(0))
	f.Fuzz(func(t *testing.T, b []byte, want uint64) {
		p, n, st, reason := decodeRecord(b, want)
		switch st {
		case recOK:
			if n > len(b) || n != recordHeader+len(p) || len(p) == 0 {
				t.Fatalf("recOK with n=%d len(b)=%d len(p)=%d", n, len(b), len(p))
			}
			if !bytes.Equal(encodeRecordUnsynced(want, recordUnsynced(b), p), b[:n]) {
				t.Fatalf("accepted bytes that are not the record for offset %d", want)
			}
			if cap(p) != len(p) {
				t.Fatal("payload capacity reaches into the next record")
			}
		case recShort:
			if !(n == 0 && len(b) < recordHeader || n > len(b)) {
				t.Fatalf("recShort with n=%d len(b)=%d", n, len(b))
			}
		case recBad:
			if reason == "" || p != nil {
				t.Fatal("recBad without a reason, or with a payload")
			}
		default:
			t.Fatalf("unknown status %d", st)
		}
	})
}

// FuzzRecover: Open over a segment file with a valid header and arbitrary
// bytes after it never panics; it either reports a *CorruptError or recovers
// entries that re-encode to exactly a prefix of the file (and cuts the file
// there) — no garbage entries, nothing invented.
func FuzzRecover(f *testing.F) {
	var valid []byte
	for i := uint64(0); i < 5; i++ {
		valid = append(valid, encodeRecord(i, payload("fz", i, int(i*40)+1))...)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	f.Add(append(bytes.Clone(valid), 0, 0, 0, 0, 0))
	bad := bytes.Clone(valid)
	bad[30] ^= 4
	f.Add(bad)
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		fsys := newMemFS()
		_ = fsys.MkdirAll("/d", 0o755)
		name := "/d/" + openName(k1)
		file := append(appendHeader(nil, k1), body...)
		fh, _ := fsys.OpenFile(name, os.O_CREATE|os.O_RDWR, 0o644)
		_, _ = fh.WriteAt(file, 0)
		_ = fh.Close()
		w, err := Open("/d", Options{FS: fsys, Logger: quietLogger})
		if err != nil {
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("Open failed with a non-corruption error: %v", err)
			}
			return
		}
		defer w.Close()
		rebuilt := appendHeader(nil, k1)
		for off, e := range readAll(t, w, k1) {
			pos := len(rebuilt)
			if len(file) < pos+recordHeader {
				t.Fatal("recovered more entries than the file holds")
			}
			rebuilt = append(rebuilt, encodeRecordUnsynced(uint64(off), recordUnsynced(file[pos:]), e)...)
		}
		if !bytes.HasPrefix(file, rebuilt) {
			t.Fatal("recovered entries are not a prefix of the file")
		}
		// the file is cut where the records end, unless only zeros (space
		// written ahead) follow them
		got := fsys.fileBytes(name)
		if !bytes.HasPrefix(got, rebuilt) || (len(got) > len(rebuilt) && (!bytes.Equal(got, file) || bytes.ContainsFunc(got[len(rebuilt):], func(r rune) bool { return r != 0 }))) {
			t.Fatalf("file after recovery is %d bytes, recovered records end at %d", len(got), len(rebuilt))
		}
	})
}
