package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/walrus-go/walrus/client"
	"github.com/walrus-go/walrus/internal/poll"
	"github.com/walrus-go/walrus/internal/rawio"
	"github.com/walrus-go/walrus/wire"
)

// Config is one benchmark run.
type Config struct {
	Addrs     []string // client addresses of the nodes; worker i uses Addrs[i%len]
	Producers int
	Consumers int
	Topics    int
	Prefix    string // topics are <Prefix>-0 .. <Prefix>-<Topics-1>

	Size     int // payload bytes per message
	Batch    int // 1: PUT; >1: MPUT of Batch entries
	Inflight int // pipelined requests per producer connection

	Duration time.Duration // how long producers issue requests (0: until Messages)
	Messages int64         // total messages to produce (0: until Duration)
	Rate     float64       // total msgs/s, open loop (0: closed loop, max rate)

	PlainSyscalls bool // socket reads and writes as ordinary system calls, not raw ones (internal/rawio)

	Consume string // "read" (READ by offset) or "get" (GET, shared cursor)
	ReadMax int    // READ batch size
	From    string // where READ consumers start: "start", "end" or an offset ("": end with producers, start without)

	// Route: "any" (producer i writes through node i mod n; nodes forward
	// to the segment leader) or "leader" (each producer writes to its
	// topic's segment leader, asked with LEADER before the run and again
	// every LeaderTTL beside the load, as the Go client routes writes;
	// a producer moves when the answer changes or its connection fails).
	Route     string
	LeaderTTL time.Duration

	Register bool // REGISTER the topics first
	RF       int  // REGISTER rf=N (0: cluster default)

	DrainTimeout time.Duration // how long to wait for replies/consumers after producers stop
	// Settle is how long a consumer keeps polling, after the producers
	// finished, reads that answer EMPTY although it has not yet read as
	// many entries as were acknowledged (0: give up at the first).
	Settle        time.Duration
	Progress      io.Writer // a line per ProgressEvery (nil: none)
	ProgressEvery time.Duration

	// SlowLog, when set, gets a line per acknowledged write slower than
	// SlowOver (see slowLog): to see whether a latency tail is stalls that
	// hit every producer at once or single slow requests.
	SlowLog  io.Writer
	SlowOver time.Duration
}

