package wire

import (
	"bytes"
	"reflect"
	"testing"
)

func TestReplyEncoders(t *testing.T) {
	for _, tc := range []struct {
		name string
		got  []byte
		want string
	}{
		{"ok", AppendReplyOK(nil), "OK"},
		{"value", AppendReplyValue(nil, []byte("hello world")), "OK hello world"},
		{"binary value", AppendReplyValue(nil, []byte{0, 0xFF}), "OK \x00\xff"},
		{"empty", AppendReplyEmpty(nil), "EMPTY"},
		{"error", AppendReplyError(nil, ErrPutRequiresPayload.Msg), "ERR PUT requires a payload"},
		{"unknown topic", AppendReplyError(nil, UnknownTopic("logs").Msg), "ERR unknown topic logs"},
		{"not leader", AppendReplyError(nil, NotLeader("logs", 3).Msg), "ERR NotLeaderForPartition: logs/3"},
		{"frame length", AppendReplyError(nil, MsgInvalidFrameLength), "ERR invalid frame length"},
		{"raw", AppendReplyRaw(nil, []byte(`{"a":1}`)), `{"a":1}`},
		{"mput", AppendReplyMPut(nil, 100, 3), "OK 100 3"},
		{"leader", AppendReplyLeader(nil, 4, 2, "10.0.0.2:9092"), "OK 4 2 10.0.0.2:9092"},
		{"batch", AppendReplyBatch(nil, 7, [][]byte{[]byte("a"), []byte("bc")}), "OK 7 2\n\x01\x00\x00\x00a\x02\x00\x00\x00bc"},
		{"empty batch", AppendReplyBatch(nil, 7, nil), "EMPTY"},
	} {
		want := AppendFrame(nil, []byte(tc.want))
		if !bytes.Equal(tc.got, want) {
			t.Errorf("%s: got %q, want %q", tc.name, tc.got, want)
		}
	}
}

func TestReplyEncodersAppend(t *testing.T) {
	buf := AppendReplyOK(nil)
	buf = AppendReplyBatch(buf, 1, [][]byte{[]byte("x")})
	fr := NewFrameReader(bytes.NewReader(buf), 0)
	if f, _ := fr.ReadFrame(); string(f) != "OK" {
		t.Fatalf("first frame %q", f)
	}
	if f, _ := fr.ReadFrame(); string(f) != "OK 1 1\n\x01\x00\x00\x00x" {
		t.Fatalf("second frame %q", f)
	}
}

func TestBatchReplySize(t *testing.T) {
	entries := [][]byte{[]byte("abc"), []byte("de"), nil}
	got := BatchReplySize(12345, len(entries), 5)
	if want := len(AppendReplyBatch(nil, 12345, entries)); got != want {
		t.Fatalf("BatchReplySize = %d, want %d", got, want)
	}
}

func TestParseReply(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Reply
	}{
		{"OK", Reply{Kind: ReplyOK}},
		{"OK x y", Reply{Kind: ReplyOK, Payload: []byte("x y")}},
		{"EMPTY", Reply{Kind: ReplyEmpty}},
		{"ERR unknown command", Reply{Kind: ReplyErr, Payload: []byte("unknown command")}},
		{`{"id":1}`, Reply{Kind: ReplyRaw, Payload: []byte(`{"id":1}`)}},
		{"OKAY", Reply{Kind: ReplyRaw, Payload: []byte("OKAY")}},
	} {
		if got := ParseReply([]byte(tc.in)); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseReply(%q) = %#v, want %#v", tc.in, got, tc.want)
		}
	}
}

func TestParseBatchReply(t *testing.T) {
	want := [][]byte{[]byte("a"), []byte("b c\n"), {}}
	frame := AppendReplyBatch(nil, 99, want)
	r := ParseReply(frame[4:])
	first, got, err := ParseBatchReply(r.Payload)
	if err != nil || first != 99 || !reflect.DeepEqual(got, want) {
		t.Fatalf("ParseBatchReply = %d %q %v", first, got, err)
	}
	for _, bad := range []string{"", "7 1", "7 1\n", "7 0\n", "x 1\n\x00\x00\x00\x00", "7 1\n\x02\x00\x00\x00a", "7 1\n\x01\x00\x00\x00ab"} {
		if _, _, err := ParseBatchReply([]byte(bad)); err == nil {
			t.Errorf("ParseBatchReply(%q) succeeded", bad)
		}
	}
}

func TestReplyEncodersAllocateNothing(t *testing.T) {
	buf := make([]byte, 0, 4096)
	payload := []byte("some payload")
	entries := [][]byte{payload, payload}
	allocs := testing.AllocsPerRun(100, func() {
		b := AppendReplyOK(buf[:0])
		b = AppendReplyValue(b, payload)
		b = AppendReplyEmpty(b)
		b = AppendReplyError(b, "unknown command")
		b = AppendReplyBatch(b, 1, entries)
		_ = AppendReplyMPut(b, 1, 2)
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocs", allocs)
	}
}

func TestParseLeaderReplyRoundTrip(t *testing.T) {
	frame := AppendReplyLeader(nil, 4, 2, "walrus-1.walrus:9092")
	r := ParseReply(frame[FrameHeaderLen:])
	seg, node, addr, err := ParseLeaderReply(r.Payload)
	if err != nil || seg != 4 || node != 2 || addr != "walrus-1.walrus:9092" {
		t.Fatalf("ParseLeaderReply(%q) = %d %d %q %v", r.Payload, seg, node, addr, err)
	}
	for _, bad := range []string{"", "4 2", "4 2 ", "x 2 a:1", "4 -2 a:1"} {
		if _, _, _, err := ParseLeaderReply([]byte(bad)); err == nil {
			t.Errorf("ParseLeaderReply(%q) accepted", bad)
		}
	}
}
