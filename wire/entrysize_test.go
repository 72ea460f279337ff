package wire

import (
	"bytes"
	"math"
	"testing"
)

// TestMaxEntrySizeFitsABatchReply: the largest entry a node accepts comes
// back in a one-entry READ/GROUPREAD reply, at the largest offset there
// is, that a reader with the node's frame limit accepts; one byte more
// would not fit. A PUT of that one byte more does fit a request frame,
// which is why the node checks entry sizes and not only frame lengths.
func TestMaxEntrySizeFitsABatchReply(t *testing.T) {
	for _, limit := range []int{ReferenceMaxFrame, DefaultMaxFrame, 3<<20 + 7} {
		max := MaxEntrySize(limit)
		entry := bytes.Repeat([]byte{'x'}, max)
		frame := AppendReplyBatch(nil, math.MaxUint64, [][]byte{entry})
		if body := len(frame) - FrameHeaderLen; body != limit {
			t.Errorf("limit %d: the reply of a %d-byte entry at offset 2^64-1 is %d bytes, want exactly the limit", limit, max, body)
		}
		if got := BatchReplySize(math.MaxUint64, 1, max); got != len(frame) {
			t.Errorf("limit %d: BatchReplySize %d, frame %d", limit, got, len(frame))
		}
		body, err := NewFrameReader(bytes.NewReader(frame), limit).ReadFrame()
		if err != nil {
			t.Fatalf("limit %d: reading the reply: %v", limit, err)
		}
		r := ParseReply(body)
		if first, es, err := ParseBatchReply(r.Payload); err != nil || first != math.MaxUint64 || len(es) != 1 || !bytes.Equal(es[0], entry) {
			t.Fatalf("limit %d: decoded %d, %d entries, %v", limit, first, len(es), err)
		}
		// GET's reply of the same entry is shorter still
		if n := len(AppendReplyValue(nil, entry)) - FrameHeaderLen; n > limit {
			t.Errorf("limit %d: GET reply %d bytes", limit, n)
		}

		// one byte more: the reply would not fit, but the PUT does
		over := append(entry, 'y')
		if n := len(AppendReplyBatch(nil, math.MaxUint64, [][]byte{over})) - FrameHeaderLen; n <= limit {
			t.Errorf("limit %d: a %d-byte entry's reply is %d bytes, within the limit: MaxEntrySize is too small", limit, len(over), n)
		}
		put := AppendRequest(nil, &Request{Cmd: CmdPut, Topic: "t", Payload: over, HasPayload: true})
		if len(put) > limit {
			t.Fatalf("limit %d: test assumption: the PUT (%d bytes) fits the frame", limit, len(put))
		}
		req, err := ParseRequest(put)
		if err != nil {
			t.Fatal(err)
		}
		want := "entry too large: " + itoa(len(over)) + " bytes (at most " + itoa(max) + ")"
		if e := CheckEntrySizes(&req, max); e == nil || e.Msg != want {
			t.Errorf("limit %d: CheckEntrySizes(PUT of %d) = %v, want %q", limit, len(over), e, want)
		}
		req.Payload = entry
		if e := CheckEntrySizes(&req, max); e != nil {
			t.Errorf("limit %d: CheckEntrySizes(PUT of %d) = %v, want nil", limit, max, e)
		}
	}
	if MaxEntrySize(0) != DefaultMaxFrame-30 || BatchReplyOverhead != 30 {
		t.Errorf("MaxEntrySize(0) = %d, BatchReplyOverhead = %d", MaxEntrySize(0), BatchReplyOverhead)
	}
}

func TestCheckEntrySizesMPut(t *testing.T) {
	req := Request{Cmd: CmdMPut, Topic: "t", Entries: [][]byte{[]byte("abc"), []byte("abcd"), []byte("abcde")}}
	if e := CheckEntrySizes(&req, 5); e != nil {
		t.Fatalf("all within: %v", e)
	}
	want := "entry too large: entry 2 of 3 has 4 bytes (at most 3)"
	if e := CheckEntrySizes(&req, 3); e == nil || e.Msg != want {
		t.Fatalf("got %v, want %q", e, want)
	}
	for _, cmd := range []string{CmdGet, CmdRegister, CmdRead} {
		if e := CheckEntrySizes(&Request{Cmd: cmd, Topic: "t", Payload: []byte("abcdef")}, 1); e != nil {
			t.Errorf("%s: %v", cmd, e)
		}
	}
}

func TestBatchFit(t *testing.T) {
	e := func(n int) []byte { return make([]byte, n) }
	for _, tc := range []struct {
		first   uint64
		entries [][]byte
		limit   int
		want    int
	}{
		{0, nil, 100, 0},
		{0, [][]byte{e(500)}, 100, 1}, // a lone entry is always sent
		// "OK 0 2\n" (7) + 2*4 + 40+45 = 100
		{0, [][]byte{e(40), e(45), e(1)}, 100, 2},
		{0, [][]byte{e(40), e(46), e(1)}, 100, 1},
		// a longer offset, and a count that gains a digit at 10
		{12345, [][]byte{e(40), e(41)}, 100, 2},
		{12345, [][]byte{e(40), e(42)}, 100, 1},
	} {
		if got := BatchFit(tc.first, tc.entries, tc.limit); got != tc.want {
			t.Errorf("BatchFit(%d, %d entries, %d) = %d, want %d", tc.first, len(tc.entries), tc.limit, got, tc.want)
		}
		if k := BatchFit(tc.first, tc.entries, tc.limit); k > 1 {
			if n := len(AppendReplyBatch(nil, tc.first, tc.entries[:k])) - FrameHeaderLen; n > tc.limit {
				t.Errorf("BatchFit(%d, ...) = %d: a %d-byte reply", tc.first, k, n)
			}
		}
	}
	// many small entries: the length prefixes count
	many := make([][]byte, 10000)
	for i := range many {
		many[i] = e(104)
	}
	k := BatchFit(0, many, DefaultMaxFrame)
	if n := len(AppendReplyBatch(nil, 0, many[:k])) - FrameHeaderLen; n > DefaultMaxFrame || k == len(many) {
		t.Fatalf("BatchFit of 10000 small entries = %d: a %d-byte reply", k, n)
	}
	if n := len(AppendReplyBatch(nil, 0, many[:k+1])) - FrameHeaderLen; n <= DefaultMaxFrame {
		t.Fatalf("BatchFit of 10000 small entries = %d, but %d fit", k, k+1)
	}
}

// TestMinMaxFrameTakesEveryReferencePut: at the smallest limit a node may
// run with, the largest PUT the reference accepts (a 64 KiB request, empty
// topic) carries an entry the node accepts.
func TestMinMaxFrameTakesEveryReferencePut(t *testing.T) {
	put := append([]byte("PUT  "), bytes.Repeat([]byte{'p'}, ReferenceMaxFrame-len("PUT  "))...)
	req, err := ParseRequest(put)
	if err != nil {
		t.Fatal(err)
	}
	if e := CheckEntrySizes(&req, MaxEntrySize(MinMaxFrame)); e != nil {
		t.Fatalf("MinMaxFrame %d: %v", MinMaxFrame, e)
	}
	if e := CheckEntrySizes(&req, MaxEntrySize(MinMaxFrame-1)); e == nil {
		t.Fatalf("MinMaxFrame %d is not the smallest that takes it", MinMaxFrame)
	}
}
