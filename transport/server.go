package transport

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime/debug"
	"sync"

	"github.com/walrus-go/walrus/wire"
)

// serveRPC runs one RPC connection until it fails or the Mux closes: a
// reader loop (this goroutine), one goroutine per request (at most
// maxInFlight at once) and one writer. It returns once all have finished.
func (m *Mux) serveRPC(c net.Conn, log *slog.Logger) {
	ctx, cancel := context.WithCancel(m.ctx)
	defer cancel()
	out := newOutbox(m.cfg.maxQueued, nil)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := out.run(c, m.cfg.writeTimeout); err != nil {
			if !errors.Is(err, net.ErrClosed) {
				log.Warn("rpc server: write failed, closing", "err", err)
			}
			_ = c.Close() // unblocks the reader
		}
	}()

	sem := make(chan struct{}, m.cfg.maxInFlight)
	pr := wire.NewPeerReader(bufio.NewReaderSize(c, readBufSize), m.cfg.maxFrame)
read:
	for {
		f, err := pr.ReadPeerFrame()
		if err != nil {
			switch {
			case errors.Is(err, wire.ErrInvalidFrameLength):
				log.Warn("rpc server: bad frame, disconnecting peer", "err", err)
			case err == io.EOF, ctx.Err() != nil, errors.Is(err, net.ErrClosed):
			default:
				log.Info("rpc server: connection lost", "err", err)
			}
			break read
		}
		body := bytes.Clone(f.Body) // the handler owns its body
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break read
		}
		if m.dispatchOrdered(out, log, f.Kind, f.ID, body, func() { <-sem }) {
			continue
		}
		wg.Add(1)
		go func(kind uint8, id uint64) {
			defer wg.Done()
			defer func() { <-sem }()
			m.handle(ctx, out, log, kind, id, body)
		}(f.Kind, f.ID)
	}
	cancel()
	_ = c.Close()
	out.close(net.ErrClosed)
	wg.Wait()
}

// dispatchOrdered offers a request to an OrderedHandler on the reader
// goroutine; done runs once the reply is queued. When the handler does not
// take the request (taken false), done does not run: the caller handles
// the request itself and releases its slot.
func (m *Mux) dispatchOrdered(out *outbox, log *slog.Logger, kind uint8, id uint64, body []byte, done func()) (taken bool) {
	box := m.handler.Load()
	if box == nil {
		return false
	}
	oh, ok := box.h.(OrderedHandler)
	if !ok {
		return false
	}
	var once sync.Once
	reply := func(respKind uint8, respBody []byte, err error) {
		once.Do(func() {
			defer done()
			m.queueReply(out, id, respKind, respBody, err)
		})
	}
	defer func() {
		if r := recover(); r != nil {
			log.Error("rpc server: dispatch panicked", "kind", kind, "panic", r, "stack", string(debug.Stack()))
			reply(KindError, []byte(fmt.Sprint(msgPanicPrefix, r)), nil)
			taken = true
		}
	}()
	return oh.Dispatch(kind, body, reply)
}

// handle runs one request and queues its reply.
func (m *Mux) handle(ctx context.Context, out *outbox, log *slog.Logger, kind uint8, id uint64, body []byte) {
	defer func() {
		if r := recover(); r != nil {
			log.Error("rpc server: handler panicked", "kind", kind, "panic", r, "stack", string(debug.Stack()))
			_ = out.put(KindError, id, []byte(fmt.Sprint(msgPanicPrefix, r)))
		}
	}()
	box := m.handler.Load()
	if box == nil {
		_ = out.put(KindError, id, []byte(MsgNotReady))
		return
	}
	respKind, respBody, err := box.h.Handle(ctx, kind, body)
	m.queueReply(out, id, respKind, respBody, err)
}

func (m *Mux) queueReply(out *outbox, id uint64, respKind uint8, respBody []byte, err error) {
	if err != nil {
		_ = out.put(KindError, id, []byte(err.Error()))
		return
	}
	// A reply over the frame limit (ours, assumed to be the caller's too)
	// would make the caller drop the connection: send an error instead.
	if len(respBody) > m.cfg.maxFrame-(wire.PeerHeaderLen-4) {
		_ = out.put(KindError, id, []byte(fmt.Sprintf("reply of %d bytes exceeds the frame limit", len(respBody))))
		return
	}
	_ = out.put(respKind, id, respBody)
}
