package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
)

// Client frames: a 4-byte little-endian length, then that many bytes of body.
const (
	// DefaultMaxFrame is the largest client frame body we accept by default:
	// 1 MiB. The reference caps requests at 64 KiB (ReferenceMaxFrame); any
	// client written against it therefore fits. A client port must never be
	// configured below MinMaxFrame.
	DefaultMaxFrame = 1 << 20

	// MinMaxFrame is the smallest client frame limit a node may run with:
	// ReferenceMaxFrame, plus what a one-entry READ reply may add to the
	// largest payload a reference request carries ("PUT  <payload>" with an
	// empty topic: 5 bytes of header). Every request the reference accepts
	// is then accepted here, and its entry read back (MaxEntrySize).
	MinMaxFrame = ReferenceMaxFrame + BatchReplyOverhead - len("PUT  ")

	// MaxMaxFrame is the largest client frame limit a node may run with:
	// half the node-to-node frame limit (DefaultMaxPeerFrame), so that a
	// request forwarded to a segment's leader, and a READ's entries fetched
	// from a replica, fit one peer frame with room for their headers.
	MaxMaxFrame = DefaultMaxPeerFrame / 2

	// ReferenceMaxFrame is the reference implementation's request cap.
	ReferenceMaxFrame = 64 << 10

	// FrameHeaderLen is the size of the client frame length prefix.
	FrameHeaderLen = 4

	// MsgInvalidFrameLength is the reply text (after "ERR ") for a frame
	// whose length is zero or above the limit.
	MsgInvalidFrameLength = "invalid frame length"
)

// ErrInvalidFrameLength reports a frame whose announced length is zero (or,
// for peer frames, shorter than the peer header) or larger than the reader's
// limit. The body has not been read: the stream is no longer at a frame
// boundary, so the only safe continuation is to reply (client port:
// "ERR invalid frame length") and close the connection. The reference kept
// reading and desynced; we close instead. Readers return a *FrameLengthError,
// which matches ErrInvalidFrameLength under errors.Is.
var ErrInvalidFrameLength = errors.New(MsgInvalidFrameLength)

// FrameLengthError is the detailed form of ErrInvalidFrameLength.
type FrameLengthError struct {
	Length uint32 // the announced length
	Min    int    // smallest acceptable length
	Max    int    // largest acceptable length
}

func (e *FrameLengthError) Error() string {
	return fmt.Sprintf("%s %d (want %d..%d)", MsgInvalidFrameLength, e.Length, e.Min, e.Max)
}

// Is makes errors.Is(err, ErrInvalidFrameLength) true.
func (e *FrameLengthError) Is(target error) bool { return target == ErrInvalidFrameLength }

// readerBufSize is the bufio size we use when wrapping a plain io.Reader.
// Frames up to this size are returned straight out of the bufio buffer
// (no copy); larger ones are read into the reader's own growable buffer.
const readerBufSize = 16 << 10

// retainLimit caps the body buffer a reader keeps between frames, so one
// large frame does not pin its memory for the life of the connection.
const retainLimit = 1 << 20

// FrameReader reads client frames from a stream. It is not safe for
// concurrent use. The zero value is not usable: call NewFrameReader.
type FrameReader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

// NewFrameReader returns a reader of frames no longer than max bytes
// (DefaultMaxFrame if max <= 0). If r is a *bufio.Reader it is used as is
// (its buffered bytes belong to the FrameReader from now on); otherwise r is
// wrapped in one.
func NewFrameReader(r io.Reader, max int) *FrameReader {
	if max <= 0 {
		max = DefaultMaxFrame
	}
	return &FrameReader{r: asBufio(r), max: max}
}

// Max returns the reader's frame limit.
func (fr *FrameReader) Max() int { return fr.max }

// ReadFrame reads the next frame and returns its body.
//
// The returned slice aliases memory owned by the reader and is valid only
// until the next call to ReadFrame: steady state reads allocate nothing.
// Copy the body to keep it.
//
// Errors: io.EOF when the stream ends cleanly at a frame boundary;
// io.ErrUnexpectedEOF when it ends inside a header or body; an error matching
// ErrInvalidFrameLength (body not read: reply and close) for a length of
// zero or above the limit; otherwise the underlying read error.
func (fr *FrameReader) ReadFrame() ([]byte, error) {
	h, err := peekHeader(fr.r, FrameHeaderLen)
	if err != nil {
		return nil, err
	}
	n := binary.LittleEndian.Uint32(h)
	_, _ = fr.r.Discard(FrameHeaderLen)
	if n == 0 || uint64(n) > uint64(fr.max) {
		return nil, &FrameLengthError{Length: n, Min: 1, Max: fr.max}
	}
	return readBody(fr.r, &fr.buf, int(n))
}

// AppendFrame appends a client frame carrying body to dst.
func AppendFrame(dst, body []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(body)))
	return append(dst, body...)
}

// WriteFrame writes one client frame carrying body to w in a single Write
// (bodies up to 4 KiB are copied behind the header; larger ones go out as a
// writev on a *net.TCPConn). For a zero-allocation path, build frames with
// AppendFrame (or the AppendReply* helpers) into a reused buffer and write
// that instead.
func WriteFrame(w io.Writer, body []byte) error {
	if uint64(len(body)) > 1<<32-1 {
		return fmt.Errorf("wire: frame body of %d bytes does not fit a 32-bit length", len(body))
	}
	if len(body) <= 4<<10 {
		_, err := w.Write(AppendFrame(make([]byte, 0, FrameHeaderLen+len(body)), body))
		return err
	}
	hdr := binary.LittleEndian.AppendUint32(make([]byte, 0, FrameHeaderLen), uint32(len(body)))
	bufs := net.Buffers{hdr, body}
	_, err := bufs.WriteTo(w)
	return err
}

func asBufio(r io.Reader) *bufio.Reader {
	if br, ok := r.(*bufio.Reader); ok {
		return br
	}
	return bufio.NewReaderSize(r, readerBufSize)
}

// peekHeader returns the next n header bytes without consuming them. A clean
// end of stream before the first byte is io.EOF; inside the header it is
// io.ErrUnexpectedEOF.
func peekHeader(r *bufio.Reader, n int) ([]byte, error) {
	h, err := r.Peek(n)
	if err == nil {
		return h, nil
	}
	if err == io.EOF && len(h) > 0 {
		return nil, io.ErrUnexpectedEOF
	}
	return nil, err
}

// readBody reads exactly n bytes (n >= 1). Bodies that fit in r's buffer are
// returned in place (no copy); larger ones go to *buf, which grows
// geometrically as bytes actually arrive, so a peer that announces a large
// frame and then stalls cannot make us allocate the whole limit up front.
func readBody(r *bufio.Reader, buf *[]byte, n int) ([]byte, error) {
	if n <= r.Size() {
		b, err := r.Peek(n)
		if err != nil {
			return nil, eofIsUnexpected(err)
		}
		_, _ = r.Discard(n)
		return b, nil
	}
	b := (*buf)[:0]
	if cap(b) > retainLimit && n <= retainLimit {
		b = nil
	}
	if cap(b) >= n {
		b = b[:n]
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, eofIsUnexpected(err)
		}
		*buf = b
		return b, nil
	}
	for len(b) < n {
		step := min(n-len(b), max(len(b), 64<<10))
		b = slices.Grow(b, step)
		k, err := io.ReadFull(r, b[len(b):len(b)+step])
		b = b[:len(b)+k]
		if err != nil {
			*buf = b[:0]
			return nil, eofIsUnexpected(err)
		}
	}
	*buf = b
	return b, nil
}

func eofIsUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}
