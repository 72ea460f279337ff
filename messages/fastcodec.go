package messages

import (
	"encoding/binary"
	"errors"
	"math"
)

// Hand-written msgpack for the messages of the write and read paths
// (ReplicateReq/Resp, PutReq/Resp, ReadReq/Resp). Reflection cost about a
// third of a node's CPU under load (BENCHMARKS.md, "Hot path").
//
// The encoders produce exactly the bytes msgpack.Marshal produces for the
// same value (struct as a map keyed by the msgpack tags in field order,
// omitempty fields left out, uint64 as uint64 (0xcf), int in the smallest
// form, int64 as int64 (0xd3), uint8 as uint8 (0xcc), nil slices as nil):
// nodes of this version and of earlier ones understand each other, and
// TestFastEncodeMatchesReflection checks it on random values.
//
// The decoders read that layout and return errSlowPath on anything else
// (an unknown key from a newer node, another integer width, a nil where a
// map was expected ...); Decode then falls back to the reflection decoder,
// so they accept exactly what it accepts. Decoded byte slices alias the
// input (with their capacity cut at their end): the caller must not modify
// the input afterwards.

// fastEncoder is implemented by messages with a hand-written encoder.
type fastEncoder interface {
	// msgpackSize is an upper bound of the encoded size.
	msgpackSize() int
	appendMsgpack(dst []byte) []byte
}

// fastDecoder is implemented by messages with a hand-written decoder. It
// must leave the message untouched when it fails.
type fastDecoder interface {
	decodeMsgpack(b []byte) error
}

var errSlowPath = errors.New("msgpack: not the fast layout")

// ---- encoding ----

func appendMapLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x80|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xde), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdf), uint32(n))
}

func appendArrayLen(b []byte, n int) []byte {
	switch {
	case n < 16:
		return append(b, 0x90|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(b, 0xdc), uint16(n))
	}
	return binary.BigEndian.AppendUint32(append(b, 0xdd), uint32(n))
}

func appendStr(b []byte, s string) []byte {
	n := len(s)
	switch {
	case n < 32:
		b = append(b, 0xa0|byte(n))
	case n < 256:
		b = append(b, 0xd9, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xda), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xdb), uint32(n))
	}
	return append(b, s...)
}

func appendBin(b []byte, v []byte) []byte {
	if v == nil {
		return append(b, 0xc0)
	}
	n := len(v)
	switch {
	case n < 256:
		b = append(b, 0xc4, byte(n))
	case n <= math.MaxUint16:
		b = binary.BigEndian.AppendUint16(append(b, 0xc5), uint16(n))
	default:
		b = binary.BigEndian.AppendUint32(append(b, 0xc6), uint32(n))
	}
	return append(b, v...)
}

func appendBins(b []byte, v [][]byte) []byte {
	if v == nil {
		return append(b, 0xc0)
	}
	b = appendArrayLen(b, len(v))
	for _, e := range v {
		b = appendBin(b, e)
	}
	return b
}

func binsSize(v [][]byte) int {
	n := 5
	for _, e := range v {
		n += 5 + len(e)
	}
	return n
}

func appendUint64(b []byte, v uint64) []byte {
	return binary.BigEndian.AppendUint64(append(b, 0xcf), v)
}

func appendInt64(b []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(append(b, 0xd3), uint64(v))
}

// appendInt is msgpack's compact form of a Go int (EncodeInt).
func appendInt(b []byte, v int64) []byte {
	if v >= 0 {
		u := uint64(v)
		switch {
		case u <= math.MaxInt8:
			return append(b, byte(u))
		case u <= math.MaxUint8:
			return append(b, 0xcc, byte(u))
		case u <= math.MaxUint16:
			return binary.BigEndian.AppendUint16(append(b, 0xcd), uint16(u))
		case u <= math.MaxUint32:
			return binary.BigEndian.AppendUint32(append(b, 0xce), uint32(u))
		}
		return appendUint64(b, u)
	}
	switch {
	case v >= -32:
		return append(b, byte(v))
	case v >= math.MinInt8:
		return append(b, 0xd0, byte(v))
	case v >= math.MinInt16:
		return binary.BigEndian.AppendUint16(append(b, 0xd1), uint16(v))
	case v >= math.MinInt32:
		return binary.BigEndian.AppendUint32(append(b, 0xd2), uint32(v))
	}
	return appendInt64(b, v)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 0xc3)
	}
	return append(b, 0xc2)
}

