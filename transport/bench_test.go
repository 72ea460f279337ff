package transport

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkRPC measures round trips on loopback with a trivial handler,
// from a fixed number of concurrent callers sharing one Client.
func BenchmarkRPC(b *testing.B) {
	for _, callers := range []int{1, 64} {
		for _, size := range []int{64, 4 << 10} {
			b.Run(fmt.Sprintf("callers=%d/body=%dB", callers, size), func(b *testing.B) {
				m := startMux(b, "127.0.0.1:0", echo)
				c := newClient(b, m.addr)
				body := make([]byte, size)
				if _, _, err := c.Call(context.Background(), 1, body); err != nil {
					b.Fatal(err)
				}
				b.SetBytes(int64(size))
				b.ReportAllocs()
				b.ResetTimer()
				var next atomic.Int64
				var wg sync.WaitGroup
				for range callers {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for next.Add(1) <= int64(b.N) {
							if _, _, err := c.Call(context.Background(), 1, body); err != nil {
								b.Error(err)
								return
							}
						}
					}()
				}
				wg.Wait()
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
			})
		}
	}
}

// BenchmarkRPCAsync keeps a window of Go calls in flight from one goroutine.
func BenchmarkRPCAsync(b *testing.B) {
	const window = 1024
	m := startMux(b, "127.0.0.1:0", echo)
	c := newClient(b, m.addr)
	body := make([]byte, 64)
	sem := make(chan struct{}, window)
	var wg sync.WaitGroup
	cb := func(_ uint8, _ []byte, err error) {
		if err != nil {
			b.Error(err)
		}
		<-sem
		wg.Done()
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		sem <- struct{}{}
		wg.Add(1)
		c.Go(1, body, time.Time{}, cb)
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "calls/s")
}
