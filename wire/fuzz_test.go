package wire

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"testing"
)

// FuzzParseRequest: ParseRequest never panics, fails only with a *Error, and
// every request it returns survives AppendRequest -> ParseRequest unchanged.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"", "PUT logs hello", "PUT logs  a b ", "REGISTER logs rf=3", "GET logs",
		"STATE logs", "METRICS", "METRICS  x", "GET  x", "READ logs 5 10",
		"GROUPREAD logs g 10 100", "COMMIT logs g 7", "LEADER logs", "GETW logs 10",
		"MPUT logs 2\n\x01\x00\x00\x00a\x02\x00\x00\x00b ", "PUT logs x\u00a0", "PUT t \xc2",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := ParseRequest(body)
		if err != nil {
			var we *Error
			if !errors.As(err, &we) || we.Msg == "" {
				t.Fatalf("ParseRequest(%q) failed with %T %v, want a *Error", body, err, err)
			}
			return
		}
		if req.Cmd == CmdPut && len(req.Payload) == 0 {
			t.Fatalf("ParseRequest(%q): PUT with an empty payload", body)
		}
		for i, e := range req.Entries {
			if len(e) == 0 {
				t.Fatalf("ParseRequest(%q): MPUT entry %d empty", body, i)
			}
		}
		again := AppendRequest(nil, &req)
		req2, err := ParseRequest(again)
		if err != nil {
			t.Fatalf("ParseRequest(%q) = %#v; its serialisation %q fails: %v", body, req, again, err)
		}
		if !reflect.DeepEqual(req, req2) {
			t.Fatalf("round trip of %q via %q:\n got %#v\nwant %#v", body, again, req2, req)
		}
	})
}

// FuzzFrameReader: on any byte stream the client and peer readers never
// panic, never return a frame outside their limits, and the frames they
// return re-encode to exactly the bytes they consumed.
func FuzzFrameReader(f *testing.F) {
	f.Add(uint16(100), AppendFrame(AppendFrame(nil, []byte("PUT a b")), []byte("GET a")))
	f.Add(uint16(10), []byte{0, 0, 0, 0, 1, 2, 3})
	f.Add(uint16(10), []byte{0xFF, 0xFF, 0xFF, 0xFF})
	f.Add(uint16(20), AppendPeerFrame(nil, 1, 2, []byte("body")))
	f.Add(uint16(20), []byte{9, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Fuzz(func(t *testing.T, max16 uint16, stream []byte) {
		max := int(max16)%(4*readerBufSize) + 1

		fr := NewFrameReader(bytes.NewReader(stream), max)
		var rebuilt []byte
		for {
			body, err := fr.ReadFrame()
			if err != nil {
				checkReadErr(t, err, len(stream) == len(rebuilt))
				break
			}
			if len(body) == 0 || len(body) > max {
				t.Fatalf("ReadFrame returned %d bytes with max %d", len(body), max)
			}
			rebuilt = AppendFrame(rebuilt, body)
		}
		if !bytes.HasPrefix(stream, rebuilt) {
			t.Fatalf("client frames do not re-encode to the stream's prefix")
		}

		pr := NewPeerReader(bytes.NewReader(stream), max+PeerHeaderLen)
		rebuilt = rebuilt[:0]
		for {
			pf, err := pr.ReadPeerFrame()
			if err != nil {
				checkReadErr(t, err, len(stream) == len(rebuilt))
				break
			}
			if PeerHeaderLen-4+len(pf.Body) > max+PeerHeaderLen {
				t.Fatalf("ReadPeerFrame returned a %d-byte body over the limit", len(pf.Body))
			}
			rebuilt = AppendPeerFrame(rebuilt, pf.Kind, pf.ID, pf.Body)
		}
		if !bytes.HasPrefix(stream, rebuilt) {
			t.Fatalf("peer frames do not re-encode to the stream's prefix")
		}
	})
}

func checkReadErr(t *testing.T, err error, atBoundary bool) {
	t.Helper()
	switch {
	case err == io.EOF:
		if !atBoundary {
			t.Fatalf("io.EOF inside the stream")
		}
	case err == io.ErrUnexpectedEOF, errors.Is(err, ErrInvalidFrameLength):
	default:
		t.Fatalf("unexpected error %v", err)
	}
}
