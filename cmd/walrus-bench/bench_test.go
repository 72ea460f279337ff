package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/walrus-go/walrus/actors"
	"github.com/walrus-go/walrus/client"
)

// TestBenchModes runs a short bench in each mode against one in-process
// 3-node cluster and checks that the report's counts add up: every message
// sent is either acknowledged or counted as an error, and consumers read
// exactly what was acknowledged.
func TestBenchModes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	c := startCluster(t, 3, nil)
	base := Config{Addrs: c.Addrs(), Topics: 1, Size: 64, Batch: 1, Inflight: 1, Duration: time.Second,
		Consume: "read", ReadMax: 100, Register: true, DrainTimeout: 20 * time.Second, Settle: 5 * time.Second,
		Progress: logWriter{t}, ProgressEvery: 500 * time.Millisecond}
	cases := []struct {
		name string
		tune func(*Config)
	}{
		{"put-read", func(c *Config) { c.Producers, c.Consumers = 4, 2 }},
		{"mput-read", func(c *Config) { c.Producers, c.Consumers, c.Batch = 4, 3, 50 }},
		{"put-pipelined-get", func(c *Config) { c.Producers, c.Consumers, c.Inflight, c.Consume = 2, 2, 8, "get" }},
		{"mput-pipelined-topics", func(c *Config) {
			c.Producers, c.Consumers, c.Topics, c.Batch, c.Inflight, c.Size = 3, 6, 3, 20, 4, 1000
		}},
		{"open-loop", func(c *Config) { c.Producers, c.Consumers, c.Rate, c.Inflight = 4, 1, 2000, 4 }},
		{"open-loop-mput", func(c *Config) { c.Producers, c.Rate, c.Batch, c.Inflight = 2, 20000, 100, 2 }},
		{"open-loop-one-in-flight", func(c *Config) { c.Producers, c.Consumers, c.Rate = 4, 1, 400 }},
		{"plain-syscalls", func(c *Config) { c.Producers, c.Consumers, c.PlainSyscalls = 2, 1, true }},
		{"leader-route", func(c *Config) { c.Producers, c.Consumers, c.Route, c.LeaderTTL = 4, 1, "leader", 200*time.Millisecond }},
		{"message-count", func(c *Config) {
			c.Producers, c.Consumers, c.Batch, c.Inflight, c.Messages, c.Duration = 4, 2, 10, 3, 1001, 0
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			cfg.Prefix = tc.name
			tc.tune(&cfg)
			rep, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			rep.writeText(&out)
			t.Log("\n" + out.String())
			checkProduce(t, cfg, rep)
			if cfg.Consumers > 0 {
				checkConsume(t, cfg, rep, rep.Produce.Acked)
			}
			if cfg.Route == "leader" {
				// every node names the same leader: the node whose metadata
				// says it leads the active segment
				topic := cfg.topic(0)
				want := c.Addr(uint64(c.Node(1).State().Topics[topic].Active().Leader))
				for _, a := range c.Addrs() {
					if got, err := leaderOf(context.Background(), a, topic); err != nil || got != want {
						t.Errorf("leaderOf(%s, %s) = %q, %v; want %s", a, topic, got, err, want)
					}
				}
			}
		})
	}

	// consumers alone read everything an earlier run wrote
	t.Run("consume-only", func(t *testing.T) {
		cfg := base
		cfg.Prefix, cfg.Producers, cfg.Batch, cfg.Messages, cfg.Duration = "consume-only", 4, 25, 5000, 0
		wrote, err := Run(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		checkProduce(t, cfg, wrote)
		for _, consume := range []string{"read", "get"} {
			cfg.Producers, cfg.Consumers, cfg.Consume, cfg.Register, cfg.Duration = 0, 3, consume, false, 20*time.Second
			// consumers alone read for --duration: the drain timeout (after
			// producers end) must not cut them short
			cfg.DrainTimeout = time.Millisecond
			read, err := Run(context.Background(), cfg)
			if err != nil {
				t.Fatal(err)
			}
			if read.Produce != nil {
				t.Errorf("%s: a produce section without producers", consume)
			}
			checkConsume(t, cfg, read, wrote.Produce.Acked)
		}
	})
}

