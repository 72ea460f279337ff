package messages

import (
	"bytes"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// randomValues returns hot messages with random contents, including the
// edges of every msgpack length and integer form.
func randomValues(rng *rand.Rand) []any {
	ints := []int64{0, 1, 127, 128, 255, 256, 65535, 65536, math.MaxUint32, math.MaxUint32 + 1, math.MaxInt64,
		-1, -32, -33, -128, -129, -32768, -32769, math.MinInt32, math.MinInt32 - 1, math.MinInt64}
	anInt := func() int64 {
		if rng.IntN(2) == 0 {
			return ints[rng.IntN(len(ints))]
		}
		return rng.Int64N(1<<40) - 1<<39
	}
	aUint := func() uint64 {
		switch rng.IntN(3) {
		case 0:
			return 0
		case 1:
			return uint64(ints[rng.IntN(10)])
		}
		return rng.Uint64()
	}
	lens := []int{0, 1, 15, 16, 31, 32, 255, 256, 65535, 65536}
	aStr := func() string { return strings.Repeat("x", lens[rng.IntN(len(lens))]) }
	aBin := func() []byte {
		switch rng.IntN(4) {
		case 0:
			return nil
		case 1:
			return []byte{}
		}
		b := make([]byte, lens[rng.IntN(len(lens))])
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	bins := func() [][]byte {
		if rng.IntN(5) == 0 {
			return nil
		}
		n := []int{0, 1, 2, 15, 16, 100}[rng.IntN(6)]
		out := make([][]byte, n)
		for i := range out {
			out[i] = aBin()
			if len(out[i]) > 300 {
				out[i] = out[i][:300]
			}
		}
		return out
	}
	anErr := func() Err {
		e := Err{}
		if rng.IntN(2) == 0 {
			e.Code = Code(rng.IntN(256))
		}
		if rng.IntN(2) == 0 {
			e.Msg = aStr()
		}
		if rng.IntN(2) == 0 {
			e.Leader = aUint()
		}
		if rng.IntN(2) == 0 {
			e.Have = aUint()
		}
		return e
	}
	var reps []uint64
	if rng.IntN(4) > 0 {
		reps = make([]uint64, rng.IntN(20))
		for i := range reps {
			reps[i] = aUint()
		}
	}
	return []any{
		&ReplicateReq{Topic: aStr(), Segment: aUint(), Epoch: aUint(), Leader: aUint(), Replicas: reps,
			First: aUint(), Entries: bins(), HWM: aUint()},
		&ReplicateResp{Err: anErr(), Durable: aUint()},
		&PutReq{Topic: aStr(), Entries: bins()},
		&PutResp{Err: anErr(), First: aUint(), Accepted: int(anInt()), Segment: aUint()},
		&ReadReq{Topic: aStr(), Segment: aUint(), From: aUint(), Max: int(anInt()), MaxBytes: int(anInt()),
			WaitMs: []int64{0, anInt()}[rng.IntN(2)], Raw: rng.IntN(2) == 0},
		&ReadResp{Err: anErr(), Entries: bins(), End: aUint(), Sealed: rng.IntN(2) == 0},
	}
}

// TestFastEncodeMatchesReflection: the hand-written encoders write the
// bytes msgpack.Marshal writes, so nodes of earlier versions read them.
// The hand-written decoders read them back to what the reflection decoder
// reads.
func TestFastEncodeMatchesReflection(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 500 {
		for _, v := range randomValues(rng) {
			want, err := msgpack.Marshal(v)
			if err != nil {
				t.Fatal(err)
			}
			f := v.(fastEncoder)
			got := f.appendMsgpack(nil)
			if !bytes.Equal(got, want) {
				t.Fatalf("%d: %T: encoding differs\n got %x\nwant %x", i, v, got[:min(len(got), 80)], want[:min(len(want), 80)])
			}
			if len(got) > f.msgpackSize() {
				t.Fatalf("%T: size %d above its bound %d", v, len(got), f.msgpackSize())
			}
			fast := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			if err := fast.(fastDecoder).decodeMsgpack(got); err != nil {
				t.Fatalf("%T: fast decoder refused the encoding: %v", v, err)
			}
			slow := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			if err := msgpack.Unmarshal(got, slow); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fast, slow) {
				t.Fatalf("%T: fast decode %+v, reflection %+v", v, fast, slow)
			}
			if !reflect.DeepEqual(fast, v) {
				t.Fatalf("%T: round trip %+v, want %+v", v, fast, v)
			}
		}
	}
}

// TestFastDecodeFallsBack: what the fast decoders do not recognise goes to
// the reflection decoder, which decides as it always did.
func TestFastDecodeFallsBack(t *testing.T) {
	// a newer node's extra field, compact ints, a map in another order
	type newerReplicateReq struct {
		HWM     uint64   `msgpack:"hwm"`
		Topic   string   `msgpack:"t"`
		Entries [][]byte `msgpack:"e"`
		Extra   []string `msgpack:"x"`
		Segment uint32   `msgpack:"s"`
	}
	b, err := msgpack.Marshal(&newerReplicateReq{HWM: 7, Topic: "a", Entries: [][]byte{[]byte("e")}, Extra: []string{"y"}, Segment: 3})
	if err != nil {
		t.Fatal(err)
	}
	var m ReplicateReq
	if err := (&m).decodeMsgpack(b); err == nil {
		t.Fatal("unknown key accepted by the fast decoder")
	}
	if !reflect.DeepEqual(m, ReplicateReq{}) {
		t.Fatalf("failed fast decode left %+v", m)
	}
	if err := Decode(KindReplicate, b, &m); err != nil {
		t.Fatal(err)
	}
	if want := (ReplicateReq{HWM: 7, Topic: "a", Entries: [][]byte{[]byte("e")}, Segment: 3}); !reflect.DeepEqual(m, want) {
		t.Fatalf("got %+v want %+v", m, want)
	}
	// garbage is refused by both
	for _, bad := range [][]byte{{}, {0xc1}, {0x81, 0xa1, 'e', 0xdd, 0xff, 0xff, 0xff, 0xff}, {0x82, 0xa1, 't'}} {
		var p PutReq
		if err := Decode(KindPut, bad, &p); err == nil {
			t.Fatalf("%x decoded", bad)
		}
	}
}

// TestFastDecodeHostileLengths: the fast decoders never allocate for more
// elements than there are bytes left (what CheckMsgpack guarantees for the
// reflection decoder).
func TestFastDecodeHostileLengths(t *testing.T) {
	for name, b := range map[string][]byte{
		"entries array32": {0x82, 0xa1, 't', 0xa0, 0xa1, 'e', 0xdd, 0xff, 0xff, 0xff, 0xff},
		"entries array16": {0x82, 0xa1, 't', 0xa0, 0xa1, 'e', 0xdc, 0xff, 0xff, 0xc0},
		"bin32":           {0x82, 0xa1, 't', 0xa0, 0xa1, 'e', 0x91, 0xc6, 0x7f, 0xff, 0xff, 0xff},
		"str32 topic":     {0x82, 0xa1, 't', 0xdb, 0x7f, 0xff, 0xff, 0xff, 'a'},
		"map32":           {0xdf, 0x7f, 0xff, 0xff, 0xff, 0xa1, 't', 0xa0},
	} {
		var p PutReq
		allocs := testing.AllocsPerRun(10, func() {
			if err := (&p).decodeMsgpack(b); err == nil {
				t.Errorf("%s: accepted", name)
			}
		})
		if allocs > 1 {
			t.Errorf("%s: %v allocations", name, allocs)
		}
		if err := Decode(KindPut, b, &p); err == nil {
			t.Errorf("%s: Decode accepted it", name)
		}
	}
	var r ReplicateReq
	b := []byte{0x81, 0xa1, 'r', 0xdd, 0xff, 0xff, 0xff, 0xff}
	if err := (&r).decodeMsgpack(b); err == nil {
		t.Error("replicas array32 accepted")
	}
}

// TestDecodedEntriesAlias: entries alias the body, capacity cut, so an
// append to one never writes into the next.
func TestDecodedEntriesAlias(t *testing.T) {
	b, _ := Encode(&PutReq{Topic: "t", Entries: [][]byte{[]byte("ab"), []byte("cd")}})
	var p PutReq
	if err := Decode(KindPut, b, &p); err != nil {
		t.Fatal(err)
	}
	_ = append(p.Entries[0], 'X')
	if string(p.Entries[1]) != "cd" {
		t.Fatalf("append to entry 0 wrote into entry 1: %q", p.Entries[1])
	}
}

func benchValues() []any {
	ents := make([][]byte, 100)
	for i := range ents {
		ents[i] = bytes.Repeat([]byte{'x'}, 128)
	}
	return []any{
		&ReplicateReq{Topic: "bench", Segment: 1, Epoch: 1, Leader: 1, Replicas: []uint64{1, 2, 3}, First: 123456, Entries: ents, HWM: 123400},
		&ReplicateResp{Durable: 123556},
		&PutReq{Topic: "bench", Entries: ents},
		&PutResp{First: 123456, Accepted: 100, Segment: 1},
	}
}

// BenchmarkEncode: the hot messages with 100 entries of 128 B, hand-written
// encoder (Encode) against msgpack's reflection.
func BenchmarkEncode(b *testing.B) {
	for _, v := range benchValues() {
		name := strings.TrimPrefix(reflect.TypeOf(v).String(), "*messages.")
		b.Run(name+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := Encode(v); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/reflection", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := msgpack.Marshal(v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecode: Decode (hand-written) against CheckMsgpack + reflection,
// what Decode did before.
func BenchmarkDecode(b *testing.B) {
	for _, v := range benchValues() {
		name := strings.TrimPrefix(reflect.TypeOf(v).String(), "*messages.")
		body, _ := msgpack.Marshal(v)
		typ := reflect.TypeOf(v).Elem()
		b.Run(name+"/fast", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if err := Decode(KindReplicate, body, reflect.New(typ).Interface()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(name+"/reflection", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if err := CheckMsgpack(body); err != nil {
					b.Fatal(err)
				}
				if err := msgpack.Unmarshal(body, reflect.New(typ).Interface()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
