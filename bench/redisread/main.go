// Command redisread reads a whole Redis stream in order, the way a log
// consumer reads Walrus by offset: XRANGE <key> <after> + COUNT <n> from
// the first entry to the last, each request starting after the last ID it
// got. redis-benchmark cannot iterate a stream, hence this. It speaks RESP
// itself (no client library) over one connection and prints one line:
//
//	redisread: 1000000 entries, 128000000 B of values in 2.10 s: 476190 msgs/s, 61.0 MB/s; latency per XRANGE of up to 1000 (n=1000): p50 1.80 p99 3.10 p99.9 4.00 max 4.20 ms
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:6379", "Redis address")
	key := flag.String("key", "bench", "stream key")
	count := flag.Int("count", 1000, "entries per XRANGE")
	flag.Parse()
	if err := run(*addr, *key, *count); err != nil {
		fmt.Fprintln(os.Stderr, "redisread:", err)
		os.Exit(1)
	}
}

func run(addr, key string, count int) error {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	r := bufio.NewReaderSize(c, 1<<20)
	w := bufio.NewWriter(c)
	var lats []time.Duration
	var entries, bytes int64
	after := "-"
	start := time.Now()
	for {
		t := time.Now()
		if err := writeCommand(w, "XRANGE", key, after, "+", "COUNT", strconv.Itoa(count)); err != nil {
			return err
		}
		v, err := readValue(r)
		if err != nil {
			return err
		}
		lats = append(lats, time.Since(t))
		list, ok := v.([]any)
		if !ok {
			return fmt.Errorf("XRANGE answered %v", v)
		}
		if len(list) == 0 {
			break
		}
		for _, e := range list {
			pair, ok := e.([]any)
			if !ok || len(pair) != 2 {
				return fmt.Errorf("malformed entry %v", e)
			}
			id, _ := pair[0].(string)
			fields, _ := pair[1].([]any)
			for i := 1; i < len(fields); i += 2 {
				s, _ := fields[i].(string)
				bytes += int64(len(s))
			}
			after = "(" + id
			entries++
		}
	}
	el := time.Since(start)
	slices.Sort(lats)
	q := func(p float64) float64 {
		return float64(lats[min(len(lats)-1, int(p*float64(len(lats))))].Microseconds()) / 1000
	}
	fmt.Printf("redisread: %d entries, %d B of values in %.2f s: %.0f msgs/s, %.1f MB/s; latency per XRANGE of up to %d (n=%d): p50 %.2f p99 %.2f p99.9 %.2f max %.2f ms\n",
		entries, bytes, el.Seconds(), float64(entries)/el.Seconds(), float64(bytes)/el.Seconds()/1e6, count, len(lats),
		q(0.50), q(0.99), q(0.999), float64(lats[len(lats)-1].Microseconds())/1000)
	return nil
}

func writeCommand(w *bufio.Writer, args ...string) error {
	fmt.Fprintf(w, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(w, "$%d\r\n%s\r\n", len(a), a)
	}
	return w.Flush()
}

// readValue reads one RESP2 value: strings as string, arrays as []any,
// integers as int64, nil as nil; an error reply is returned as an error.
func readValue(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if len(line) < 3 {
		return nil, errors.New("short RESP line")
	}
	body := line[1 : len(line)-2]
	switch line[0] {
	case '+':
		return body, nil
	case '-':
		return nil, errors.New(body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		return string(b[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = readValue(r); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("unknown RESP type %q", line[0])
}