func checkProduce(t *testing.T, cfg Config, rep *Report) {
	t.Helper()
	p := rep.Produce
	if p == nil {
		t.Fatal("no produce section")
	}
	if p.Sent != p.Acked+p.Errors {
		t.Errorf("sent %d != acked %d + errors %d", p.Sent, p.Acked, p.Errors)
	}
	if p.Errors != 0 {
		t.Errorf("errors on a healthy cluster: %v %v", p.ErrorsByKind, p.ErrorExample)
	}
	// producers connect before the clock and keep their connection while
	// the leader stays put (leader routing asks again every LeaderTTL
	// beside the load, as the Go client does)
	if p.Redials != 0 {
		t.Errorf("%d dials during the run on a healthy cluster; want each producer's one connection, made before", p.Redials)
	}
	if p.Acked == 0 {
		t.Errorf("nothing acknowledged")
	}
	if p.Latency.Count != p.Requests {
		t.Errorf("latency samples %d != successful requests %d", p.Latency.Count, p.Requests)
	}
	if want := int64(cfg.Size) * p.Acked; p.Bytes != want {
		t.Errorf("bytes %d, want %d", p.Bytes, want)
	}
	if cfg.Messages > 0 && p.Sent != cfg.Messages {
		t.Errorf("sent %d, want --messages %d", p.Sent, cfg.Messages)
	}
	if cfg.Rate > 0 {
		// the schedule allows rate x duration, plus the first request of each producer
		if limit := int64(cfg.Rate*cfg.Duration.Seconds()) + int64(cfg.Producers*cfg.Batch); p.Sent > limit {
			t.Errorf("open loop at %v msgs/s for %v sent %d (> %d)", cfg.Rate, cfg.Duration, p.Sent, limit)
		}
		// and spreads them over the run: sent at once, they would all be
		// answered long before it ends (a late machine only stretches it)
		if cfg.Duration > 0 && p.Seconds < 0.8*cfg.Duration.Seconds() {
			t.Errorf("open loop at %v msgs/s for %v: the last reply came %.2fs in; not paced", cfg.Rate, cfg.Duration, p.Seconds)
		}
		if !strings.Contains(p.Latency.Of, "scheduled") {
			t.Errorf("open-loop latency is %q", p.Latency.Of)
		}
		// at these rates every producer waits for its slots: how late
		// each wait ended is reported
		if l := p.SendLate; l == nil || l.Count == 0 || l.Count > p.Requests+int64(cfg.Producers) || l.P50 > l.Max {
			t.Errorf("open-loop send lateness: %+v (requests %d)", l, p.Requests)
		}
	} else if p.SendLate != nil {
		t.Errorf("closed loop reports send lateness: %+v", p.SendLate)
	}
	if !(p.Latency.P50 <= p.Latency.P90 && p.Latency.P90 <= p.Latency.P99 && p.Latency.P99 <= p.Latency.P999 &&
		p.Latency.P999 <= p.Latency.Max) {
		t.Errorf("percentiles out of order: %+v", p.Latency)
	}
}

func checkConsume(t *testing.T, cfg Config, rep *Report, acked int64) {
	t.Helper()
	k := rep.Consume
	if k == nil {
		t.Fatal("no consume section")
	}
	switch {
	case k.Consumed < acked:
		t.Errorf("%s consumers read %d messages, %d were acknowledged", cfg.Consume, k.Consumed, acked)
	case k.Consumed > acked && cfg.Consume == "read":
		t.Errorf("READ consumers read %d messages, %d were acknowledged", k.Consumed, acked)
	case k.Consumed > acked:
		// the node's shared cursor handed entries out twice: a node
		// matter (seen once under -race), not the load generator's
		t.Logf("GET consumers read %d messages, %d were acknowledged: %d duplicates", k.Consumed, acked, k.Consumed-acked)
	}
	if k.CaughtUp != cfg.Consumers {
		t.Errorf("%d of %d consumers read to the end", k.CaughtUp, cfg.Consumers)
	}
	if want := int64(cfg.Size) * k.Consumed; k.Bytes != want {
		t.Errorf("consumed bytes %d, want %d", k.Bytes, want)
	}
	if k.EarlyEmpty != 0 {
		t.Logf("%d reads answered EMPTY with acknowledged entries unread", k.EarlyEmpty)
	}
	if k.Errors != 0 {
		t.Logf("consumer request errors (retried): %v %v", k.ErrorsByKind, k.ErrorExample)
	}
}

