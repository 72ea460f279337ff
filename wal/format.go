package wal

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash/crc32"
	"strconv"
	"strings"
)

// On-disk format (all integers little-endian). See docs/storage.md.
//
//	header: magic "WALRUSEG" | u16 version | u16 flags (0) | u32 topic length |
//	        u64 segment | topic bytes | u32 crc32c of everything before it
//	record: u32 payload length | u32 crc32c(unsynced + offset bytes + payload) |
//	        u32 unsynced | u64 offset | payload
//
// The crc covers the unsynced and offset bytes and the payload, which are
// contiguous, so one crc32.Update call checks a record. unsynced is how far
// the record starts past the end of the file's last completed sync when it
// was written (saturating at 2^32-1): recovery uses it to tell a write torn
// by a crash from damage to synced bytes (see recoverFile).
//
// Version 2 added unsynced (files are preallocated, so a crash can keep a
// later block of an unsynced write and lose an earlier one); version 1
// files are refused.

const (
	headerMagic   = "WALRUSEG"
	formatVersion = 2
	// headerFixed is the header's size without the topic: magic, version,
	// flags, topic length, segment, crc.
	headerFixed = 8 + 2 + 2 + 4 + 8 + 4
	// recordHeader is the bytes in front of each payload.
	recordHeader = 4 + 4 + 4 + 8
	// maxPayload bounds a record's length field; larger values are damage.
	// Options.MaxEntryBytes may not exceed it.
	maxPayload = 1<<30 - recordHeader
)

// castagnoli is built once; crc32.Update recognises it and uses the CPU's
// CRC32C instruction where there is one.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func headerLen(topic string) int { return headerFixed + len(topic) }

// appendHeader appends a segment file header for key to b.
func appendHeader(b []byte, key SegmentKey) []byte {
	start := len(b)
	b = append(b, headerMagic...)
	b = binary.LittleEndian.AppendUint16(b, formatVersion)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(key.Topic)))
	b = binary.LittleEndian.AppendUint64(b, key.Segment)
	b = append(b, key.Topic...)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[start:], castagnoli))
}

// headerTopicLen reads the topic length from the fixed part of a header; b
// must hold at least headerFixed-4 bytes.
func headerTopicLen(b []byte) uint32 { return binary.LittleEndian.Uint32(b[12:16]) }

// parseHeader decodes a complete header at the start of b (b must hold at
// least headerFixed bytes). It returns the key and the header's length, or a
// reason why the header is invalid; short is set when b ends before the
// header does.
func parseHeader(b []byte) (key SegmentKey, n int, short bool, reason string) {
	if len(b) < headerFixed-4 {
		return key, 0, true, "file shorter than a header"
	}
	if string(b[:8]) != headerMagic {
		return key, 0, false, "bad magic"
	}
	if v := binary.LittleEndian.Uint16(b[8:10]); v != formatVersion {
		return key, 0, false, fmt.Sprintf("unsupported format version %d", v)
	}
	tl := uint64(headerTopicLen(b))
	if tl == 0 || tl > maxPayload {
		return key, 0, false, fmt.Sprintf("bad topic length %d", tl)
	}
	n = headerFixed + int(tl)
	if len(b) < n {
		return key, n, true, "file shorter than its header"
	}
	want := binary.LittleEndian.Uint32(b[n-4 : n])
	if crc32.Checksum(b[:n-4], castagnoli) != want {
		return key, n, false, "header checksum mismatch"
	}
	if binary.LittleEndian.Uint16(b[10:12]) != 0 {
		return key, n, false, "unknown header flags"
	}
	key.Segment = binary.LittleEndian.Uint64(b[16:24])
	key.Topic = string(b[24 : n-4])
	return key, n, false, ""
}

// putRecord encodes one record into b, which must be exactly
// recordHeader+len(payload) bytes long. unsynced is the record's distance
// past the file's synced end.
func putRecord(b []byte, offset uint64, unsynced int64, payload []byte) {
	binary.LittleEndian.PutUint32(b[0:4], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[8:12], uint32(min(max(unsynced, 0), 1<<32-1)))
	binary.LittleEndian.PutUint64(b[12:20], offset)
	copy(b[recordHeader:], payload)
	binary.LittleEndian.PutUint32(b[4:8], crc32.Update(0, castagnoli, b[8:]))
}

// recordUnsynced reads a record header's unsynced field (b holds at least
// recordHeader bytes).
func recordUnsynced(b []byte) int64 { return int64(binary.LittleEndian.Uint32(b[8:12])) }

