package main

import (
	"bufio"
	"io"
	"strconv"
	"sync"
	"time"
)

// slowLog writes one line per slow acknowledged write:
//
//	<scheduled send, µs since the run started> <latency, ms> <producer>
//
// Sorted by the first column, lines that share a few milliseconds across
// many producers are a stall of the system (every connection waited);
// lines spread out alone are single slow requests. Producers call note
// from their reply goroutines, so it locks; the run flushes it at the end.
type slowLog struct {
	mu  sync.Mutex
	w   *bufio.Writer
	buf []byte
}

func newSlowLog(w io.Writer) *slowLog { return &slowLog{w: bufio.NewWriter(w)} }

func (l *slowLog) note(at, latency time.Duration, producer int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := strconv.AppendInt(l.buf[:0], at.Microseconds(), 10)
	b = append(b, ' ')
	b = strconv.AppendFloat(b, float64(latency.Microseconds())/1000, 'f', 3, 64)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(producer), 10)
	b = append(b, '\n')
	l.buf = b
	_, _ = l.w.Write(b)
}

func (l *slowLog) flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.w.Flush()
}
