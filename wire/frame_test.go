package wire

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestAppendFrameMatchesCompatExample(t *testing.T) {
	got := AppendFrame(nil, []byte("PUT logs hello"))
	want := append([]byte{0x0E, 0, 0, 0}, "PUT logs hello"...)
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendFrame = % x, want % x", got, want)
	}
	var buf bytes.Buffer
	if err := WriteFrame(&buf, []byte("PUT logs hello")); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Fatalf("WriteFrame wrote % x, want % x", buf.Bytes(), want)
	}
}

func TestFrameReaderRoundTrip(t *testing.T) {
	bodies := [][]byte{
		[]byte("x"),
		[]byte("PUT logs hello"),
		bytes.Repeat([]byte("a"), readerBufSize-1),
		bytes.Repeat([]byte("b"), readerBufSize),
		bytes.Repeat([]byte("c"), readerBufSize+1), // past the bufio buffer
		bytes.Repeat([]byte("d"), 300<<10),
		[]byte("after a big one"),
	}
	var stream []byte
	for _, b := range bodies {
		stream = AppendFrame(stream, b)
	}
	// One byte per Read: every partial-read path gets exercised.
	fr := NewFrameReader(&oneByteReader{r: bytes.NewReader(stream)}, 0)
	for i, want := range bodies {
		got, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("frame %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("frame %d: got %d bytes, want %d", i, len(got), len(want))
		}
	}
	if _, err := fr.ReadFrame(); err != io.EOF {
		t.Fatalf("after last frame: err = %v, want io.EOF", err)
	}
}

func TestFrameReaderRefusesBadLengthWithoutReadingBody(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    uint32
	}{
		{"zero", 0},
		{"one over max", 101},
		{"huge", 0xFFFFFFFF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := []byte{byte(tc.n), byte(tc.n >> 8), byte(tc.n >> 16), byte(tc.n >> 24)}
			// The reader hands over the header, then fails the test if
			// anyone asks for more.
			r := &headerOnlyReader{t: t, hdr: hdr}
			fr := NewFrameReader(r, 100)
			_, err := fr.ReadFrame()
			if !errors.Is(err, ErrInvalidFrameLength) {
				t.Fatalf("err = %v, want ErrInvalidFrameLength", err)
			}
			var fle *FrameLengthError
			if !errors.As(err, &fle) || fle.Length != tc.n || fle.Max != 100 {
				t.Fatalf("err = %#v, want *FrameLengthError{Length: %d, Max: 100}", err, tc.n)
			}
		})
	}
}

func TestFrameReaderAcceptsExactlyMax(t *testing.T) {
	body := bytes.Repeat([]byte{'z'}, 100)
	fr := NewFrameReader(bytes.NewReader(AppendFrame(nil, body)), 100)
	got, err := fr.ReadFrame()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("ReadFrame = %q, %v", got, err)
	}
}

func TestFrameReaderTruncation(t *testing.T) {
	full := AppendFrame(nil, []byte("hello"))
	big := AppendFrame(nil, bytes.Repeat([]byte("q"), 2*readerBufSize))
	for _, tc := range []struct {
		name   string
		stream []byte
		want   error
	}{
		{"empty stream", nil, io.EOF},
		{"inside header", full[:2], io.ErrUnexpectedEOF},
		{"header only", full[:4], io.ErrUnexpectedEOF},
		{"inside body", full[:7], io.ErrUnexpectedEOF},
		{"inside big body", big[:readerBufSize+10], io.ErrUnexpectedEOF},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fr := NewFrameReader(bytes.NewReader(tc.stream), 0)
			if _, err := fr.ReadFrame(); err != tc.want {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestFrameReaderPassesThroughReadErrors(t *testing.T) {
	boom := errors.New("boom")
	fr := NewFrameReader(io.MultiReader(bytes.NewReader([]byte{5, 0}), errReader{boom}), 0)
	if _, err := fr.ReadFrame(); err != boom {
		t.Fatalf("err = %v, want boom", err)
	}
}

func TestFrameReaderDoesNotAllocateAnnouncedLengthUpFront(t *testing.T) {
	// A peer announces 64 MiB and sends 10 bytes.
	stream := append([]byte{0, 0, 0, 4}, "0123456789"...)
	fr := NewFrameReader(bytes.NewReader(stream), 64<<20)
	if _, err := fr.ReadFrame(); err != io.ErrUnexpectedEOF {
		t.Fatalf("err = %v, want io.ErrUnexpectedEOF", err)
	}
	if c := cap(fr.buf); c > 1<<20 {
		t.Fatalf("reader grew its buffer to %d bytes for 10 received", c)
	}
}

func TestFrameReaderUsesGivenBufio(t *testing.T) {
	br := bufio.NewReaderSize(strings.NewReader("\x02\x00\x00\x00hi"), 4096)
	fr := NewFrameReader(br, 0)
	if fr.r != br {
		t.Fatal("FrameReader wrapped an existing *bufio.Reader")
	}
	if got, err := fr.ReadFrame(); err != nil || string(got) != "hi" {
		t.Fatalf("ReadFrame = %q, %v", got, err)
	}
}

func TestFrameReaderSteadyStateAllocatesNothing(t *testing.T) {
	for _, size := range []int{14, 200 << 10} {
		frame := AppendFrame(nil, bytes.Repeat([]byte("p"), size))
		r := &repeatReader{frame: frame}
		fr := NewFrameReader(r, 0)
		if _, err := fr.ReadFrame(); err != nil { // warm the buffer
			t.Fatal(err)
		}
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := fr.ReadFrame(); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%d-byte frames: %.1f allocs per ReadFrame, want 0", size, allocs)
		}
	}
}

// oneByteReader returns at most one byte per Read.
type oneByteReader struct{ r io.Reader }

func (o *oneByteReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return o.r.Read(p[:1])
}

// headerOnlyReader yields hdr, then fails the test on any further Read.
type headerOnlyReader struct {
	t    *testing.T
	hdr  []byte
	done bool
}

func (h *headerOnlyReader) Read(p []byte) (int, error) {
	if h.done {
		h.t.Errorf("reader read past the frame header")
		return 0, io.EOF
	}
	h.done = true
	return copy(p, h.hdr), nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// repeatReader yields frame over and over.
type repeatReader struct {
	frame []byte
	off   int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		k := copy(p[n:], r.frame[r.off:])
		n += k
		r.off = (r.off + k) % len(r.frame)
	}
	return n, nil
}

func TestWriteFrameLarge(t *testing.T) {
	body := bytes.Repeat([]byte("L"), 10<<10)
	var buf bytes.Buffer
	if err := WriteFrame(&buf, body); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), AppendFrame(nil, body)) {
		t.Fatal("WriteFrame wrote something else than AppendFrame")
	}
}
