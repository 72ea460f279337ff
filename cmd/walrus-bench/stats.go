package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are recorded in microseconds, from 1 µs to 5 minutes, with 3
// significant digits.
const (
	histMin = 1
	histMax = int64(5 * time.Minute / time.Microsecond)
	histSig = 3
)

// stats gathers one side (producers or consumers). Counters are atomics
// so the progress line reads them cheaply; each worker has its own
// histogram and error table behind its own lock.
type stats struct {
	mu       sync.Mutex
	workers  []*worker
	sentMsgs atomic.Int64 // messages written to the wire (producers)
	okMsgs   atomic.Int64 // acknowledged (producers) or consumed (consumers)
	okBytes  atomic.Int64
	okReqs   atomic.Int64
	errs     atomic.Int64 // messages (producers) or requests (consumers) that failed
	last     atomic.Int64 // unix nanos of the last success
	caughtUp atomic.Int64 // consumers that read to the end
}

func newStats() *stats { return &stats{} }

type worker struct {
	s    *stats
	mu   sync.Mutex
	hist *hdrhistogram.Histogram
	// lateHist: how long after its slot each open-loop send whose wait
	// slept went out (nil until the first)
	lateHist *hdrhistogram.Histogram
	errs     map[string]int64
	eg       map[string]string // first full message of each error kind
}

func (s *stats) worker() *worker {
	w := &worker{s: s, hist: hdrhistogram.New(histMin, histMax, histSig), errs: map[string]int64{}, eg: map[string]string{}}
	s.mu.Lock()
	s.workers = append(s.workers, w)
	s.mu.Unlock()
	return w
}

func (w *worker) sent(n int) { w.s.sentMsgs.Add(int64(n)) }

// late records that an open-loop wait ended d after its slot.
func (w *worker) late(d time.Duration) {
	w.mu.Lock()
	if w.lateHist == nil {
		w.lateHist = hdrhistogram.New(histMin, histMax, histSig)
	}
	record(w.lateHist, d)
	w.mu.Unlock()
}

// record puts d in h in microseconds, clamped to the histogram's range.
func record(h *hdrhistogram.Histogram, d time.Duration) {
	_ = h.RecordValue(min(max(d.Microseconds(), histMin), histMax))
}

// mergedLate is the workers' late histograms combined.
func (s *stats) mergedLate() *hdrhistogram.Histogram {
	h := hdrhistogram.New(histMin, histMax, histSig)
	s.eachWorker(func(w *worker) {
		if w.lateHist != nil {
			h.Merge(w.lateHist)
		}
	})
	return h
}

// eachWorker calls f with each worker, under that worker's lock.
func (s *stats) eachWorker(f func(w *worker)) {
	s.mu.Lock()
	ws := append([]*worker(nil), s.workers...)
	s.mu.Unlock()
	for _, w := range ws {
		w.mu.Lock()
		f(w)
		w.mu.Unlock()
	}
}

// ok records a successful request of n messages (bytes of payload) that
// took lat.
func (w *worker) ok(n int, bytes int64, lat time.Duration, now time.Time) {
	w.mu.Lock()
	record(w.hist, lat)
	w.mu.Unlock()
	w.s.okMsgs.Add(int64(n))
	w.s.okBytes.Add(bytes)
	w.s.okReqs.Add(1)
	w.s.last.Store(now.UnixNano())
}

// fail records n failed messages (or requests) of a kind.
func (w *worker) fail(kind string, n int) { w.failEg(kind, "", n) }

// failEg is fail keeping eg, the full error text, as the kind's example.
func (w *worker) failEg(kind, eg string, n int) {
	w.mu.Lock()
	w.errs[kind] += int64(n)
	if _, ok := w.eg[kind]; !ok && eg != "" {
		w.eg[kind] = truncate(eg, 160)
	}
	w.mu.Unlock()
	w.s.errs.Add(int64(n))
}

// failReply records an ERR reply.
func (w *worker) failReply(msg, topic string, n int) { w.failEg(errKind(msg, topic), msg, n) }

// merged returns the workers' histograms, errors and error examples
// combined.
func (s *stats) merged() (*hdrhistogram.Histogram, map[string]int64, map[string]string) {
	h := hdrhistogram.New(histMin, histMax, histSig)
	errs, egs := map[string]int64{}, map[string]string{}
	s.eachWorker(func(w *worker) {
		h.Merge(w.hist)
		for k, v := range w.errs {
			errs[k] += v
		}
		for k, v := range w.eg {
			egs[k] = v
		}
	})
	return h, errs, egs
}

