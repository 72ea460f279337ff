package messages

import (
	"reflect"
	"testing"
)

func TestRoundTrip(t *testing.T) {
	in := ReplicateReq{Topic: "logs", Segment: 3, Epoch: 1, Leader: 2, Replicas: []uint64{2, 3, 1},
		First: 10, Entries: [][]byte{[]byte("a"), {0, 1, 2}}, HWM: 9}
	b, err := Encode(&in)
	if err != nil {
		t.Fatal(err)
	}
	var out ReplicateReq
	if err := Decode(KindReplicate, b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("%+v != %+v", in, out)
	}
	var bad PutReq
	if err := Decode(KindPut, []byte{0xc1}, &bad); err == nil {
		t.Fatal("garbage must not decode")
	}
}

func TestErrAsError(t *testing.T) {
	if (Err{}).AsError() != nil {
		t.Fatal("ok is no error")
	}
	e := Err{Code: CodeGap, Msg: "gap", Have: 4}.AsError()
	if e == nil || e.Error() != "gap" {
		t.Fatal(e)
	}
}
