package testkit

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/walrus-go/walrus/actors"
	"github.com/walrus-go/walrus/messages"
	"github.com/walrus-go/walrus/raftfsm"
	"github.com/walrus-go/walrus/testkit/simnet"
	"github.com/walrus-go/walrus/wal"
)

// Options configures one simulated run.
type Options struct {
	Seed     int64
	Profile  Profile   // used when Schedule is nil
	Schedule *Schedule // nil: Generate(Seed, Profile)
	// Plant turns on the planted bug (actors.Config.AckBeforeQuorum).
	Plant  bool
	Logger *slog.Logger // node logs; nil discards (see KeepLogs)
	// KeepLogs keeps the nodes' logs (LogLevel and above, default Info) in
	// Result.Logs when Logger is nil.
	KeepLogs bool
	LogLevel slog.Level
	// RawCrash: crash nodes with actors.Node.Crash alone (see
	// ClusterConfig.RawCrash).
	RawCrash bool
	// WallLimit bounds the real time of a run (default 2 minutes): past it
	// every goroutine's stack is written to stderr and the process exits
	// (a run that spins never lets virtual time advance).
	WallLimit time.Duration
}

// Result is what a run produced: the trace, the checker's verdict and
// counters.
type Result struct {
	Seed         int64
	Plant        bool
	Schedule     *Schedule
	ScheduleHash string
	History      *History
	Trace        []string
	TraceHash    string
	// Outcomes is what each client saw, without timing (History.Outcomes);
	// OutcomeHash its hash.
	Outcomes    []string
	OutcomeHash string
	Final       map[string][]string // topic -> entries, by offset, after healing
	FinalOK     map[string]bool     // the final read reached the end
	Replicas    []ReplicaReport
	Meta        *raftfsm.State
	Verdict     *Verdict
	Net         simnet.Stats
	Virtual     time.Duration
	Wall        time.Duration
	Problems    []string // harness-level trouble (liveness, setup)
	// Stuck names the known bug behind stuck goroutines ("" if none or
	// unknown); StuckStacks holds their stacks.
	Stuck       string
	StuckStacks string
	// Leaked: goroutines were left blocked when the run ended (a teardown
	// hung); the bubble's deadlock panic was recovered.
	Leaked bool
	// Logs holds the nodes' logs when Options.KeepLogs was set (the first
	// 16 MiB); LogLinesDropped counts the lines past that.
	Logs            *bytes.Buffer
	LogLinesDropped int
	// OffsetMismatches counts "wal: offset mismatch" log lines (KB3).
	OffsetMismatches int
	// MismatchLoop: while the cluster failed to settle, a replica kept
	// failing appends with offset mismatches (KB3).
	MismatchLoop bool
	// Refusals: nodes that refused their own disk (a WAL that does not
	// open) although the nemesis never damaged it.
	Refusals []string
	// Removed lists nodes the nemesis removed from the cluster.
	Removed []uint64
	settled bool
}

// syncBuffer keeps node logs for a run: safe for concurrent writers,
// bounded (lines past maxLogBytes are dropped), and it counts the lines
// that carry the signature of known bug KB3 as they are written.
type syncBuffer struct {
	mu       sync.Mutex
	b        *bytes.Buffer
	dropped  int
	mismatch int
}

const maxLogBytes = 16 << 20

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if bytes.Contains(p, []byte("wal: offset mismatch")) {
		s.mismatch++
	}
	if s.b.Len()+len(p) > maxLogBytes {
		s.dropped++
		return len(p), nil
	}
	return s.b.Write(p)
}