// errKind names an error reply's kind: the text before the first colon
// ("NotLeaderForPartition", "unavailable"), with the topic name replaced.
func errKind(msg, topic string) string {
	if i := strings.IndexByte(msg, ':'); i > 0 {
		msg = msg[:i]
	}
	if topic != "" {
		msg = strings.ReplaceAll(msg, topic, "<topic>")
	}
	return "ERR " + truncate(msg, 60)
}

// netKind names a connection error without addresses or ports.
func netKind(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF):
		return "EOF"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected EOF"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.Is(err, syscall.EPIPE):
		return "broken pipe"
	case errors.Is(err, net.ErrClosed):
		return "closed"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.As(err, &ne) && ne.Timeout():
		return "timeout"
	}
	return truncate(err.Error(), 60)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// ---- progress ----

// progress prints a line every ProgressEvery until stop is closed.
func (b *run) progress(stop <-chan struct{}) {
	if b.cfg.Progress == nil {
		<-stop
		return
	}
	t := time.NewTicker(b.cfg.ProgressEvery)
	defer t.Stop()
	var lastP, lastPB, lastC, lastCB int64
	last := b.start
	for {
		select {
		case <-stop:
			return
		case now := <-t.C:
			secs := now.Sub(last).Seconds()
			last = now
			var line strings.Builder
			fmt.Fprintf(&line, "[%5.1fs]", now.Sub(b.start).Seconds())
			if b.cfg.Producers > 0 {
				p, pb := b.prod.okMsgs.Load(), b.prod.okBytes.Load()
				h, _, _ := b.prod.merged()
				fmt.Fprintf(&line, " produce %s msgs/s %6.1f MB/s p99 %s (acked %s, errors %s)",
					num(float64(p-lastP)/secs), float64(pb-lastPB)/secs/1e6, ms(h.ValueAtQuantile(99)),
					num(float64(p)), num(float64(b.prod.errs.Load())))
				lastP, lastPB = p, pb
			}
			if b.cfg.Consumers > 0 {
				c, cb := b.cons.okMsgs.Load(), b.cons.okBytes.Load()
				h, _, _ := b.cons.merged()
				fmt.Fprintf(&line, " | consume %s msgs/s %6.1f MB/s p99 %s (consumed %s)",
					num(float64(c-lastC)/secs), float64(cb-lastCB)/secs/1e6, ms(h.ValueAtQuantile(99)), num(float64(c)))
				lastC, lastCB = c, cb
			}
			fmt.Fprintln(b.cfg.Progress, line.String())
		}
	}
}

