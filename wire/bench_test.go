package wire

import (
	"bytes"
	"io"
	"strconv"
	"testing"
)

func BenchmarkReadFrame(b *testing.B) {
	for _, size := range []int{16, 1 << 10, 64 << 10} {
		b.Run(byteSize(size), func(b *testing.B) {
			r := &repeatReader{frame: AppendFrame(nil, bytes.Repeat([]byte("x"), size))}
			fr := NewFrameReader(r, 0)
			b.SetBytes(int64(size + 4))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := fr.ReadFrame(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendFrame(b *testing.B) {
	body := []byte("PUT logs hello world")
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendFrame(buf[:0], body)
	}
}

func BenchmarkWriteFrame(b *testing.B) {
	body := []byte("PUT logs hello world")
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteFrame(io.Discard, body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseRequest(b *testing.B) {
	for _, tc := range []struct{ name, body string }{
		{"PUT", "PUT logs hello world, a typical small payload\r\n"},
		{"GET", "GET logs"},
		{"READ", "READ logs 1234567 100"},
		{"MPUT16", string(AppendRequest(nil, &Request{Cmd: CmdMPut, Topic: "logs", Entries: bytes.Fields(bytes.Repeat([]byte("entry "), 16))}))},
	} {
		b.Run(tc.name, func(b *testing.B) {
			body := []byte(tc.body)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := ParseRequest(body); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendReplyValue(b *testing.B) {
	payload := []byte("hello world, a typical small payload")
	buf := make([]byte, 0, 128)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendReplyValue(buf[:0], payload)
	}
}

func BenchmarkPeerFrame(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 256)
	r := &repeatReader{frame: AppendPeerFrame(nil, 1, 42, body)}
	pr := NewPeerReader(r, 0)
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendPeerFrame(buf[:0], 1, 42, body)
		if _, err := pr.ReadPeerFrame(); err != nil {
			b.Fatal(err)
		}
	}
}

func byteSize(n int) string {
	switch {
	case n >= 1<<10 && n%(1<<10) == 0:
		return itoa(n>>10) + "KiB"
	default:
		return itoa(n) + "B"
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