func (e *Err) msgpackSize() int { return 1 + 4 + (2 + 5 + len(e.Msg)) + 2*(2+9) }

func (e *Err) appendMsgpack(b []byte) []byte {
	n := 0
	if e.Code != 0 {
		n++
	}
	if e.Msg != "" {
		n++
	}
	if e.Leader != 0 {
		n++
	}
	if e.Have != 0 {
		n++
	}
	b = appendMapLen(b, n)
	if e.Code != 0 {
		b = append(b, 0xa1, 'c', 0xcc, byte(e.Code))
	}
	if e.Msg != "" {
		b = appendStr(append(b, 0xa1, 'm'), e.Msg)
	}
	if e.Leader != 0 {
		b = appendUint64(append(b, 0xa1, 'l'), e.Leader)
	}
	if e.Have != 0 {
		b = appendUint64(append(b, 0xa1, 'h'), e.Have)
	}
	return b
}

var keyErr = []byte{0xa3, 'e', 'r', 'r'}

func (m *ReplicateReq) msgpackSize() int {
	return 96 + len(m.Topic) + 9*len(m.Replicas) + binsSize(m.Entries)
}

func (m *ReplicateReq) appendMsgpack(b []byte) []byte {
	b = append(b, 0x88)
	b = appendStr(append(b, 0xa1, 't'), m.Topic)
	b = appendUint64(append(b, 0xa1, 's'), m.Segment)
	b = appendUint64(append(b, 0xa2, 'e', 'p'), m.Epoch)
	b = appendUint64(append(b, 0xa1, 'l'), m.Leader)
	b = append(b, 0xa1, 'r')
	if m.Replicas == nil {
		b = append(b, 0xc0)
	} else {
		b = appendArrayLen(b, len(m.Replicas))
		for _, r := range m.Replicas {
			b = appendUint64(b, r)
		}
	}
	b = appendUint64(append(b, 0xa1, 'f'), m.First)
	b = appendBins(append(b, 0xa1, 'e'), m.Entries)
	return appendUint64(append(b, 0xa3, 'h', 'w', 'm'), m.HWM)
}

func (m *ReplicateResp) msgpackSize() int { return 1 + 4 + m.Err.msgpackSize() + 2 + 9 }

func (m *ReplicateResp) appendMsgpack(b []byte) []byte {
	b = m.Err.appendMsgpack(append(append(b, 0x82), keyErr...))
	return appendUint64(append(b, 0xa1, 'd'), m.Durable)
}

func (m *PutReq) msgpackSize() int { return 16 + len(m.Topic) + binsSize(m.Entries) }

func (m *PutReq) appendMsgpack(b []byte) []byte {
	b = appendStr(append(b, 0x82, 0xa1, 't'), m.Topic)
	return appendBins(append(b, 0xa1, 'e'), m.Entries)
}

func (m *PutResp) msgpackSize() int { return 1 + 4 + m.Err.msgpackSize() + 3*(2+9) }

func (m *PutResp) appendMsgpack(b []byte) []byte {
	b = m.Err.appendMsgpack(append(append(b, 0x84), keyErr...))
	b = appendUint64(append(b, 0xa1, 'f'), m.First)
	b = appendInt(append(b, 0xa1, 'n'), int64(m.Accepted))
	return appendUint64(append(b, 0xa1, 's'), m.Segment)
}

func (m *ReadReq) msgpackSize() int { return 80 + len(m.Topic) }

func (m *ReadReq) appendMsgpack(b []byte) []byte {
	n := 5
	if m.WaitMs != 0 {
		n++
	}
	if m.Raw {
		n++
	}
	b = appendMapLen(b, n)
	b = appendStr(append(b, 0xa1, 't'), m.Topic)
	b = appendUint64(append(b, 0xa1, 's'), m.Segment)
	b = appendUint64(append(b, 0xa4, 'f', 'r', 'o', 'm'), m.From)
	b = appendInt(append(b, 0xa3, 'm', 'a', 'x'), int64(m.Max))
	b = appendInt(append(b, 0xa2, 'm', 'b'), int64(m.MaxBytes))
	if m.WaitMs != 0 {
		b = appendInt64(append(b, 0xa1, 'w'), m.WaitMs)
	}
	if m.Raw {
		b = append(b, 0xa3, 'r', 'a', 'w', 0xc3)
	}
	return b
}