// num formats n with thousands separators, no decimals.
func num(f float64) string {
	n := int64(f + 0.5)
	s := fmt.Sprint(n)
	if n < 0 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// ms formats microseconds as milliseconds.
func ms(us int64) string { return fmt.Sprintf("%.2f ms", float64(us)/1000) }

// ---- report ----

// Report is a run's outcome; --json prints it as one object.
type Report struct {
	Date    string         `json:"date"`
	Config  ReportConfig   `json:"config"`
	Produce *ProduceReport `json:"produce,omitempty"`
	Consume *ConsumeReport `json:"consume,omitempty"`
}

// ReportConfig echoes what was run.
type ReportConfig struct {
	Addrs     []string `json:"addrs"`
	Producers int      `json:"producers"`
	Consumers int      `json:"consumers"`
	Topics    []string `json:"topics"`
	Size      int      `json:"size"`
	Batch     int      `json:"batch"`
	Inflight  int      `json:"inflight"`
	Mode      string   `json:"mode"` // "closed-loop" or "open-loop"
	Route     string   `json:"route"`
	Rate      float64  `json:"rate,omitempty"`
	Duration  string   `json:"duration,omitempty"`
	Messages  int64    `json:"messages,omitempty"`
	Consume   string   `json:"consume,omitempty"`
	ReadMax   int      `json:"read_max,omitempty"`
	From      []uint64 `json:"from,omitempty"`
}

// Throughput is shared by both sides. Seconds run from the start of the
// run to the last success; MB are 10^6 bytes of payload.
type Throughput struct {
	Requests     int64             `json:"requests"`
	Bytes        int64             `json:"bytes"`
	Seconds      float64           `json:"seconds"`
	MsgsPerSec   float64           `json:"msgs_per_s"`
	MBPerSec     float64           `json:"mb_per_s"`
	Errors       int64             `json:"errors"`
	ErrorsByKind map[string]int64  `json:"errors_by_kind"`
	ErrorExample map[string]string `json:"error_examples,omitempty"`
	Latency      Latency           `json:"latency_ms"`
}

// Latency percentiles in milliseconds over successful requests.
type Latency struct {
	Of    string  `json:"of"`
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99.9"`
	Max   float64 `json:"max"`
	Mean  float64 `json:"mean"`
}

// ProduceReport: Sent = Acked + Errors (messages) once the run is over.
// Redials counts the connections producers dialled after the clock
// started: after a failure, or to follow a leader that moved (each
// producer's first connection is made before).
//
// SendLate (open loop) is how long after its slot each send whose wait
// slept went out: the load generator's own timing error, which counts in
// the latencies (a send behind schedule because a reply came late is not
// in it; that is the system's).
// (SendLate comes after the embedded Throughput in the JSON on purpose:
// the bench scripts take the first "p50", "p99" and "count" they find.)
type ProduceReport struct {
	Sent    int64 `json:"sent"`
	Acked   int64 `json:"acked"`
	Redials int64 `json:"redials"`
	Throughput
	SendLate *Latency `json:"send_late_ms,omitempty"`
}

// ConsumeReport: Errors count failed requests (retried). CaughtUp is how
// many consumers read to the end: everything acknowledged in the run (with
// producers), or everything there (without). EarlyEmpty counts reads
// answered EMPTY after the producers finished although acknowledged
// entries were unread at that position.
type ConsumeReport struct {
	Consumed   int64 `json:"consumed"`
	CaughtUp   int   `json:"caught_up"`
	Consumers  int   `json:"consumers"`
	EarlyEmpty int64 `json:"early_empty"`
	Throughput
}

func (b *run) report(starts []uint64) *Report {
	cfg := b.cfg
	rep := &Report{Date: b.start.UTC().Format(time.RFC3339), Config: ReportConfig{
		Addrs: cfg.Addrs, Producers: cfg.Producers, Consumers: cfg.Consumers, Size: cfg.Size, Batch: cfg.Batch,
		Inflight: cfg.Inflight, Mode: "closed-loop", Route: cfg.Route, Rate: cfg.Rate, Messages: cfg.Messages,
	}}
	for t := range cfg.Topics {
		rep.Config.Topics = append(rep.Config.Topics, cfg.topic(t))
	}
	if cfg.Rate > 0 {
		rep.Config.Mode = "open-loop"
	}
	if cfg.Duration > 0 {
		rep.Config.Duration = cfg.Duration.String()
	}
	if cfg.Producers > 0 {
		of := "PUT request, from send"
		if cfg.Batch > 1 {
			of = fmt.Sprintf("MPUT request of %d, from send", cfg.Batch)
		}
		if cfg.Rate > 0 {
			of = strings.Replace(of, "from send", "from scheduled send", 1)
		}
		rep.Produce = &ProduceReport{Sent: b.prod.sentMsgs.Load(), Acked: b.prod.okMsgs.Load(), Redials: b.redials.Load(),
			Throughput: b.prod.throughput(b.start, of)}
		if cfg.Rate > 0 {
			rep.Produce.SendLate = latencyOf(b.prod.mergedLate(), "open-loop send after its slot")
		}
	}
	if cfg.Consumers > 0 {
		rep.Config.Consume, rep.Config.ReadMax = cfg.Consume, cfg.ReadMax
		of := "GET request"
		if cfg.Consume == "read" {
			of = fmt.Sprintf("READ request of up to %d", cfg.ReadMax)
			rep.Config.From = starts
		}
		rep.Consume = &ConsumeReport{Consumed: b.cons.okMsgs.Load(), CaughtUp: int(b.cons.caughtUp.Load()),
			Consumers: cfg.Consumers, EarlyEmpty: b.earlyEmpty.Load(), Throughput: b.cons.throughput(b.start, of)}
	}
	return rep
}

func (s *stats) throughput(start time.Time, of string) Throughput {
	h, errs, egs := s.merged()
	t := Throughput{Requests: s.okReqs.Load(), Bytes: s.okBytes.Load(), Errors: s.errs.Load(), ErrorsByKind: errs,
		ErrorExample: egs}
	if last := s.last.Load(); last > 0 {
		t.Seconds = time.Unix(0, last).Sub(start).Seconds()
	}
	if t.Seconds > 0 {
		t.MsgsPerSec = float64(s.okMsgs.Load()) / t.Seconds
		t.MBPerSec = float64(t.Bytes) / t.Seconds / 1e6
	}
	t.Latency = *latencyOf(h, of)
	return t
}

func msf(us int64) float64 { return float64(us) / 1000 }

// writeText prints the report for people.
func (r *Report) writeText(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "walrus-bench %s  nodes %s  topics %d\n", r.Date, strings.Join(c.Addrs, ","), len(c.Topics))
	if p := r.Produce; p != nil {
		cmd := "PUT"
		if c.Batch > 1 {
			cmd = fmt.Sprintf("MPUT x%d", c.Batch)
		}
		mode := c.Mode
		if c.Rate > 0 {
			mode += fmt.Sprintf(" at %s msgs/s", num(c.Rate))
		}
		fmt.Fprintf(w, "produce: %d producers, %s of %d B, %d in flight each, %s\n", c.Producers, cmd, c.Size, c.Inflight, mode)
		fmt.Fprintf(w, "  %s msgs/s  %.1f MB/s  (%s acked in %.2f s; sent %s = acked %s + errors %s)\n",
			num(p.MsgsPerSec), p.MBPerSec, num(float64(p.Acked)), p.Seconds, num(float64(p.Sent)),
			num(float64(p.Acked)), num(float64(p.Errors)))
		writeLatency(w, p.Latency)
		if l := p.SendLate; l != nil && l.Count > 0 {
			fmt.Fprintf(w, "  sends after their slot (the load generator's timing; waits that slept, n=%s): p50 %.3f  p99 %.3f  max %.3f ms\n",
				num(float64(l.Count)), l.P50, l.P99, l.Max)
		}
		if p.Redials > 0 {
			fmt.Fprintf(w, "  %d connections dialled during the run (after failures, or to follow a moved leader)\n", p.Redials)
		}
		writeErrors(w, "messages", p.ErrorsByKind, p.ErrorExample)
	}
	if k := r.Consume; k != nil {
		fmt.Fprintf(w, "consume: %d consumers, %s", c.Consumers, strings.ToUpper(c.Consume))
		if c.Consume == "read" {
			fmt.Fprintf(w, " batches of %d from offset %v", c.ReadMax, c.From)
		}
		fmt.Fprintf(w, "; %d of %d read to the end\n", k.CaughtUp, k.Consumers)
		fmt.Fprintf(w, "  %s msgs/s  %.1f MB/s  (%s consumed in %.2f s, %s requests)\n",
			num(k.MsgsPerSec), k.MBPerSec, num(float64(k.Consumed)), k.Seconds, num(float64(k.Requests)))
		writeLatency(w, k.Latency)
		if k.EarlyEmpty > 0 {
			fmt.Fprintf(w, "  %d reads answered EMPTY after the producers finished with acknowledged entries unread\n", k.EarlyEmpty)
		}
		writeErrors(w, "requests, retried", k.ErrorsByKind, k.ErrorExample)
	}
}