// TestJSONReport runs the command line end to end and reads its one JSON
// object back.
func TestJSONReport(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	c := startCluster(t, 3, nil)
	var stdout, stderr bytes.Buffer
	slow := filepath.Join(t.TempDir(), "slow.txt")
	code := runMain([]string{"--addr", strings.Join(c.Addrs(), ","), "--register", "--topic", "json", "--producers", "3",
		"--consumers", "2", "--batch", "5", "--duration", "1500ms", "--json", "--slow-log", slow, "--slow-over", "0"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", code, &stdout, &stderr)
	}
	var rep Report
	dec := json.NewDecoder(&stdout)
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("stdout is not a JSON report: %v", err)
	}
	if dec.More() {
		t.Error("more than one JSON value on stdout")
	}
	if rep.Produce == nil || rep.Consume == nil || rep.Produce.Acked == 0 || rep.Consume.Consumed != rep.Produce.Acked {
		t.Errorf("report: %+v %+v", rep.Produce, rep.Consume)
	}
	if n := strings.Count(stderr.String(), "produce "); n < 1 {
		t.Errorf("expected a progress line per second on stderr, got %q", stderr.String())
	}
	// --slow-over 0: every acknowledged MPUT of 5 is a line
	// "<µs since start> <ms> <producer>"
	data, err := os.ReadFile(slow)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if rep.Produce != nil && int64(len(lines)) != rep.Produce.Acked/5 {
		t.Errorf("slow log has %d lines for %d acknowledged MPUTs", len(lines), rep.Produce.Acked/5)
	}
	for _, l := range lines {
		f := strings.Fields(l)
		if len(f) != 3 {
			t.Fatalf("slow log line %q: want 3 fields", l)
		}
		at, err1 := strconv.ParseInt(f[0], 10, 64)
		ms, err2 := strconv.ParseFloat(f[1], 64)
		p, err3 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || err3 != nil || at < 0 || at > 2e6 || ms < 0 || p < 0 || p >= 3 {
			t.Fatalf("slow log line %q: want µs within the run, ms >= 0, producer 0..2", l)
		}
	}
}

func TestFlagErrors(t *testing.T) {
	for _, args := range [][]string{
		{"--producers", "0", "--consumers", "0"},
		{"--batch", "0"},
		{"--consume", "peek"},
		{"--rf", "-1"},
		{"--rf", "256"},
		{"--size", "1000", "--batch", "10000"},
		{"extra"},
	} {
		var stdout, stderr bytes.Buffer
		if code := runMain(append([]string{"--addr", "127.0.0.1:1"}, args...), &stdout, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2 (stderr %q)", args, code, &stderr)
		}
	}
}

func TestMPutCount(t *testing.T) {
	for in, want := range map[string]int{"0 100": 100, "40 2 0 8": 10, "": -1, "1": -1, "1 x": -1} {
		got, ok := mputCount([]byte(in))
		if !ok {
			got = -1
		}
		if got != want {
			t.Errorf("mputCount(%q) = %d, want %d", in, got, want)
		}
	}
}

// TestBenchNodeThatNeverReplies: a node that takes requests and never
// answers must not hang a run that has no --duration: each request gets
// DrainTimeout, then counts as "timeout: no reply".
func TestBenchNodeThatNeverReplies(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { _, _ = io.Copy(io.Discard, c) }() // reads, never replies
		}
	}()
	// one in flight runs the single-goroutine session (closed loop or
	// open), more the writer/reader pair: each must give up on the node
	for _, tc := range []struct {
		inflight int
		rate     float64
	}{{1, 0}, {1, 100}, {3, 0}} {
		t.Run(fmt.Sprintf("inflight=%d/rate=%v", tc.inflight, tc.rate), func(t *testing.T) {
			cfg := Config{Addrs: []string{ln.Addr().String()}, Prefix: "mute", Topics: 1, Producers: 2, Messages: 4,
				Size: 16, Batch: 1, Inflight: tc.inflight, Rate: tc.rate, Consume: "read", ReadMax: 1,
				DrainTimeout: 100 * time.Millisecond}
			done := make(chan *Report, 1)
			go func() {
				rep, err := Run(context.Background(), cfg)
				if err != nil {
					t.Error(err)
				}
				done <- rep
			}()
			var rep *Report
			select {
			case rep = <-done:
			case <-time.After(time.Minute):
				t.Fatal("the run still waits for a node that never replies")
			}
			p := rep.Produce
			if p.Acked != 0 || p.Errors != cfg.Messages || p.ErrorsByKind["timeout: no reply"] != cfg.Messages {
				t.Fatalf("acked %d, errors %d %v; want %d timeouts", p.Acked, p.Errors, p.ErrorsByKind, cfg.Messages)
			}
		})
	}
}