// recordOffset reads a record header's offset field.
func recordOffset(b []byte) uint64 { return binary.LittleEndian.Uint64(b[12:20]) }

// recStatus is decodeRecord's verdict.
type recStatus int

const (
	recOK    recStatus = iota
	recShort           // b ends inside the record (need says how much it needs, 0 if unknown)
	recBad             // not a valid record with the expected offset
)

// decodeRecord checks the record at the start of b, expecting offset want.
// On recOK it returns the payload (a subslice of b) and the record's length.
// On recShort, n is the total length the record claims (or 0 when even its
// header is incomplete). On recBad, reason says what is wrong.
func decodeRecord(b []byte, want uint64) (payload []byte, n int, st recStatus, reason string) {
	if len(b) < recordHeader {
		return nil, 0, recShort, "truncated record header"
	}
	l := binary.LittleEndian.Uint32(b[0:4])
	if l == 0 {
		return nil, 0, recBad, "zero record length"
	}
	if l > maxPayload {
		return nil, 0, recBad, fmt.Sprintf("record length %d too large", l)
	}
	n = recordHeader + int(l)
	if len(b) < n {
		return nil, n, recShort, "truncated record"
	}
	if crc32.Update(0, castagnoli, b[8:n]) != binary.LittleEndian.Uint32(b[4:8]) {
		return nil, n, recBad, "record checksum mismatch"
	}
	if off := recordOffset(b); off != want {
		return nil, n, recBad, fmt.Sprintf("record offset %d, expected %d", off, want)
	}
	return b[recordHeader:n:n], n, recOK, ""
}

// File names. A segment lives in <topic>.<segment>.wal while it is open and in
// <topic>.<segment>.<count>.sealed once sealed, so the name of a sealed file
// also records how many entries it must hold. <topic> is the topic escaped:
// bytes [A-Za-z0-9_-] stay, every other byte becomes %XX; escaped topics
// longer than maxNameTopic are cut and suffixed with ~ and a hash of the whole
// topic (~ never appears in an escaped topic). The header always holds the
// full topic and must match the name.
const (
	suffixOpen   = ".wal"
	suffixSealed = ".sealed"
	maxNameTopic = 160
	nameKeep     = 96
)

func escapeTopic(topic string) string {
	var sb strings.Builder
	for i := 0; i < len(topic); i++ {
		c := topic[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
			sb.WriteByte(c)
		default:
			sb.WriteByte('%')
			sb.WriteByte("0123456789ABCDEF"[c>>4])
			sb.WriteByte("0123456789ABCDEF"[c&15])
		}
	}
	s := sb.String()
	if len(s) > maxNameTopic {
		sum := sha256.Sum256([]byte(topic))
		s = s[:nameKeep] + "~" + hex.EncodeToString(sum[:16])
	}
	return s
}

// unescapeTopic inverts escapeTopic; ok is false for hashed (cut) names and
// malformed ones.
func unescapeTopic(s string) (topic string, ok bool) {
	if s == "" || strings.Contains(s, "~") {
		return "", false
	}
	var sb strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '%' {
			sb.WriteByte(c)
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		sb.WriteByte(byte(v))
		i += 2
	}
	return sb.String(), true
}

func openName(key SegmentKey) string {
	return fmt.Sprintf("%s.%020d%s", escapeTopic(key.Topic), key.Segment, suffixOpen)
}

func sealedName(key SegmentKey, count uint64) string {
	return fmt.Sprintf("%s.%020d.%020d%s", escapeTopic(key.Topic), key.Segment, count, suffixSealed)
}

// parsedName is what a file name says about its segment.
type parsedName struct {
	escTopic string
	segment  uint64
	sealed   bool
	count    uint64 // sealed only
}

// parseName recognises the engine's file names; ok is false for others.
func parseName(name string) (p parsedName, ok bool) {
	var rest string
	switch {
	case strings.HasSuffix(name, suffixOpen):
		rest = strings.TrimSuffix(name, suffixOpen)
	case strings.HasSuffix(name, suffixSealed):
		rest = strings.TrimSuffix(name, suffixSealed)
		p.sealed = true
	default:
		return p, false
	}
	parts := strings.Split(rest, ".")
	want := 2
	if p.sealed {
		want = 3
	}
	if len(parts) != want || parts[0] == "" {
		return p, false
	}
	p.escTopic = parts[0]
	var err error
	if p.segment, err = strconv.ParseUint(parts[1], 10, 64); err != nil {
		return p, false
	}
	if p.sealed {
		if p.count, err = strconv.ParseUint(parts[2], 10, 64); err != nil {
			return p, false
		}
	}
	return p, true
}