func (m *ReadResp) msgpackSize() int { return 32 + m.Err.msgpackSize() + binsSize(m.Entries) }

func (m *ReadResp) appendMsgpack(b []byte) []byte {
	b = m.Err.appendMsgpack(append(append(b, 0x84), keyErr...))
	b = appendBins(append(b, 0xa1, 'e'), m.Entries)
	b = appendUint64(append(b, 0xa3, 'e', 'n', 'd'), m.End)
	return appendBool(append(b, 0xa6, 's', 'e', 'a', 'l', 'e', 'd'), m.Sealed)
}

// ---- decoding ----

// fastReader reads the layout the encoders above write. Every method
// returns errSlowPath on a byte it does not expect, including the end of
// the input.
type fastReader struct {
	b []byte
	i int
}

func (r *fastReader) byte1() (byte, error) {
	if r.i >= len(r.b) {
		return 0, errSlowPath
	}
	c := r.b[r.i]
	r.i++
	return c, nil
}

func (r *fastReader) take(n int) ([]byte, error) {
	if n < 0 || n > len(r.b)-r.i {
		return nil, errSlowPath
	}
	p := r.b[r.i : r.i+n : r.i+n]
	r.i += n
	return p, nil
}

// length reads a big-endian length of n bytes.
func (r *fastReader) length(n int) (int, error) {
	p, err := r.take(n)
	if err != nil {
		return 0, err
	}
	switch n {
	case 1:
		return int(p[0]), nil
	case 2:
		return int(binary.BigEndian.Uint16(p)), nil
	}
	v := binary.BigEndian.Uint32(p)
	if uint64(v) > uint64(len(r.b)) {
		return 0, errSlowPath
	}
	return int(v), nil
}

func (r *fastReader) mapLen() (int, error) {
	c, err := r.byte1()
	switch {
	case err != nil:
		return 0, err
	case c >= 0x80 && c <= 0x8f:
		return int(c & 0x0f), nil
	case c == 0xde:
		return r.length(2)
	case c == 0xdf:
		return r.length(4)
	}
	return 0, errSlowPath
}

// arrayLen returns -1 for nil.
func (r *fastReader) arrayLen() (int, error) {
	c, err := r.byte1()
	switch {
	case err != nil:
		return 0, err
	case c >= 0x90 && c <= 0x9f:
		return int(c & 0x0f), nil
	case c == 0xdc:
		return r.length(2)
	case c == 0xdd:
		return r.length(4)
	case c == 0xc0:
		return -1, nil
	}
	return 0, errSlowPath
}

// str returns a string's bytes (aliasing the input).
func (r *fastReader) str() ([]byte, error) {
	c, err := r.byte1()
	if err != nil {
		return nil, err
	}
	var n int
	switch {
	case c >= 0xa0 && c <= 0xbf:
		n = int(c & 0x1f)
	case c == 0xd9:
		n, err = r.length(1)
	case c == 0xda:
		n, err = r.length(2)
	case c == 0xdb:
		n, err = r.length(4)
	default:
		return nil, errSlowPath
	}
	if err != nil {
		return nil, err
	}
	return r.take(n)
}

// bin returns a byte string aliasing the input, nil for msgpack nil.
func (r *fastReader) bin() ([]byte, error) {
	c, err := r.byte1()
	if err != nil {
		return nil, err
	}
	var n int
	switch c {
	case 0xc0:
		return nil, nil
	case 0xc4:
		n, err = r.length(1)
	case 0xc5:
		n, err = r.length(2)
	case 0xc6:
		n, err = r.length(4)
	default:
		return nil, errSlowPath
	}
	if err != nil {
		return nil, err
	}
	return r.take(n)
}