// --plain-syscalls decides which connection the producers and consumers
// get: a plain *net.TCPConn, or rawio's wrapper (on Linux).
func TestDialPlainSyscalls(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close() // nothing needs to accept: the kernel completes a connect into the backlog
	for _, plain := range []bool{true, false} {
		c, err := dial(ln.Addr().String(), plain)
		if err != nil {
			t.Fatal(err)
		}
		_, isPlain := c.c.(*net.TCPConn)
		c.close()
		if want := plain || runtime.GOOS != "linux"; isPlain != want {
			t.Errorf("dial with plainSyscalls=%v: a plain TCPConn %v, want %v", plain, isPlain, want)
		}
	}
}

// TestLeaderRouteFollowsRollovers: under leader routing a producer keeps
// its connection while the leader stays put and moves when LEADER names
// another node. Segments of 300 entries roll over many times a second,
// and the leadership with them (round robin), so the producers must
// redial, once per move they see at most.
func TestLeaderRouteFollowsRollovers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	c := startCluster(t, 3, func(cfg *actors.Config) { cfg.MaxSegmentEntries = 300 })
	cfg := Config{Addrs: c.Addrs(), Prefix: "moves", Topics: 1, Producers: 2, Size: 32, Batch: 10, Inflight: 1,
		Duration: 1500 * time.Millisecond, Route: "leader", LeaderTTL: 50 * time.Millisecond, Register: true,
		Consume: "read", ReadMax: 100, DrainTimeout: 20 * time.Second}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := rep.Produce
	segments := len(c.Node(1).State().Topics[cfg.topic(0)].Segments)
	t.Logf("acked %d in %d segments; %d redials; errors %v", p.Acked, segments, p.Redials, p.ErrorsByKind)
	if p.Acked == 0 || p.Sent != p.Acked+p.Errors || p.Errors != 0 {
		t.Fatalf("sent %d, acked %d, errors %d %v", p.Sent, p.Acked, p.Errors, p.ErrorExample)
	}
	if segments < 3 {
		t.Fatalf("only %d segments: the leader never moved, nothing to follow", segments)
	}
	if p.Redials == 0 || p.Redials > int64(cfg.Producers*(segments-1)) {
		t.Errorf("%d redials for %d leader moves and %d producers; want 1 to %d", p.Redials, segments-1, cfg.Producers,
			cfg.Producers*(segments-1))
	}
}

// The bench scripts read a report's JSON with grep (bench/lib.sh
// json_field: the first "p50", "p99", "count" in it): the request
// latencies must come before the open loop's send lateness.
func TestJSONLatencyBeforeSendLateness(t *testing.T) {
	rep := ProduceReport{Throughput: Throughput{Latency: Latency{P50: 1.5, P99: 2.5, Count: 7}},
		SendLate: &Latency{P50: 0.1, P99: 0.2, Count: 9}}
	js, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	s := string(js)
	for _, k := range []string{`"p50":1.5`, `"p99":2.5`, `"count":7`} {
		field := k[:strings.IndexByte(k, ':')+1]
		if strings.Index(s, field) != strings.Index(s, k) {
			t.Errorf("the first %s in %s is not the request latency's", field, s)
		}
	}
}

// leaderOf asks node addr which node leads topic's active segment and
// returns its client address.
func leaderOf(ctx context.Context, addr, topic string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cl, err := client.Dial(ctx, []string{addr})
	if err != nil {
		return "", err
	}
	defer cl.Close()
	_, _, leader, err := cl.Leader(ctx, topic)
	return leader, err
}