func (c *Config) validate() error {
	switch {
	case len(c.Addrs) == 0:
		return errors.New("--addr: need at least one node")
	case c.Producers < 0 || c.Consumers < 0:
		return errors.New("--producers and --consumers must not be negative")
	case c.Producers == 0 && c.Consumers == 0:
		return errors.New("nothing to do: --producers and --consumers are both 0")
	case c.Topics < 1:
		return errors.New("--topics must be at least 1")
	case c.Size < 1 || c.Size > wire.DefaultMaxFrame-64:
		return fmt.Errorf("--size must be 1..%d", wire.DefaultMaxFrame-64)
	case c.Batch < 1 || c.Batch > wire.MaxMPutEntries:
		return fmt.Errorf("--batch must be 1..%d", wire.MaxMPutEntries)
	case c.Batch*(c.Size+4)+64 > wire.DefaultMaxFrame:
		return fmt.Errorf("--batch %d of --size %d does not fit a %d-byte request", c.Batch, c.Size, wire.DefaultMaxFrame)
	case c.Inflight < 1:
		return errors.New("--inflight must be at least 1")
	case c.Producers > 0 && c.Duration <= 0 && c.Messages <= 0:
		return errors.New("give --duration or --messages")
	case c.Rate < 0:
		return errors.New("--rate must not be negative")
	case c.Consume != "read" && c.Consume != "get":
		return fmt.Errorf("--consume %q: want read or get", c.Consume)
	case c.ReadMax < 1 || c.ReadMax > wire.MaxReadMax:
		return fmt.Errorf("--read-max must be 1..%d", wire.MaxReadMax)
	case c.RF < 0 || c.RF > wire.MaxRF:
		return fmt.Errorf("--rf must be 0 (the cluster's default) or 1..%d", wire.MaxRF)
	case c.Route != "" && c.Route != "any" && c.Route != "leader":
		return fmt.Errorf("--route %q: want any or leader", c.Route)
	}
	if c.Route == "" {
		c.Route = "any"
	}
	if c.LeaderTTL <= 0 {
		c.LeaderTTL = 5 * time.Second
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.ProgressEvery <= 0 {
		c.ProgressEvery = time.Second
	}
	if c.From == "" {
		c.From = "end"
		if c.Producers == 0 {
			c.From = "start"
		}
	}
	return nil
}

func (c *Config) topic(i int) string { return c.Prefix + "-" + strconv.Itoa(i%c.Topics) }

// Run executes the benchmark and returns its report. ctx cancels it early
// (what was measured until then is still reported).
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	starts, err := setup(ctx, cfg)
	if err != nil {
		return nil, err
	}

	b := &run{cfg: cfg, prod: newStats(), cons: newStats(), producersDone: make(chan struct{}),
		acked: make([]atomic.Int64, cfg.Topics), consumed: make([]atomic.Int64, cfg.Topics)}
	b.budget.Store(cfg.Messages)
	if cfg.SlowLog != nil {
		b.slow = newSlowLog(cfg.SlowLog)
		defer b.slow.flush()
	}
	hard, cancelHard := context.WithCancel(ctx)
	defer cancelHard()

	// producers connect, and leader-routed ones learn where to write,
	// before the clock starts: what is timed is the load, not the dials
	// (a dial that fails here is made again, and counted, in the run)
	b.leaders = make([]atomic.Pointer[string], cfg.Topics)
	if cfg.Route == "leader" {
		// one client for every LEADER of the run, its connections kept
		if b.lookup, err = client.Dial(ctx, cfg.Addrs); err != nil {
			return nil, fmt.Errorf("leader routing: %w", err)
		}
		defer b.lookup.Close()
		for t := range cfg.Topics {
			b.askLeader(hard, t)
		}
	}
	producers := make([]*producer, cfg.Producers)
	var dwg sync.WaitGroup
	for i := range producers {
		p := &producer{b: b, id: i, addr: cfg.Addrs[i%len(cfg.Addrs)], topic: cfg.topic(i), t: i % cfg.Topics}
		producers[i] = p
		dwg.Add(1)
		go func() { defer dwg.Done(); p.conn, _ = dial(p.target(), cfg.PlainSyscalls) }()
	}
	dwg.Wait()

	var pwg sync.WaitGroup
	b.start = time.Now()
	issueCtx, cancelIssue := context.WithCancel(hard)
	defer cancelIssue()
	if cfg.Duration > 0 {
		issueCtx, cancelIssue = context.WithDeadline(hard, b.start.Add(cfg.Duration))
		defer cancelIssue()
	}
	for _, p := range producers {
		pwg.Add(1)
		go func() { defer pwg.Done(); p.run(issueCtx, hard) }()
	}
	watchCtx, stopWatch := context.WithCancel(issueCtx)
	watchDone := make(chan struct{})
	if cfg.Route == "leader" {
		go func() { defer close(watchDone); b.watchLeaders(watchCtx) }()
	} else {
		close(watchDone)
	}
	go func() {
		pwg.Wait()
		b.prodEnd = time.Now()
		stopWatch()
		<-watchDone
		close(b.producersDone)
	}()

	// consumers: consumer j reads topic j%T; the c consumers of one topic
	// split its offsets into stripes of ReadMax (READ) or share its cursor
	// (GET)
	var cwg sync.WaitGroup
	perTopic := make([]int, cfg.Topics)
	for j := range cfg.Consumers {
		perTopic[j%cfg.Topics]++
	}
	consCtx := hard
	if cfg.Producers == 0 && cfg.Duration > 0 {
		var cancel context.CancelFunc
		consCtx, cancel = context.WithDeadline(hard, b.start.Add(cfg.Duration))
		defer cancel()
	}
	for j := range cfg.Consumers {
		t := j % cfg.Topics
		c := &consumer{b: b, addr: cfg.Addrs[j%len(cfg.Addrs)], topic: cfg.topic(t), t: t,
			stripe: j / cfg.Topics, stripes: perTopic[t], start: starts[t]}
		cwg.Add(1)
		go func() { defer cwg.Done(); c.run(consCtx) }()
	}

	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() { defer close(progressDone); b.progress(stopProgress) }()

	// once producers finish, consumers get DrainTimeout to catch up;
	// consumers alone read for --duration (consCtx's deadline) instead
	select {
	case <-b.producersDone:
	case <-hard.Done():
	}
	consumersDone := make(chan struct{})
	go func() { cwg.Wait(); close(consumersDone) }()
	drain := cfg.DrainTimeout
	if cfg.Producers == 0 && cfg.Duration > 0 {
		drain = max(drain, time.Until(b.start.Add(cfg.Duration))+time.Second)
	}
	select {
	case <-consumersDone:
	case <-time.After(drain):
		cancelHard()
		<-consumersDone
	}
	b.consEnd = time.Now()
	close(stopProgress)
	<-progressDone
	<-b.producersDone
	return b.report(starts), nil
}