func (r *fastReader) bins() ([][]byte, error) {
	n, err := r.arrayLen()
	if err != nil || n < 0 {
		return nil, err
	}
	if n > len(r.b)-r.i { // every element takes a byte at least
		return nil, errSlowPath
	}
	out := make([][]byte, n)
	for k := range out {
		if out[k], err = r.bin(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// uint reads a non-negative integer of any width.
func (r *fastReader) uint() (uint64, error) {
	c, err := r.byte1()
	if err != nil {
		return 0, err
	}
	if c <= 0x7f {
		return uint64(c), nil
	}
	var p []byte
	switch c {
	case 0xcc, 0xd0:
		p, err = r.take(1)
	case 0xcd, 0xd1:
		p, err = r.take(2)
	case 0xce, 0xd2:
		p, err = r.take(4)
	case 0xcf, 0xd3:
		p, err = r.take(8)
	default:
		return 0, errSlowPath
	}
	if err != nil {
		return 0, err
	}
	var v uint64
	for _, x := range p {
		v = v<<8 | uint64(x)
	}
	if c >= 0xd0 && p[0]&0x80 != 0 {
		return 0, errSlowPath // negative
	}
	return v, nil
}

// int reads a signed integer of any width.
func (r *fastReader) int() (int64, error) {
	c, err := r.byte1()
	if err != nil {
		return 0, err
	}
	switch {
	case c <= 0x7f:
		return int64(c), nil
	case c >= 0xe0:
		return int64(int8(c)), nil
	}
	switch c {
	case 0xd0:
		p, err := r.take(1)
		if err != nil {
			return 0, err
		}
		return int64(int8(p[0])), nil
	case 0xd1:
		p, err := r.take(2)
		if err != nil {
			return 0, err
		}
		return int64(int16(binary.BigEndian.Uint16(p))), nil
	case 0xd2:
		p, err := r.take(4)
		if err != nil {
			return 0, err
		}
		return int64(int32(binary.BigEndian.Uint32(p))), nil
	case 0xd3:
		p, err := r.take(8)
		if err != nil {
			return 0, err
		}
		return int64(binary.BigEndian.Uint64(p)), nil
	}
	r.i--
	v, err := r.uint()
	if err != nil || v > math.MaxInt64 {
		return 0, errSlowPath
	}
	return int64(v), nil
}

// intN reads an int that must fit a Go int (which is what the reflection
// decoder would store).
func (r *fastReader) intN() (int, error) {
	v, err := r.int()
	if err != nil || int64(int(v)) != v {
		return 0, errSlowPath
	}
	return int(v), nil
}

func (r *fastReader) bool() (bool, error) {
	c, err := r.byte1()
	switch {
	case err != nil:
		return false, err
	case c == 0xc3:
		return true, nil
	case c == 0xc2:
		return false, nil
	}
	return false, errSlowPath
}

func (r *fastReader) done() error {
	if r.i != len(r.b) {
		return errSlowPath
	}
	return nil
}

func (r *fastReader) err(e *Err) error {
	n, err := r.mapLen()
	if err != nil {
		return err
	}
	for range n {
		k, err := r.str()
		if err != nil {
			return err
		}
		switch string(k) {
		case "c":
			v, err := r.uint()
			if err != nil || v > math.MaxUint8 {
				return errSlowPath
			}
			e.Code = Code(v)
		case "m":
			s, err := r.str()
			if err != nil {
				return err
			}
			e.Msg = string(s)
		case "l":
			e.Leader, err = r.uint()
		case "h":
			e.Have, err = r.uint()
		default:
			return errSlowPath
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Each decoder below has its own copy of the map loop on purpose. One
// generic loop taking a per-field callback (tried 2026-11-26) made the
// reader and the value escape to the heap: 4 allocations per decode
// instead of 1 and twice the time for the small replies
// (BenchmarkDecode/PutResp/fast: 69 -> 134 ns/op).

func (m *ReplicateReq) decodeMsgpack(b []byte) error {
	r := fastReader{b: b}
	var v ReplicateReq
	n, err := r.mapLen()
	if err != nil {
		return err
	}
	for range n {
		k, err := r.str()
		if err != nil {
			return err
		}
		switch string(k) {
		case "t":
			s, err := r.str()
			if err != nil {
				return err
			}
			v.Topic = string(s)
		case "s":
			v.Segment, err = r.uint()
		case "ep":
			v.Epoch, err = r.uint()
		case "l":
			v.Leader, err = r.uint()
		case "r":
			var k int
			if k, err = r.arrayLen(); err == nil && k >= 0 {
				if k > len(b)-r.i {
					return errSlowPath
				}
				v.Replicas = make([]uint64, k)
				for j := range v.Replicas {
					if v.Replicas[j], err = r.uint(); err != nil {
						return err
					}
				}
			}
		case "f":
			v.First, err = r.uint()
		case "e":
			v.Entries, err = r.bins()
		case "hwm":
			v.HWM, err = r.uint()
		default:
			return errSlowPath
		}
		if err != nil {
			return err
		}
	}
	if err := r.done(); err != nil {
		return err
	}
	*m = v
	return nil
}

func (m *ReplicateResp) decodeMsgpack(b []byte) error {
	r := fastReader{b: b}
	var v ReplicateResp
	n, err := r.mapLen()
	if err != nil {
		return err
	}
	for range n {
		k, err := r.str()
		if err != nil {
			return err
		}
		switch string(k) {
		case "err":
			err = r.err(&v.Err)
		case "d":
			v.Durable, err = r.uint()
		default:
			return errSlowPath
		}
		if err != nil {
			return err
		}
	}
	if err := r.done(); err != nil {
		return err
	}
	*m = v
	return nil
}

func (m *PutReq) decodeMsgpack(b []byte) error {
	r := fastReader{b: b}
	var v PutReq
	n, err := r.mapLen()
	if err != nil {
		return err
	}
	for range n {
		k, err := r.str()
		if err != nil {
			return err
		}
		switch string(k) {
		case "t":
			s, err := r.str()
			if err != nil {
				return err
			}
			v.Topic = string(s)
		case "e":
			v.Entries, err = r.bins()
		default:
			return errSlowPath
		}
		if err != nil {
			return err
		}
	}
	if err := r.done(); err != nil {
		return err
	}
	*m = v
	return nil
}

func (m *PutResp) decodeMsgpack(b []byte) error {
	r := fastReader{b: b}
	var v PutResp
	n, err := r.mapLen()
	if err != nil {
		return err
	}
	for range n {
		k, err := r.str()
		if err != nil {
			return err
		}
		switch string(k) {
		case "err":
			err = r.err(&v.Err)
		case "f":
			v.First, err = r.uint()
		case "n":
			v.Accepted, err = r.intN()
		case "s":
			v.Segment, err = r.uint()
		default:
			return errSlowPath
		}
		if err != nil {
			return err
		}
	}
	if err := r.done(); err != nil {
		return err
	}
	*m = v
	return nil
}

func (m *ReadReq) decodeMsgpack(b []byte) error {
	r := fastReader{b: b}
	var v ReadReq
	n, err := r.mapLen()
	if err != nil {
		return err
	}
	for range n {
		k, err := r.str()
		if err != nil {
			return err
		}
		switch string(k) {
		case "t":
			s, err := r.str()
			if err != nil {
				return err
			}
			v.Topic = string(s)
		case "s":
			v.Segment, err = r.uint()
		case "from":
			v.From, err = r.uint()
		case "max":
			v.Max, err = r.intN()
		case "mb":
			v.MaxBytes, err = r.intN()
		case "w":
			v.WaitMs, err = r.int()
		case "raw":
			v.Raw, err = r.bool()
		default:
			return errSlowPath
		}
		if err != nil {
			return err
		}
	}
	if err := r.done(); err != nil {
		return err
	}
	*m = v
	return nil
}

func (m *ReadResp) decodeMsgpack(b []byte) error {
	r := fastReader{b: b}
	var v ReadResp
	n, err := r.mapLen()
	if err != nil {
		return err
	}
	for range n {
		k, err := r.str()
		if err != nil {
			return err
		}
		switch string(k) {
		case "err":
			err = r.err(&v.Err)
		case "e":
			v.Entries, err = r.bins()
		case "end":
			v.End, err = r.uint()
		case "sealed":
			v.Sealed, err = r.bool()
		default:
			return errSlowPath
		}
		if err != nil {
			return err
		}
	}
	if err := r.done(); err != nil {
		return err
	}
	*m = v
	return nil
}
