package wire

import (
	"bufio"
	"encoding/binary"
	"io"
)

// Node-to-node frames: [u32 LE length][u8 kind][u64 LE request id][body].
// The length counts kind, id and body, so it is at least PeerHeaderLen-4.
const (
	// DefaultMaxPeerFrame is the default limit on a peer frame's length
	// field: 64 MiB.
	DefaultMaxPeerFrame = 64 << 20

	// PeerHeaderLen is the size of the length, kind and id fields together.
	PeerHeaderLen = 4 + 1 + 8

	peerMinLen = PeerHeaderLen - 4
)

// PeerFrame is one node-to-node frame. What Kind means, and how Body is
// encoded, is the business of the layer above (transport and messages).
type PeerFrame struct {
	Kind uint8
	ID   uint64
	Body []byte
}

// PeerReader reads peer frames from a stream. It is not safe for concurrent
// use. The zero value is not usable: call NewPeerReader.
type PeerReader struct {
	r   *bufio.Reader
	max int
	buf []byte
}

// NewPeerReader returns a reader of peer frames whose length field is at
// most max (DefaultMaxPeerFrame if max <= 0). A *bufio.Reader is used as is.
func NewPeerReader(r io.Reader, max int) *PeerReader {
	if max <= 0 {
		max = DefaultMaxPeerFrame
	}
	return &PeerReader{r: asBufio(r), max: max}
}

// ReadPeerFrame reads the next frame. Its Body aliases the reader's memory
// and is valid only until the next call. Errors are those of
// FrameReader.ReadFrame: io.EOF at a clean boundary, io.ErrUnexpectedEOF
// inside a frame, ErrInvalidFrameLength (body not read: close the
// connection) for a length below PeerHeaderLen-4 or above the limit.
func (pr *PeerReader) ReadPeerFrame() (PeerFrame, error) {
	h, err := peekHeader(pr.r, 4)
	if err != nil {
		return PeerFrame{}, err
	}
	n := binary.LittleEndian.Uint32(h)
	if n < peerMinLen || uint64(n) > uint64(pr.max) {
		_, _ = pr.r.Discard(4)
		return PeerFrame{}, &FrameLengthError{Length: n, Min: peerMinLen, Max: pr.max}
	}
	if h, err = pr.r.Peek(PeerHeaderLen); err != nil {
		return PeerFrame{}, eofIsUnexpected(err)
	}
	f := PeerFrame{Kind: h[4], ID: binary.LittleEndian.Uint64(h[5:])}
	_, _ = pr.r.Discard(PeerHeaderLen)
	if bodyLen := int(n) - peerMinLen; bodyLen > 0 {
		f.Body, err = readBody(pr.r, &pr.buf, bodyLen)
		if err != nil {
			return PeerFrame{}, err
		}
	}
	return f, nil
}

// SetPeerFrameLen sets the length field of the peer frame at the start of
// frame for a body of bodyLen bytes (for a frame whose body was appended
// after its header).
func SetPeerFrameLen(frame []byte, bodyLen int) {
	binary.LittleEndian.PutUint32(frame, uint32(peerMinLen+bodyLen))
}

// AppendPeerFrame appends one peer frame to dst. The caller keeps
// 4+1+8+len(body) within the receiver's limit.
func AppendPeerFrame(dst []byte, kind uint8, id uint64, body []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(peerMinLen+len(body)))
	dst = append(dst, kind)
	dst = binary.LittleEndian.AppendUint64(dst, id)
	return append(dst, body...)
}
