package messages

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Why this file exists: msgpack v5.4.0 and v5.4.1 (the version in go.mod)
// never apply their 1M-element allocation cap when decoding into a Go slice
// (decode_slice.go tests `flags&disableAllocLimitFlag != 1`, which is always
// true; vmihailenco/msgpack#401, fix proposed in #402). A 5-byte array32
// header then makes the decoder allocate ~32 GiB and the process dies with a
// fatal, unrecoverable out-of-memory error. A raft entry or snapshot can hold
// any bytes a buggy proposer wrote, so every body is checked here first.
//
// CheckMsgpack accepts b only if it is exactly one well-formed msgpack value
// in which every declared length fits in the bytes that remain (each array
// element and map key/value takes at least one byte) and containers nest at
// most maxMsgpackDepth deep. Whatever the decoder then allocates is bounded
// by a small multiple of len(b).

const maxMsgpackDepth = 32

var ErrMsgpackTruncated = errors.New("msgpack: truncated or oversized length")

func CheckMsgpack(b []byte) error {
	// pending[k] is the number of values still expected at nesting level k;
	// level 0 expects the single top-level value.
	pending := make([]uint64, 1, 8)
	pending[0] = 1
	i := 0
	// length reads an n-byte big-endian length at b[i:].
	length := func(n int) (uint64, error) {
		if len(b)-i < n {
			return 0, ErrMsgpackTruncated
		}
		var v uint64
		switch n {
		case 1:
			v = uint64(b[i])
		case 2:
			v = uint64(binary.BigEndian.Uint16(b[i:]))
		case 4:
			v = uint64(binary.BigEndian.Uint32(b[i:]))
		}
		i += n
		return v, nil
	}
	for len(pending) > 0 {
		top := len(pending) - 1
		if pending[top] == 0 {
			pending = pending[:top]
			continue
		}
		pending[top]--
		if i >= len(b) {
			return ErrMsgpackTruncated
		}
		c := b[i]
		i++
		var (
			elems uint64 // values inside this container
			skip  uint64 // payload bytes to skip
			err   error
		)
		switch {
		case c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3:
			// fixint, nil, bool: no payload
		case c <= 0x8f:
			elems = 2 * uint64(c&0x0f)
		case c <= 0x9f:
			elems = uint64(c & 0x0f)
		case c <= 0xbf:
			skip = uint64(c & 0x1f)
		default:
			switch c {
			case 0xc4, 0xd9: // bin8, str8
				skip, err = length(1)
			case 0xc5, 0xda: // bin16, str16
				skip, err = length(2)
			case 0xc6, 0xdb: // bin32, str32
				skip, err = length(4)
			case 0xc7: // ext8
				skip, err = length(1)
				skip++
			case 0xc8: // ext16
				skip, err = length(2)
				skip++
			case 0xc9: // ext32
				skip, err = length(4)
				skip++
			case 0xcc, 0xd0: // uint8, int8
				skip = 1
			case 0xcd, 0xd1:
				skip = 2
			case 0xca, 0xce, 0xd2: // float32, uint32, int32
				skip = 4
			case 0xcb, 0xcf, 0xd3: // float64, uint64, int64
				skip = 8
			case 0xd4, 0xd5, 0xd6, 0xd7, 0xd8: // fixext 1, 2, 4, 8, 16
				skip = 1 + 1<<(c-0xd4)
			case 0xdc: // array16
				elems, err = length(2)
			case 0xdd: // array32
				elems, err = length(4)
			case 0xde: // map16
				elems, err = length(2)
				elems *= 2
			case 0xdf: // map32
				elems, err = length(4)
				elems *= 2
			default: // 0xc1: never used
				return fmt.Errorf("msgpack: invalid byte %#x at %d", c, i-1)
			}
		}
		if err != nil {
			return err
		}
		rest := uint64(len(b) - i)
		if skip > rest || elems > rest {
			return ErrMsgpackTruncated
		}
		i += int(skip)
		if elems > 0 {
			if len(pending) > maxMsgpackDepth {
				return errors.New("msgpack: nested too deep")
			}
			pending = append(pending, elems)
		}
	}
	if i != len(b) {
		return fmt.Errorf("msgpack: %d trailing bytes", len(b)-i)
	}
	return nil
}