func (s *syncBuffer) counts() (mismatch, dropped int) {
	if s == nil {
		return 0, 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mismatch, s.dropped
}

// WriteArtifacts writes the run's schedule, trace, verdict, stuck stacks
// and logs into dir and returns the trace file's path.
func (r *Result) WriteArtifacts(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	base := filepath.Join(dir, fmt.Sprintf("seed-%d", r.Seed))
	var b strings.Builder
	fmt.Fprintf(&b, "# replay: %s\n# schedule %s trace %s\n# %s\n", ReplayCommand(r.Seed, r.Plant), r.ScheduleHash, r.TraceHash,
		r.Verdict.Summary())
	for _, p := range r.Problems {
		fmt.Fprintf(&b, "# problem: %s\n", p)
	}
	for _, v := range r.Verdict.Violations {
		fmt.Fprintf(&b, "# violation: %v\n", v)
	}
	for _, l := range r.Trace {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	for _, t := range sortedKeys(r.Final) {
		fmt.Fprintf(&b, "# final %s (%d): %v\n", t, len(r.Final[t]), r.Final[t])
	}
	if err := os.WriteFile(base+".trace", []byte(b.String()), 0o644); err != nil {
		return "", err
	}
	_ = os.WriteFile(base+".schedule", []byte(r.Schedule.String()), 0o644)
	if r.StuckStacks != "" {
		_ = os.WriteFile(base+".stacks", []byte(r.StuckStacks), 0o644)
	}
	if r.Logs != nil {
		_ = os.WriteFile(base+".log", r.Logs.Bytes(), 0o644)
	}
	return base + ".trace", nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ReplicaReport is one replica's copy of one sealed segment, read from its
// disk after the run.
type ReplicaReport struct {
	Node           uint64
	Topic          string
	Segment        uint64
	Base, Count    uint64 // from the metadata
	Held           uint64 // entries on disk
	SealedOnDisk   bool
	Mismatch       int64 // first offset (segment-local) whose bytes differ from the final log; -1 none
	MismatchDetail string
}

// idempotentKinds are the RPC kinds whose handlers accept a request twice
// or out of order (the network may duplicate and reorder only these).
var idempotentKinds = map[uint8]bool{
	uint8(messages.KindPing): true, uint8(messages.KindRead): true, uint8(messages.KindReplicate): true,
	uint8(messages.KindFence): true, uint8(messages.KindSync): true, uint8(messages.KindStatus): true,
}

// Failed reports whether the run found what no known bug explains: a
// broken rule (Verdict.Violations) or a liveness problem (Problems) of no
// known cause. Run does not fail its test: the caller decides (t.Error
// with Key, or go on through a batch).
func (r *Result) Failed() bool { return !r.Verdict.OK() || r.unexplainedLiveness() }

func (r *Result) unexplainedLiveness() bool {
	return len(r.Problems) > 0 && len(r.Verdict.KnownLiveness) == 0
}

// Key sums the verdict up for comparing runs: the broken rules, then
// after "|" the known bugs hit, then "|liveness" for a liveness problem of
// no known cause; "ok" for none. Two runs of a seed whose verdicts agree
// have the same key (Verdict.Summary also counts operations, which
// differ).
func (r *Result) Key() string {
	k := strings.Join(r.Verdict.Rules(), ",")
	if ids := r.Verdict.KnownIDs(); len(ids) > 0 {
		k += "|" + strings.Join(ids, ",")
	}
	if r.unexplainedLiveness() {
		k += "|liveness"
	}
	if k == "" {
		return "ok"
	}
	return k
}

// ReplayCommand is the one line that reruns a seed.
func ReplayCommand(seed int64, plant bool) string {
	s := fmt.Sprintf("go test ./testkit -run 'TestSim$' -seed %d -v", seed)
	if plant {
		s += " -plant"
	}
	return s
}

// Run runs one simulation in its own synctest bubble and checks it. t must
// be a test or subtest that may call synctest.Test (not a parallel one:
// see Seed). It does not fail t: Result.Failed and Result.Key say how the
// run went.
func Run(t *testing.T, o Options) *Result {
	t.Helper()
	dir, err := TempDataDir("walrus-sim-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	var res *Result
	wall := time.Now()
	limit := o.WallLimit
	if limit == 0 {
		limit = 2 * time.Minute
	}
	dog := time.AfterFunc(limit, func() {
		buf := make([]byte, 64<<20)
		n := runtime.Stack(buf, true)
		fmt.Fprintf(os.Stderr, "testkit: seed %d ran for %v of real time: goroutines:\n%s\n", o.Seed, limit, buf[:n])
		fmt.Fprintf(os.Stderr, "testkit: seed %d hung; replay: %s\n", o.Seed, ReplayCommand(o.Seed, o.Plant))
		os.Exit(3)
	})
	defer dog.Stop()
	func() {
		defer func() {
			if p := recover(); p != nil {
				if res == nil || !strings.Contains(fmt.Sprint(p), "blocked goroutines remain") {
					panic(p)
				}
				res.Leaked = true
				res.Problems = append(res.Problems, "liveness: goroutines were left blocked after the cluster was torn down")
			}
		}()
		synctest.Test(t, func(t *testing.T) {
			res = runBubble(t, o, dir)
		})
	}()
	res.Wall = time.Since(wall)
	res.Verdict = Check(res)
	classifyKnown(res)
	return res
}

type runner struct {
	// confirmed: the final read of a topic saw its end twice, a second
	// apart, with the sealed total covered
	confirmed map[string]bool
	// running: settle asks only that the running members be healthy (a
	// scenario may keep a node down on purpose)
	running bool
	logs    *syncBuffer
	o       Options
	s       *Schedule
	c       *Cluster
	h       *History
	res     *Result
	start   time.Time
}

func runBubble(t *testing.T, o Options, dir string) *Result {
	start := time.Now()
	Seed(t, o.Seed)
	s := o.Schedule
	if s == nil {
		p := o.Profile
		if p.Nodes == 0 {
			p = DefaultProfile()
		}
		s = Generate(o.Seed, p)
	}
	h := NewHistory(start)
	var logs *bytes.Buffer
	var sb *syncBuffer
	if o.Logger == nil && o.KeepLogs {
		logs = &bytes.Buffer{}
		sb = &syncBuffer{b: logs}
		o.Logger = slog.New(slog.NewTextHandler(sb, &slog.HandlerOptions{Level: o.LogLevel}))
	}
	res := &Result{Logs: logs, Seed: o.Seed, Plant: o.Plant, Schedule: s, ScheduleHash: s.Hash(), History: h,
		Final: map[string][]string{}, FinalOK: map[string]bool{}}
	c := NewCluster(ClusterConfig{Nodes: s.Nodes, Seed: o.Seed, DataDir: dir, Logger: o.Logger,
		AckBeforeQuorum: o.Plant, RawCrash: o.RawCrash,
		Net: simnet.Config{Seed: o.Seed, MinLatency: s.MinLat, MaxLatency: s.MaxLat, Idempotent: idempotentKinds,
			LengthFramedPorts: []string{strconv.Itoa(clientPort)}},
		Tweak: func(cfg *actors.Config) {
			cfg.MaxSegmentEntries = s.MaxSegmentEntries
			cfg.WALSetAsideCorrupt = setAsideCorrupt(o.Seed)
		}})
	r := &runner{o: o, s: s, c: c, h: h, res: res, start: start, logs: sb}
	c.Net.SetTap(r.tap)
	defer func() {
		res.OffsetMismatches, res.LogLinesDropped = sb.counts()
		for _, id := range c.IDs() {
			if c.Nodes[id].Removed {
				res.Removed = append(res.Removed, id)
			}
		}
		res.Virtual = time.Since(start)
		res.Trace = h.Trace()
		res.TraceHash = HashLines(res.Trace)
		res.Outcomes = h.Outcomes()
		res.OutcomeHash = HashLines(res.Outcomes)
		res.Net = c.Net.Stats()
	}()

	if err := c.StartAll(); err != nil {
		res.Problems = append(res.Problems, "setup: "+err.Error())
		r.finish()
		return res
	}
	if !c.WaitReady(30 * time.Second) {
		res.Problems = append(res.Problems, "setup: no raft leader with every node caught up after 30s")
		r.finish()
		return res
	}
	h.Eventf("harness", "cluster ready")
	if setAsideCorrupt(o.Seed) {
		h.Eventf("harness", "nodes set a corrupt sealed file aside (--wal-set-aside-corrupt)")
	}
	setup := NewClient(c.Net, "c0", clientAddr(1), 5*time.Second)
	for _, tp := range s.Topics {
		if !r.register(setup, tp) {
			res.Problems = append(res.Problems, "setup: could not register "+tp)
		}
	}
	setup.Close()

	stopMon := make(chan struct{})
	var monWG sync.WaitGroup
	monWG.Add(1)
	go func() {
		defer monWG.Done()
		r.monitor(stopMon)
	}()

	wlStart := time.Now()
	wlEnd := wlStart.Add(s.Workload)
	var wg sync.WaitGroup
	for _, cp := range s.Clients {
		wg.Add(1)
		go func(cp ClientPlan) {
			defer wg.Done()
			r.client(cp, wlEnd)
		}(cp)
	}
	nm := NewNemesis(c, h, s, wlStart)
	nm.Run(s.Faults, s.Workload)
	res.Refusals = nm.Refusals
	wg.Wait()
	h.Eventf("harness", "workload over")

	r.collect(s.Topics)
	close(stopMon)
	monWG.Wait()
	for _, id := range c.Up() {
		res.Meta = c.Proc(id).State()
		break
	}
	r.finish()
	r.checkReplicas()
	return res
}

// finish stops the cluster so that no goroutine is left in the bubble.
func (r *runner) finish() {
	if hung := r.c.Shutdown(true); len(hung) > 0 {
		r.stuck(fmt.Sprintf("liveness: stopping %v did not finish within a minute of virtual time", hung))
	}
}

// stuck records a liveness problem with the stacks of the bubble.
func (r *runner) stuck(problem string) {
	st := bubbleStacks()
	cause := classifyStuck(st)
	if cause != "" {
		problem += ": " + cause
		if r.res.Stuck == "" {
			r.res.Stuck = cause
		}
	}
	if r.res.StuckStacks == "" {
		r.res.StuckStacks = st
	}
	r.res.Problems = append(r.res.Problems, problem)
	r.h.Eventf("harness", "%s", problem)
}

func clientAddr(id uint64) string { return fmt.Sprintf("%s:%d", NodeHost(id), clientPort) }

func (r *runner) register(cl *Client, topic string) bool {
	for i := 0; i < 20; i++ {
		cl.Retarget(clientAddr(1 + uint64(i)%uint64(r.s.Nodes)))
		op := r.h.begin(&Op{Client: 0, Kind: OpRegister, Topic: topic, Node: 1 + uint64(i)%uint64(r.s.Nodes)})
		op.apply(cl.Do(op.Request()))
		r.h.end(op)
		if op.Status == StOK {
			return true
		}
		time.Sleep(500 * time.Millisecond)
	}
	return false
}

// tap records Replicate requests (who wrote which entries of which segment
// at which epoch) for the one-writer check.
func (r *runner) tap(e simnet.FrameEvent) {
	if !e.Request || e.Kind != uint8(messages.KindReplicate) {
		return
	}
	var req messages.ReplicateReq
	if err := messages.Decode(messages.KindReplicate, e.Body, &req); err != nil {
		return
	}
	vals := make([]string, len(req.Entries))
	for i, v := range req.Entries {
		vals[i] = string(v)
	}
	r.h.replicate(ReplicateObs{From: e.From, To: e.To, Topic: req.Topic, Segment: req.Segment, Epoch: req.Epoch,
		Leader: req.Leader, First: req.First, Values: vals})
}

// monitor samples raft leadership every 10ms of virtual time, in every
// process that runs: one being stopped gracefully may lead raft (and serve
// cursors) for a while after the harness took it out of the cluster.
func (r *runner) monitor(stop chan struct{}) {
	var lastLeader, lastTerm uint64
	for {
		select {
		case <-stop:
			return
		case <-time.After(10 * time.Millisecond):
		}
		leader, term := r.c.raftLeader(true)
		if leader != 0 && (leader != lastLeader || term != lastTerm) {
			r.h.term(leader, term)
			lastLeader, lastTerm = leader, term
		}
	}
}

// client runs one planned client until the workload ends.
func (r *runner) client(cp ClientPlan, end time.Time) {
	host := fmt.Sprintf("c%d", cp.ID)
	cl := NewClient(r.c.Net, host, clientAddr(cp.Ops[0].Node), 5*time.Second)
	defer cl.Close()
	n := uint64(r.s.Nodes)
	for _, p := range cp.Ops {
		time.Sleep(p.Think)
		if !time.Now().Before(end) {
			return
		}
		op := &Op{Client: cp.ID, Kind: p.Kind, Topic: p.Topic, Payload: p.Payload, Offset: p.Offset, Max: p.Max, Wait: p.Wait}
		node := p.Node
		cl.Retarget(clientAddr(node))
		r.h.begin(op)
		for try := uint64(0); ; try++ {
			op.Node = node
			op.Err, op.Status = "", 0
			op.apply(cl.Do(op.Request()))
			if op.Status != StFail || op.Err == "" || try+1 >= n || !isNotSent(op.Err) {
				break
			}
			// nothing was sent: try the next node at once
			node = node%n + 1
			cl.Retarget(clientAddr(node))
		}
		r.h.end(op)
	}
}

func isNotSent(msg string) bool {
	return len(msg) >= len(ErrNotSent.Error()) && msg[:len(ErrNotSent.Error())] == ErrNotSent.Error()
}

// collect ends a run (the batch's, or a scenario's check): it waits for the
// cluster to settle, reads each topic's final log and drains its shared
// cursor, and records what could not be done as problems.
func (r *runner) collect(topics []string) {
	res := r.res
	r.settle()
	for _, tp := range topics {
		res.Final[tp], res.FinalOK[tp] = r.finalLog(tp)
		if !res.FinalOK[tp] {
			res.Problems = append(res.Problems, fmt.Sprintf("liveness: the final read of %s did not reach the end", tp))
		} else if !res.settled {
			// EMPTY from every reachable node proves nothing while a member
			// is down or a segment between leaders: the rules that need the
			// whole log (lost-ack, cursor-skip, linearizable, replica
			// contents past what was read) stand down
			res.FinalOK[tp] = false
		}
	}
	for _, tp := range topics {
		if !r.drainCursor(tp) {
			res.Problems = append(res.Problems, fmt.Sprintf("liveness: draining the shared cursor of %s did not reach EMPTY", tp))
		}
	}
	if len(res.Problems) > 0 {
		r.dumpMeta()
	}
}

// settle waits until every node runs, has caught up, and every topic's
// active segment is open under a live leader.
func (r *runner) settle() {
	var why string
	m0, _ := r.logs.counts()
	ok := WaitFor(30*time.Second, func() bool {
		if len(r.c.Up()) != len(r.c.Members()) && !r.running {
			why = fmt.Sprintf("nodes up %v, members %v", r.c.Up(), r.c.Members())
			return false
		}
		if !r.c.WaitReady(0) {
			why = "no raft leader, or a node not caught up: " + r.c.Describe()
			return false
		}
		for _, id := range r.c.Up() {
			n := r.c.Proc(id)
			if n == nil {
				return false
			}
			st := n.State()
			for _, tp := range r.s.Topics {
				t := st.Topics[tp]
				if t == nil {
					continue
				}
				a := t.Active()
				if a == nil || a.State != raftfsm.SegOpen || r.c.Proc(uint64(a.Leader)) == nil {
					why = fmt.Sprintf("n%d sees %s's active segment not open under a live leader: %+v", id, tp, a)
					return false
				}
			}
		}
		return true
	})
	if !ok {
		if m, _ := r.logs.counts(); m-m0 > 1000 {
			r.res.MismatchLoop = true
			why += "; a replica kept failing offset-mismatch appends meanwhile"
		}
		r.stuck("liveness: the cluster did not settle within 30s after healing (" + why + ")")
	} else {
		r.res.settled = true
		r.h.Eventf("harness", "cluster settled")
	}
	time.Sleep(time.Second)
}

// sealedTotal is the sum of a topic's sealed counts in the raft leader's
// metadata (0 if unknown).
func (r *runner) sealedTotal(topic string) uint64 {
	l := r.c.Leader()
	if l == 0 {
		return 0
	}
	n := r.c.Proc(l)
	if n == nil {
		return 0
	}
	if t := n.State().Topics[topic]; t != nil {
		return t.SealedTotal()
	}
	return 0
}

// dumpMeta records every member's view of the topics' last segments.
func (r *runner) dumpMeta() {
	for _, id := range r.c.Members() {
		n := r.c.Proc(id)
		if n == nil {
			r.h.Eventf("harness", "meta n%d: down", id)
			continue
		}
		st := n.State()
		for _, name := range sortedKeys(st.Topics) {
			t := st.Topics[name]
			segs := t.Segments
			if len(segs) > 3 {
				segs = segs[len(segs)-3:]
			}
			var b strings.Builder
			for _, sg := range segs {
				fmt.Fprintf(&b, " [%d leader=n%d replicas=%v epoch=%d %v count=%d base=%d]", sg.ID, sg.Leader, sg.Replicas,
					sg.Epoch, sg.State, sg.Count, sg.Base)
			}
			r.h.Eventf("harness", "meta n%d (applied %d, term %d, leader=%v) %s:%s", id, st.LastApplied, n.RaftTerm(),
				n.IsRaftLeader(), name, b.String())
		}
	}
}

// finalLog reads the whole topic by offset, asking every node before it
// believes an EMPTY.
func (r *runner) finalLog(topic string) ([]string, bool) {
	cl := NewClient(r.c.Net, "c0", clientAddr(1), 5*time.Second)
	defer cl.Close()
	var log []string
	members := r.c.Members()
	n := len(members)
	k := 0
	failures, empties, waits := 0, 0, 0
	limit := 40
	if !r.res.settled {
		limit = 2 * n
	}
	for failures < limit {
		node := members[k%n]
		cl.Retarget(clientAddr(node))
		op := r.h.begin(&Op{Client: 0, Kind: OpRead, Topic: topic, Offset: uint64(len(log)), Max: 64, Node: node})
		op.apply(cl.Do(op.Request()))
		r.h.end(op)
		switch {
		case op.Status == StOK && op.First == uint64(len(log)) && len(op.Values) > 0:
			log = append(log, op.Values...)
			failures, empties = 0, 0
			delete(r.confirmed, topic)
		case op.Status == StEmpty:
			empties++
			if empties < n {
				k++
				continue
			}
			// every node says the log ends here; but a segment being
			// sealed (a write whose outcome was unknown may be in it) can
			// still extend what is readable: wait until the raft leader's
			// sealed total is covered and the answer holds a moment later
			if wait := r.lateWritesEnd() - r.h.now(); wait > 0 {
				// a write may still land (below): EMPTY is not final yet
				empties = 0
				time.Sleep(wait)
				continue
			}
			if sealed := r.sealedTotal(topic); sealed > uint64(len(log)) || !r.confirmed[topic] {
				if r.confirmed == nil {
					r.confirmed = map[string]bool{}
				}
				r.confirmed[topic] = sealed <= uint64(len(log))
				if waits++; waits > 30 {
					r.res.Problems = append(r.res.Problems, fmt.Sprintf(
						"liveness: %s: sealed segments count %d entries, but reads end at %d", topic, sealed, len(log)))
					return log, false
				}
				empties = 0
				time.Sleep(time.Second)
				continue
			}
			return log, true
		default:
			failures++
			k++
			time.Sleep(250 * time.Millisecond)
		}
	}
	return log, false
}

// lateWritesEnd is when the last write sent can no longer land (run
// time). A write whose client gave up is still retried by its entry node
// for RequestTimeout, and once appended it may wait out a replication
// batch or answer the network dropped (actors.ReplicateCallTimeout) before a
// quorum acknowledges it and it becomes readable (seed 86 once read the
// final log at 15 s, and a write sent at 11 s appeared at 17 s).
func (r *runner) lateWritesEnd() time.Duration {
	last, ok := r.h.lastWriteCall()
	if !ok {
		return 0
	}
	var rt time.Duration
	for _, id := range r.c.Members() {
		if nd := r.c.Nodes[id]; nd != nil {
			rt = max(rt, nd.Cfg.RequestTimeout)
		}
	}
	return last + rt + actors.ReplicateCallTimeout + time.Second
}

// drainCursor GETs until every node has answered EMPTY in a row.
func (r *runner) drainCursor(topic string) bool {
	cl := NewClient(r.c.Net, "c0", clientAddr(1), 5*time.Second)
	defer cl.Close()
	members := r.c.Members()
	n := len(members)
	k := 0
	failures, empties := 0, 0
	limit := 40
	if !r.res.settled {
		limit = 2 * n
	}
	for i := 0; i < 100000 && failures < limit; i++ {
		node := members[k%n]
		cl.Retarget(clientAddr(node))
		op := r.h.begin(&Op{Client: 0, Kind: OpGet, Topic: topic, Node: node})
		op.apply(cl.Do(op.Request()))
		r.h.end(op)
		switch op.Status {
		case StOK:
			empties = 0
		case StEmpty:
			empties++
			if empties >= n {
				return true
			}
			k++
		default:
			failures++
			k++
			time.Sleep(250 * time.Millisecond)
		}
	}
	return false
}

// checkReplicas opens every node's WAL after the cluster stopped and
// compares each replica of each sealed segment with the final log.
func (r *runner) checkReplicas() {
	st := r.res.Meta
	if st == nil {
		return
	}
	topics := make([]string, 0, len(st.Topics))
	for name := range st.Topics {
		topics = append(topics, name)
	}
	sort.Strings(topics)
	for _, id := range r.c.Members() {
		nd := r.c.Nodes[id]
		w, err := wal.Open(filepath.Join(nd.Cfg.NodeDir(), "wal"), wal.Options{FS: walFS{nd.FS}})
		if err != nil {
			r.res.Problems = append(r.res.Problems, fmt.Sprintf("replica check: open WAL of n%d: %v", id, err))
			continue
		}
		for _, name := range topics {
			final := r.res.Final[name]
			for _, sg := range st.Topics[name].Segments {
				if !sg.Sealed() || !containsNode(sg.Replicas, id) {
					continue
				}
				rep := ReplicaReport{Node: id, Topic: name, Segment: sg.ID, Base: sg.Base, Count: sg.Count, Mismatch: -1}
				key := wal.SegmentKey{Topic: name, Segment: sg.ID}
				if info, err := w.Info(key); err == nil {
					rep.Held, rep.SealedOnDisk = info.Count, info.Sealed
					ents, err := w.Read(key, 0, int(min(info.Count, sg.Count)), 64<<20)
					if err != nil {
						rep.MismatchDetail = "read: " + err.Error()
					}
					for i, e := range ents {
						off := sg.Base + uint64(i)
						if off >= uint64(len(final)) && !r.res.FinalOK[name] {
							break // the final read did not reach this far
						}
						if off >= uint64(len(final)) || string(e) != final[off] {
							rep.Mismatch = int64(i)
							want := "<past the end of the final log>"
							if off < uint64(len(final)) {
								want = final[off]
							}
							rep.MismatchDetail = fmt.Sprintf("offset %d holds %q, the final log %s", off, e, want)
							break
						}
					}
				}
				r.res.Replicas = append(r.res.Replicas, rep)
			}
		}
		_ = w.Close()
	}
}

func containsNode(ids []raftfsm.NodeID, id uint64) bool {
	for _, x := range ids {
		if uint64(x) == id {
			return true
		}
	}
	return false
}

// setAsideCorrupt: the nodes of even seeds start with WALSetAsideCorrupt,
// so that a corrupted sealed file is set aside and copied back from the
// other replicas; odd seeds keep the default, where the node refuses its
// disk and is replaced. Decided outside the schedule, which stays the
// same for every seed.
func setAsideCorrupt(seed int64) bool { return seed%2 == 0 }