// run is the shared state of one benchmark run.
type run struct {
	cfg           Config
	slow          *slowLog // nil without Config.SlowLog
	start         time.Time
	prodEnd       time.Time
	consEnd       time.Time
	budget        atomic.Int64 // messages left to claim (Messages mode)
	prod, cons    *stats
	producersDone chan struct{}
	// leaders holds, per topic, the client address of the segment leader
	// as LEADER last named it (nil: not known; leader-routed producers
	// then write through their own node)
	leaders []atomic.Pointer[string]
	lookup  *client.Client // asks LEADER under leader routing (nil otherwise)
	redials atomic.Int64   // producer dials after the clock started
	// per topic: messages acknowledged by this run's producers, and
	// consumed by its consumers
	acked, consumed []atomic.Int64
	// earlyEmpty counts reads answered EMPTY after the producers finished
	// although acknowledged entries were still unread there
	earlyEmpty atomic.Int64
}

// claim reserves up to n messages of the --messages budget.
func (b *run) claim(n int) int {
	if b.cfg.Messages <= 0 {
		return n
	}
	for {
		left := b.budget.Load()
		if left <= 0 {
			return 0
		}
		k := min(int64(n), left)
		if b.budget.CompareAndSwap(left, left-k) {
			return int(k)
		}
	}
}

func (b *run) producing() bool {
	select {
	case <-b.producersDone:
		return false
	default:
		return true
	}
}

// ---- protocol connection ----

type conn struct {
	c    net.Conn
	fr   *wire.FrameReader
	addr string // the node dialled
}

func dial(addr string, plainSyscalls bool) (*conn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
	}
	if !plainSyscalls {
		c = rawio.Conn(c) // as the Go client does (internal/rawio)
	}
	return &conn{c: c, fr: wire.NewFrameReader(c, 64<<20), addr: addr}, nil
}

func (c *conn) do(frame []byte, timeout time.Duration) ([]byte, error) {
	_ = c.c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.c.Write(frame); err != nil {
		return nil, err
	}
	return c.fr.ReadFrame()
}

func (c *conn) close() { _ = c.c.Close() }

func request(req *wire.Request) []byte {
	return wire.AppendFrame(nil, wire.AppendRequest(nil, req))
}

// setup registers the topics (--register) and finds where READ consumers
// start, through the Go client; the load itself goes over raw connections
// (producer, consumer), so that what is measured is the server.
func setup(ctx context.Context, cfg Config) ([]uint64, error) {
	cl, err := client.Dial(ctx, cfg.Addrs)
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	defer cl.Close()
	if cfg.Register {
		if err := register(ctx, cl, cfg); err != nil {
			return nil, err
		}
	}
	return startOffsets(ctx, cl, cfg)
}

// setupTimeout bounds each REGISTER of the run.
const setupTimeout = 30 * time.Second

// register creates the topics, through the Go client (which retries
// while, say, a cluster that just formed has not recorded its nodes).
func register(ctx context.Context, cl *client.Client, cfg Config) error {
	var opts []client.RegisterOption
	if cfg.RF > 0 {
		opts = append(opts, client.RF(cfg.RF))
	}
	for t := range cfg.Topics {
		cctx, cancel := context.WithTimeout(ctx, setupTimeout)
		err := cl.Register(cctx, cfg.topic(t), opts...)
		cancel()
		if err != nil {
			return fmt.Errorf("register %s: %w", cfg.topic(t), err)
		}
	}
	return nil
}

// startOffsets is where READ consumers of each topic begin.
func startOffsets(ctx context.Context, cl *client.Client, cfg Config) ([]uint64, error) {
	out := make([]uint64, cfg.Topics)
	if cfg.Consumers == 0 || cfg.Consume != "read" || cfg.From == "start" {
		return out, nil
	}
	if cfg.From != "end" {
		n, err := strconv.ParseUint(cfg.From, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("--from %q: want start, end or an offset", cfg.From)
		}
		for i := range out {
			out[i] = n
		}
		return out, nil
	}
	for t := range cfg.Topics {
		// a topic registered a moment ago may not report its mark yet: ask
		// again for up to markWait, each call bounded by what is left of it
		wctx, cancel := context.WithTimeout(ctx, markWait)
		var err error
		poll.Until(markWait, 50*time.Millisecond, func() bool {
			out[t], err = highWaterMark(wctx, cl, cfg.topic(t))
			return err == nil
		})
		cancel()
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// markWait is how long startOffsets waits for a topic's high-water mark.
const markWait = 10 * time.Second

// highWaterMark asks STATE for the topic's readable end.
func highWaterMark(ctx context.Context, cl *client.Client, topic string) (uint64, error) {
	st, err := cl.State(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("state %s: %w", topic, err)
	}
	if st.HighWaterMark == nil {
		return 0, fmt.Errorf("state %s: no high_water_mark (leader unreachable?)", topic)
	}
	return *st.HighWaterMark, nil
}
