package wire

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

func TestPeerFrameRoundTrip(t *testing.T) {
	frames := []PeerFrame{
		{Kind: 1, ID: 1, Body: []byte("hello")},
		{Kind: 0xFF, ID: 1<<64 - 1, Body: nil},
		{Kind: 7, ID: 42, Body: bytes.Repeat([]byte{0xAB}, 3*readerBufSize)},
		{Kind: 2, ID: 43, Body: []byte{0}},
	}
	var stream []byte
	for _, f := range frames {
		stream = AppendPeerFrame(stream, f.Kind, f.ID, f.Body)
	}
	if got := stream[:PeerHeaderLen]; !bytes.Equal(got, []byte{14, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0}) {
		t.Fatalf("first header = % x", got)
	}
	pr := NewPeerReader(&oneByteReader{r: bytes.NewReader(stream)}, 0)
	for i, want := range frames {
		got, err := pr.ReadPeerFrame()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if got.Kind != want.Kind || got.ID != want.ID || !bytes.Equal(got.Body, want.Body) {
			t.Fatalf("frame %d: got kind %d id %d %d bytes, want kind %d id %d %d bytes",
				i, got.Kind, got.ID, len(got.Body), want.Kind, want.ID, len(want.Body))
		}
	}
	if _, err := pr.ReadPeerFrame(); err != io.EOF {
		t.Fatalf("at end: %v, want io.EOF", err)
	}
}

func TestPeerReaderRefusesBadLengthWithoutReadingBody(t *testing.T) {
	for _, n := range []uint32{0, 8, 1001, 0xFFFFFFFF} {
		r := &headerOnlyReader{t: t, hdr: []byte{byte(n), byte(n >> 8), byte(n >> 16), byte(n >> 24)}}
		_, err := NewPeerReader(r, 1000).ReadPeerFrame()
		if !errors.Is(err, ErrInvalidFrameLength) {
			t.Errorf("length %d: err = %v, want ErrInvalidFrameLength", n, err)
		}
	}
}

func TestPeerReaderTruncation(t *testing.T) {
	full := AppendPeerFrame(nil, 3, 9, []byte("body"))
	for cut := 1; cut < len(full); cut++ {
		_, err := NewPeerReader(bytes.NewReader(full[:cut]), 0).ReadPeerFrame()
		if err != io.ErrUnexpectedEOF {
			t.Errorf("cut at %d: err = %v, want io.ErrUnexpectedEOF", cut, err)
		}
	}
}

func TestPeerReaderSteadyStateAllocatesNothing(t *testing.T) {
	r := &repeatReader{frame: AppendPeerFrame(nil, 1, 2, bytes.Repeat([]byte("x"), 100))}
	pr := NewPeerReader(r, 0)
	allocs := testing.AllocsPerRun(100, func() {
		if _, err := pr.ReadPeerFrame(); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocs per ReadPeerFrame", allocs)
	}
}
