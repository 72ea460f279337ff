package messages

import (
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

// fastTypes are the messages with hand-written decoders and the kind
// they travel under, in a fixed order (the fuzz input's first byte picks
// one).
var fastTypes = []struct {
	typ  reflect.Type
	kind Kind
}{
	{reflect.TypeFor[ReplicateReq](), KindReplicate}, {reflect.TypeFor[ReplicateResp](), KindReplicate},
	{reflect.TypeFor[PutReq](), KindPut}, {reflect.TypeFor[PutResp](), KindPut},
	{reflect.TypeFor[ReadReq](), KindRead}, {reflect.TypeFor[ReadResp](), KindRead},
}

// FuzzFastDecode: a body from another node, any bytes at all, never makes
// a hand-written decoder panic, and whatever one accepts the reflection
// decoder reads to the same message (a node of an earlier version, which
// decodes by reflection, would have understood the same thing). Decode,
// which the nodes call, never panics either.
//
//	go test -run '^$' -fuzz FuzzFastDecode -fuzztime 2m ./messages
func FuzzFastDecode(f *testing.F) {
	rng := rand.New(rand.NewPCG(3, 4))
	for range 20 {
		for _, v := range randomValues(rng) {
			b, err := Encode(v)
			if err != nil {
				f.Fatal(err)
			}
			for i, ft := range fastTypes {
				if reflect.TypeOf(v).Elem() == ft.typ {
					f.Add(uint8(i), b)
				}
			}
		}
	}
	f.Add(uint8(0), []byte{0x82, 0xa1, 't', 0xa0, 0xa1, 'e', 0xdd, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, which uint8, b []byte) {
		ft := fastTypes[int(which)%len(fastTypes)]
		typ := ft.typ
		fast := reflect.New(typ).Interface()
		fastErr := fast.(fastDecoder).decodeMsgpack(b)
		viaDecode := reflect.New(typ).Interface()
		decodeErr := Decode(ft.kind, b, viaDecode)
		if fastErr != nil {
			return
		}
		head := b[:min(len(b), 80)] // enough of the body to name it
		if decodeErr != nil {
			t.Fatalf("%v: the fast decoder accepted %x, Decode refused it: %v", typ, head, decodeErr)
		}
		if err := CheckMsgpack(b); err != nil {
			t.Fatalf("%v: the fast decoder accepted %x, which CheckMsgpack refuses: %v", typ, head, err)
		}
		slow := reflect.New(typ).Interface()
		if err := msgpack.Unmarshal(b, slow); err != nil {
			t.Fatalf("%v: the fast decoder accepted %x, the reflection decoder refused it: %v", typ, head, err)
		}
		if !reflect.DeepEqual(fast, slow) {
			t.Fatalf("%v: %x decodes to %+v by hand, %+v by reflection", typ, head, fast, slow)
		}
	})
}