// latencyOf is h's percentiles (µs recorded) in milliseconds.
func latencyOf(h *hdrhistogram.Histogram, of string) *Latency {
	q := h.ValueAtPercentilesSlice([]float64{50, 90, 99, 99.9})
	return &Latency{Of: of, Count: h.TotalCount(), P50: msf(q[0]), P90: msf(q[1]), P99: msf(q[2]), P999: msf(q[3]),
		Max: msf(h.Max()), Mean: h.Mean() / 1000}
}

func writeLatency(w io.Writer, l Latency) {
	fmt.Fprintf(w, "  latency per %s (n=%s): p50 %.2f  p90 %.2f  p99 %.2f  p99.9 %.2f  max %.2f ms\n",
		l.Of, num(float64(l.Count)), l.P50, l.P90, l.P99, l.P999, l.Max)
}

func writeErrors(w io.Writer, unit string, errs map[string]int64, egs map[string]string) {
	if len(errs) == 0 {
		fmt.Fprintln(w, "  errors: none")
		return
	}
	kinds := make([]string, 0, len(errs))
	for k := range errs {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	fmt.Fprintf(w, "  errors (%s):\n", unit)
	for _, k := range kinds {
		fmt.Fprintf(w, "    %8d  %s\n", errs[k], k)
		if eg := egs[k]; eg != "" && eg != strings.TrimPrefix(k, "ERR ") {
			fmt.Fprintf(w, "              e.g. %q\n", eg)
		}
	}
}
