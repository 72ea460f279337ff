package messages

import (
	"bytes"
	"math"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

func TestCheckMsgpackAcceptsEncoderOutput(t *testing.T) {
	values := []any{
		nil, true, false, 0, -1, -33, 127, 128, 255, 256, 65536, int64(math.MinInt64), uint64(math.MaxUint64),
		float32(1.5), 2.5, "", "abc", string(make([]byte, 40)), string(make([]byte, 300)), string(make([]byte, 70000)),
		[]byte{}, []byte{1, 2}, make([]byte, 300), make([]byte, 70000),
		[]int{}, []int{1, 2, 3}, make([]int, 20), make([]int, 70000),
		map[string]int{}, map[string]int{"a": 1}, map[string][]int{"x": {1, 2}, "y": nil},
		ReplicateReq{Topic: "t", Segment: 1, Replicas: []uint64{1, 2, 3}, Entries: [][]byte{[]byte("a"), {}}},
		PutResp{Err: Err{Code: CodeGap, Msg: "gap", Have: 3}, First: 9},
		[][][]int{{{1}, {}}, {}},
	}
	for _, v := range values {
		b, err := msgpack.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		if err := CheckMsgpack(b); err != nil {
			t.Fatalf("%T %.40v: %v (%x)", v, v, err, b[:min(len(b), 16)])
		}
		if err := CheckMsgpack(append(b, 0)); err == nil {
			t.Fatalf("%T: trailing byte accepted", v)
		}
		if len(b) > 1 {
			if err := CheckMsgpack(b[:len(b)-1]); err == nil {
				t.Fatalf("%T: truncated value accepted", v)
			}
		}
	}
	for _, ext := range [][]byte{{0xd4, 1, 0}, {0xd8, 1}, {0xc7, 2, 1, 0, 0}, {0xc8, 0, 1, 1, 0}, {0xc9, 0, 0, 0, 0, 1}} {
		err := CheckMsgpack(ext)
		if want := len(ext) > 2 && ext[0] != 0xd8; (err == nil) != want {
			t.Fatalf("ext %x: err %v", ext, err)
		}
	}
	if err := CheckMsgpack(append([]byte{0xd8, 1}, make([]byte, 16)...)); err != nil {
		t.Fatal(err)
	}
}

func TestCheckMsgpackRejectsHostileLengths(t *testing.T) {
	deep := append(bytes.Repeat([]byte{0x91}, maxMsgpackDepth+1), 0x00)
	for name, b := range map[string][]byte{
		"empty":         {},
		"array32":       {0xdd, 0xff, 0xff, 0xff, 0xff},
		"array16":       {0xdc, 0xff, 0xff, 0, 0},
		"map32":         {0xdf, 0x7f, 0xff, 0xff, 0xff, 0xa0, 0xa0},
		"fixmap":        {0x82, 0xa0, 0x00},
		"str32":         {0xdb, 0xff, 0xff, 0xff, 0xff, 'a'},
		"bin32":         {0xc6, 0, 0, 1, 0, 'a'},
		"ext32":         {0xc9, 0xff, 0xff, 0xff, 0xff, 1},
		"int64 short":   {0xd3, 1, 2},
		"length short":  {0xdd, 0, 0},
		"never used":    {0xc1},
		"two values":    {0x01, 0x02},
		"too deep":      deep,
		"nested bomb":   {0x91, 0xdd, 0xff, 0xff, 0xff, 0xff},
		"struct bomb":   {0x81, 0xa8, 'r', 'e', 'p', 'l', 'i', 'c', 'a', 's', 0xdd, 0xff, 0xff, 0xff, 0xff},
		"many children": {0x9f, 0x00},
	} {
		if err := CheckMsgpack(b); err == nil {
			t.Errorf("%s (%x): accepted", name, b)
		}
	}
	if err := CheckMsgpack(deep[1:]); err != nil {
		t.Fatalf("depth %d rejected: %v", maxMsgpackDepth, err)
	}
}
