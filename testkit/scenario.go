package testkit

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/walrus-go/walrus/actors"
	"github.com/walrus-go/walrus/raftfsm"
	"github.com/walrus-go/walrus/testkit/simnet"
)

// A scenario is a datadriven script (testdata/scenarios/*.txt) that drives
// one simulated cluster step by step, inside one synctest bubble. Each
// command prints only what the protocol determines (counts, states, which
// entries a read returned, the checker's verdict), never timings, so that
// the golden output holds although runs are not bit-for-bit identical
// (docs/testing.md). Commands are listed in scenarioCommands; each handler
// has an example.
type scenario struct {
	t      *testing.T
	dir    string
	seed   int64
	c      *Cluster
	r      *runner
	logs   *syncBuffer
	topics []string
	seq    map[string]int      // payload counter per topic
	cls    map[uint64]*Client  // a client per node it talks to
	names  map[string]uint64   // $name -> node id (set with as=name)
	async  map[string]*asyncOp // requests in flight (async=name), by name
	// the raft leadership monitor (the checker's at-least-once window)
	stopMon, monDone chan struct{}
}

// RunScenario runs one script file. t must be a test that may call
// synctest.Test; -rewrite (datadriven's flag) rewrites the expectations.
func RunScenario(t *testing.T, path string) {
	dir, err := TempDataDir("walrus-scenario-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	synctest.Test(t, func(t *testing.T) {
		sc := &scenario{t: t, dir: dir, seed: 1, seq: map[string]int{}, cls: map[uint64]*Client{},
			names: map[string]uint64{}, async: map[string]*asyncOp{}}
		Seed(t, sc.seed)
		defer sc.close()
		datadriven.RunTest(t, path, sc.handle)
	})
}

type scenarioCmd struct {
	run func(sc *scenario, d *datadriven.TestData) string
}

var scenarioCommands map[string]scenarioCmd

func init() {
	scenarioCommands = map[string]scenarioCmd{
		"cluster":                  {(*scenario).cmdCluster},
		"register":                 {(*scenario).cmdRegister},
		"put":                      {(*scenario).cmdPut},
		"put-many":                 {(*scenario).cmdPutMany},
		"replicate-sends":          {(*scenario).cmdReplicateSends},
		"get":                      {(*scenario).cmdGet},
		"await":                    {(*scenario).cmdAwait},
		"hang-up":                  {(*scenario).cmdHangUp},
		"read":                     {(*scenario).cmdRead},
		"state":                    {(*scenario).cmdState},
		"crash":                    {(*scenario).cmdCrash},
		"stop":                     {(*scenario).cmdStop},
		"restart":                  {(*scenario).cmdRestart},
		"partition":                {(*scenario).cmdPartition},
		"heal":                     {(*scenario).cmdHeal},
		"transfer-raft-leadership": {(*scenario).cmdTransferRaftLeadership},
		"raft-leader":              {(*scenario).cmdRaftLeader},
		"hold-metadata":            {(*scenario).cmdHoldMetadata},
		"release-metadata":         {(*scenario).cmdReleaseMetadata},
		"slow-link":                {(*scenario).cmdSlowLink},
		"hold-syncs":               {(*scenario).cmdHoldSyncs},
		"disk-full":                {(*scenario).cmdDiskFull},
		"free-disk":                {(*scenario).cmdFreeDisk},
		"remove":                   {(*scenario).cmdRemove},
		"add-node":                 {(*scenario).cmdAddNode},
		"sleep":                    {(*scenario).cmdSleep},
		"wait-settled":             {(*scenario).cmdWaitSettled},
		"wait-sealed":              {(*scenario).cmdWaitSealed},
		"wait-replicated":          {(*scenario).cmdWaitReplicated},
		"log-contains":             {(*scenario).cmdLogContains},
		"check":                    {(*scenario).cmdCheck},
		"known-bugs":               {(*scenario).cmdKnownBugs},
		"cursor-status":            {(*scenario).cmdCursorStatus},
	}
}

func (sc *scenario) handle(t *testing.T, d *datadriven.TestData) string {
	cmd, ok := scenarioCommands[d.Cmd]
	if !ok {
		names := make([]string, 0, len(scenarioCommands))
		for n := range scenarioCommands {
			names = append(names, n)
		}
		sort.Strings(names)
		d.Fatalf(t, "unknown command %q; commands: %s", d.Cmd, strings.Join(names, ", "))
	}
	if d.Cmd != "cluster" && sc.c == nil {
		d.Fatalf(t, "%s: start a cluster first", d.Cmd)
	}
	out := cmd.run(sc, d)
	if out != "" && !strings.HasSuffix(out, "\n") {
		out += "\n"
	}
	return out
}

func (sc *scenario) close() {
	if sc.stopMon != nil {
		close(sc.stopMon)
		<-sc.monDone
	}
	for _, cl := range sc.cls {
		cl.Close()
	}
	if sc.c != nil {
		if hung := sc.c.Shutdown(false); len(hung) > 0 {
			sc.t.Logf("teardown of %v hung", hung)
			return
		}
	}
	for name := range sc.async {
		sc.t.Errorf("async=%s: sent, never awaited", name)
	}
}

// ---- arguments ----

func (sc *scenario) arg(d *datadriven.TestData, key, def string) string {
	for _, a := range d.CmdArgs {
		if a.Key == key {
			if len(a.Vals) == 0 {
				return "true"
			}
			return strings.Join(a.Vals, ",")
		}
	}
	return def
}

func (sc *scenario) intArg(d *datadriven.TestData, key string, def int) int {
	v := sc.arg(d, key, "")
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		d.Fatalf(sc.t, "%s=%q: want an integer", key, v)
	}
	return n
}

// topicArg is the first positional argument (a topic) or topic=.
func (sc *scenario) topicArg(d *datadriven.TestData) string {
	if v := sc.arg(d, "topic", ""); v != "" {
		return v
	}
	for _, a := range d.CmdArgs {
		if len(a.Vals) == 0 && a.Key != "" && !strings.Contains(a.Key, "=") {
			return a.Key
		}
	}
	if len(sc.topics) > 0 {
		return sc.topics[0]
	}
	d.Fatalf(sc.t, "%s: which topic?", d.Cmd)
	return ""
}

// node resolves a node spec: 2 (or n2), $name, raft-leader, leader(t),
// leader(t/3), follower(t), any (a running member).
func (sc *scenario) node(d *datadriven.TestData, spec string) uint64 {
	spec = strings.TrimSpace(spec)
	if strings.HasPrefix(spec, "$") {
		id, ok := sc.names[spec[1:]]
		if !ok {
			d.Fatalf(sc.t, "no node named %s", spec)
		}
		return id
	}
	if id, err := strconv.ParseUint(strings.TrimPrefix(spec, "n"), 10, 64); err == nil {
		return id
	}
	switch {
	case spec == "raft-leader":
		if l := sc.c.Leader(); l != 0 {
			return l
		}
		d.Fatalf(sc.t, "no raft leader now")
	case spec == "any":
		for _, id := range sc.c.Members() {
			if sc.c.Proc(id) != nil {
				return id
			}
		}
		d.Fatalf(sc.t, "no member is running")
	case strings.HasPrefix(spec, "leader(") || strings.HasPrefix(spec, "follower("):
		inner := spec[strings.Index(spec, "(")+1 : len(spec)-1]
		topic, segS, hasSeg := strings.Cut(inner, "/")
		sg := sc.segment(d, topic, segS, hasSeg)
		if strings.HasPrefix(spec, "leader(") {
			return uint64(sg.Leader)
		}
		for _, r := range sg.Replicas {
			if r != sg.Leader {
				return uint64(r)
			}
		}
		d.Fatalf(sc.t, "%s: segment %d has no follower", spec, sg.ID)
	}
	d.Fatalf(sc.t, "bad node %q", spec)
	return 0
}

// meta returns the raft leader's metadata (else a running member's), or
// with a node spec via that node's own view. (Not the command's via=: a
// spec such as leader(t) is resolved with the raft leader's view.)
func (sc *scenario) meta(d *datadriven.TestData, via string) *raftfsm.State {
	if via != "" {
		// that node's own view, however far behind
		if n := sc.c.Proc(sc.node(d, via)); n != nil {
			return n.State()
		}
		d.Fatalf(sc.t, "n%d is not running", sc.node(d, via))
	}
	if l := sc.c.Leader(); l != 0 {
		if n := sc.c.Proc(l); n != nil {
			return n.State()
		}
	}
	for _, id := range sc.c.Members() {
		if n := sc.c.Proc(id); n != nil {
			return n.State()
		}
	}
	d.Fatalf(sc.t, "no member is running")
	return nil
}

func (sc *scenario) segment(d *datadriven.TestData, topic, segS string, hasSeg bool) *raftfsm.Segment {
	t := sc.meta(d, "").Topics[topic]
	if t == nil {
		d.Fatalf(sc.t, "unknown topic %s", topic)
	}
	if !hasSeg {
		return t.Active()
	}
	id, err := strconv.ParseUint(segS, 10, 64)
	if err != nil {
		d.Fatalf(sc.t, "bad segment %q", segS)
	}
	sg := t.SegmentByID(id)
	if sg == nil {
		d.Fatalf(sc.t, "%s has no segment %d", topic, id)
	}
	return sg
}

// remember stores a resolved node under as=name.
func (sc *scenario) remember(d *datadriven.TestData, id uint64) {
	if name := sc.arg(d, "as", ""); name != "" {
		sc.names[name] = id
	}
}

// dropClient closes the scenario's connection to node id, whose process
// ends or starts: the next request through it dials the running process,
// instead of going out on a connection to one that is gone (an "unknown"
// outcome a script would have to expect).
func (sc *scenario) dropClient(id uint64) {
	if cl := sc.cls[id]; cl != nil {
		cl.Close()
	}
}

func (sc *scenario) client(id uint64) *Client {
	cl := sc.cls[id]
	if cl == nil {
		cl = NewClient(sc.c.Net, fmt.Sprintf("c%d", id), clientAddr(id), 5*time.Second)
		sc.cls[id] = cl
	}
	return cl
}

// ---- cluster ----

// cmdCluster starts a cluster: node 1 bootstraps it, the others join.
// wal-prealloc= sets the nodes' WAL preallocation step (0: append without;
// default the testkit's 4096).
//
// Example:
//
//	cluster nodes=3 segment-entries=5
//	----
//	3 nodes up, n1 leads raft
func (sc *scenario) cmdCluster(d *datadriven.TestData) string {
	n := sc.intArg(d, "nodes", 3)
	entries := uint64(sc.intArg(d, "segment-entries", 5))
	sc.logs = &syncBuffer{b: &bytes.Buffer{}}
	lg := slog.New(slog.NewTextHandler(sc.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	sc.c = NewCluster(ClusterConfig{Nodes: n, Seed: sc.seed, DataDir: sc.dir, Logger: lg, Joined: true,
		AckBeforeQuorum: sc.arg(d, "plant", "") != "",
		Net: simnet.Config{Seed: sc.seed, MinLatency: time.Millisecond, MaxLatency: 2 * time.Millisecond,
			Idempotent: idempotentKinds, LengthFramedPorts: []string{strconv.Itoa(clientPort)}},
		Tweak: func(cfg *actors.Config) {
			cfg.MaxSegmentEntries = entries
			if v := sc.arg(d, "wal-prealloc", ""); v != "" {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil || n < 0 {
					d.Fatalf(sc.t, "cluster wal-prealloc=%q: want a byte count", v)
				}
				cfg.WALPrealloc = n
			}
			if v := sc.arg(d, "trailing-replica-wait", ""); v != "" {
				w, err := time.ParseDuration(v)
				if err != nil {
					d.Fatalf(sc.t, "cluster trailing-replica-wait=%q: want a duration", v)
				}
				cfg.TrailingReplicaWait = actors.TrailingReplicaWaitOf(w)
			}
		}})
	h := NewHistory(time.Now())
	sc.r = &runner{c: sc.c, h: h, s: &Schedule{Nodes: n}, logs: sc.logs,
		res: &Result{History: h, Final: map[string][]string{}, FinalOK: map[string]bool{}, Logs: sc.logs.b}}
	sc.c.Net.SetTap(sc.r.tap)
	if err := sc.c.Start(1); err != nil {
		d.Fatalf(sc.t, "start n1: %v", err)
	}
	if !WaitFor(10*time.Second, func() bool { return sc.c.Leader() == 1 }) {
		d.Fatalf(sc.t, "n1 did not become leader")
	}
	for id := uint64(2); id <= uint64(n); id++ {
		if err := sc.c.Start(id); err != nil {
			d.Fatalf(sc.t, "start n%d: %v", id, err)
		}
	}
	if !sc.c.WaitReady(30*time.Second) || !WaitFor(30*time.Second, func() bool {
		return sc.voters() == n && sc.raftVoters(1) == n
	}) {
		d.Fatalf(sc.t, "cluster not ready: %s", sc.c.Describe())
	}
	sc.stopMon = make(chan struct{})
	sc.monDone = make(chan struct{})
	go func() {
		defer close(sc.monDone)
		sc.r.monitor(sc.stopMon)
	}()
	return fmt.Sprintf("%d nodes up, all raft voters, n%d leads raft", n, sc.c.Leader())
}

// raftVoters asks node id (METRICS) how many raft voters there are.
func (sc *scenario) raftVoters(id uint64) int {
	b, err := sc.client(id).Do([]byte("METRICS"))
	if err != nil {
		return 0
	}
	var m struct {
		Membership struct {
			Membership struct {
				Configs [][]uint64 `json:"configs"`
			} `json:"membership"`
		} `json:"membership_config"`
	}
	if json.Unmarshal(b, &m) != nil || len(m.Membership.Membership.Configs) == 0 {
		return 0
	}
	return len(m.Membership.Membership.Configs[0])
}

// voters counts the members every running node's metadata marks live.
func (sc *scenario) voters() int {
	n := 0
	for _, id := range sc.c.Members() {
		p := sc.c.Proc(id)
		if p == nil {
			continue
		}
		if ni, ok := p.State().Nodes[raftfsm.NodeID(id)]; ok && ni.Live && p.CaughtUp() {
			n++
		}
	}
	return n
}

// cmdCrash cuts a node's power: unsynced writes are lost; keep=half lets
// half of each file's unsynced bytes reach the disk (a torn write).
//
// Example:
//
//	crash node=leader(t/1) as=old
//	----
//	crashed n2
func (sc *scenario) cmdCrash(d *datadriven.TestData) string {
	id := sc.node(d, sc.arg(d, "node", ""))
	sc.remember(d, id)
	var out strings.Builder
	fmt.Fprintf(&out, "crashed n%d", id)
	if sc.arg(d, "keep", "") == "half" {
		un := sc.c.Nodes[id].FS.UnsyncedBytes()
		sc.c.CrashKeeping(id, func(n int) int { return n / 2 })
		if un > 0 {
			out.WriteString(" with unsynced writes: half of their bytes reached the disk")
		} else {
			out.WriteString(" (it had no unsynced writes)")
		}
	} else {
		sc.c.Crash(id, false)
	}
	sc.dropClient(id)
	sc.r.h.Eventf("scenario", "crash n%d", id)
	return out.String()
}

// cmdStop stops a node gracefully.
//
// Example:
//
//	stop node=2
//	----
//	stopped n2
func (sc *scenario) cmdStop(d *datadriven.TestData) string {
	id := sc.node(d, sc.arg(d, "node", ""))
	sc.remember(d, id)
	sc.c.Stop(id)
	sc.c.Wait(id)
	sc.dropClient(id)
	sc.r.h.Eventf("scenario", "stop n%d", id)
	return fmt.Sprintf("stopped n%d", id)
}

// cmdRestart starts a stopped node again (node=all: every member down).
//
// Example:
//
//	restart node=$old
//	----
//	restarted n2
func (sc *scenario) cmdRestart(d *datadriven.TestData) string {
	spec := sc.arg(d, "node", "all")
	var ids []uint64
	if spec == "all" {
		for _, id := range sc.c.Members() {
			if sc.c.Proc(id) == nil {
				ids = append(ids, id)
			}
		}
	} else {
		ids = []uint64{sc.node(d, spec)}
	}
	var out []string
	for _, id := range ids {
		sc.c.Nodes[id].FS.ReleaseSyncs()
		sc.dropClient(id)
		if err := sc.c.Start(id); err != nil {
			out = append(out, fmt.Sprintf("n%d refused to start: %s", id, shortErr(err)))
			continue
		}
		sc.r.h.Eventf("scenario", "restart n%d", id)
		out = append(out, fmt.Sprintf("restarted n%d", id))
	}
	if len(out) == 0 {
		return "nothing to restart"
	}
	return strings.Join(out, "\n")
}

// cmdPartition cuts a node off from the other nodes (clients still reach
// it).
//
// Example:
//
//	partition node=leader(t)
//	----
//	n2 cut off from the other nodes
func (sc *scenario) cmdPartition(d *datadriven.TestData) string {
	id := sc.node(d, sc.arg(d, "node", ""))
	sc.remember(d, id)
	sc.c.Net.Partition([]string{NodeHost(id)}, sc.c.Hosts())
	sc.r.h.Eventf("scenario", "partition n%d", id)
	return fmt.Sprintf("n%d cut off from the other nodes", id)
}

// cmdTransferRaftLeadership has the raft leader hand leadership to the
// node to= (raft's leadership transfer) and waits until that node leads.
//
// Example:
//
//	transfer-raft-leadership to=3
//	----
//	raft leader n1 -> n3
func (sc *scenario) cmdTransferRaftLeadership(d *datadriven.TestData) string {
	to := sc.node(d, sc.arg(d, "to", ""))
	from := sc.node(d, "raft-leader")
	n := sc.c.Proc(from)
	if n == nil {
		d.Fatalf(sc.t, "raft leader n%d is not running", from)
	}
	if err := n.TransferRaftLeadership(to); err != nil {
		return fmt.Sprintf("transfer n%d -> n%d failed: %v", from, to, err)
	}
	if !WaitFor(10*time.Second, func() bool { return sc.c.Leader() == to }) {
		return fmt.Sprintf("n%d does not lead raft after the transfer (leader: n%d)", to, sc.c.Leader())
	}
	sc.r.h.Eventf("scenario", "raft leadership n%d -> n%d", from, to)
	return fmt.Sprintf("raft leader n%d -> n%d", from, to)
}

// cmdRaftLeader says which node leads raft, waiting up to within (virtual
// time, default 0: now) for one to; unnamed says only that one does (when
// which of two equally placed followers wins is up to timing), and
// as=name remembers it.
//
// Example:
//
//	raft-leader within=50ms
//	----
//	n2 leads raft
func (sc *scenario) cmdRaftLeader(d *datadriven.TestData) string {
	within, err := time.ParseDuration(sc.arg(d, "within", "0s"))
	if err != nil {
		d.Fatalf(sc.t, "within: %v", err)
	}
	var leader uint64
	WaitFor(within, func() bool { leader = sc.c.Leader(); return leader != 0 })
	if leader == 0 {
		return fmt.Sprintf("no raft leader within %v", within)
	}
	sc.remember(d, leader)
	if sc.arg(d, "unnamed", "") != "" {
		return "a node leads raft"
	}
	return fmt.Sprintf("n%d leads raft", leader)
}

// cmdHoldMetadata makes a node's actors keep the metadata they have (its
// root fans no change out): what they see when the node applies raft
// entries late.
//
// Example:
//
//	hold-metadata node=raft-leader
//	----
//	n1: metadata held
func (sc *scenario) cmdHoldMetadata(d *datadriven.TestData) string {
	return sc.holdMetadata(d, true, "held")
}

// cmdReleaseMetadata ends hold-metadata: the node's actors get the newest
// metadata at once.
//
// Example:
//
//	release-metadata node=raft-leader
//	----
//	n1: metadata released
func (sc *scenario) cmdReleaseMetadata(d *datadriven.TestData) string {
	return sc.holdMetadata(d, false, "released")
}

func (sc *scenario) holdMetadata(d *datadriven.TestData, hold bool, what string) string {
	id := sc.node(d, sc.arg(d, "node", ""))
	n := sc.c.Proc(id)
	if n == nil {
		d.Fatalf(sc.t, "n%d is not running", id)
	}
	n.HoldMetadata(hold)
	sc.r.h.Eventf("scenario", "n%d metadata %s", id, what)
	return fmt.Sprintf("n%d: metadata %s", id, what)
}

// cmdHeal removes every network cut.
//
// Example:
//
//	heal
//	----
//	healed
func (sc *scenario) cmdHeal(d *datadriven.TestData) string {
	sc.c.Net.Heal()
	sc.r.h.Eventf("scenario", "heal")
	return "healed"
}

// cmdSlowLink adds latency to everything two nodes send each other (raft
// and node-to-node RPC alike), both ways; extra=0 removes it. A node behind
// a slow link applies the metadata late.
//
// Example:
//
//	slow-link a=raft-leader b=3 extra=1s
//	----
//	n1<->n3: +1s each way
func (sc *scenario) cmdSlowLink(d *datadriven.TestData) string {
	a := sc.node(d, sc.arg(d, "a", ""))
	b := sc.node(d, sc.arg(d, "b", ""))
	extra, err := time.ParseDuration(sc.arg(d, "extra", ""))
	if err != nil {
		d.Fatalf(sc.t, "slow-link extra=: %v", err)
	}
	sc.c.Net.SetSlow(NodeHost(a), NodeHost(b), extra)
	sc.c.Net.SetSlow(NodeHost(b), NodeHost(a), extra)
	sc.r.h.Eventf("scenario", "slow link n%d<->n%d +%v", a, b, extra)
	if extra <= 0 {
		return fmt.Sprintf("n%d<->n%d: normal", a, b)
	}
	return fmt.Sprintf("n%d<->n%d: +%v each way", a, b, extra)
}

// cmdHoldSyncs makes a node's fsyncs hang (writes go on): what it writes
// stays unsynced until the node restarts.
//
// Example:
//
//	hold-syncs node=follower(t) as=slow
//	----
//	n3: fsyncs hang
func (sc *scenario) cmdHoldSyncs(d *datadriven.TestData) string {
	id := sc.node(d, sc.arg(d, "node", ""))
	sc.remember(d, id)
	sc.c.Nodes[id].FS.HoldSyncs()
	return fmt.Sprintf("n%d: fsyncs hang", id)
}

// cmdDiskFull fills a node's disk: every later write to it fails with
// ENOSPC until free-disk.
//
// Example:
//
//	disk-full node=leader(t) as=full
//	----
//	n1: disk full
func (sc *scenario) cmdDiskFull(d *datadriven.TestData) string {
	id := sc.node(d, sc.arg(d, "node", ""))
	sc.remember(d, id)
	fs := sc.c.Nodes[id].FS
	fs.SetQuota(max(fs.Used(), 1)) // 0 would mean no limit
	return fmt.Sprintf("n%d: disk full", id)
}

// cmdFreeDisk lifts disk-full.
//
// Example:
//
//	free-disk node=$full
//	----
//	n1: disk has room
func (sc *scenario) cmdFreeDisk(d *datadriven.TestData) string {
	id := sc.node(d, sc.arg(d, "node", ""))
	sc.c.Nodes[id].FS.SetQuota(0)
	return fmt.Sprintf("n%d: disk has room", id)
}

// cmdRemove takes a node out of the cluster for good (the operator's
// remove-node), stopping it first if it runs.
//
// Example:
//
//	remove node=3
//	----
//	removed n3
func (sc *scenario) cmdRemove(d *datadriven.TestData) string {
	id := sc.node(d, sc.arg(d, "node", ""))
	sc.remember(d, id)
	if sc.c.Proc(id) != nil {
		sc.c.Stop(id)
		sc.c.Wait(id)
	}
	var err error
	for try := 0; try < 20; try++ {
		if err = sc.c.Remove(id); err == nil {
			break
		}
		time.Sleep(time.Second)
	}
	if err != nil {
		return fmt.Sprintf("remove n%d failed: %v", id, err)
	}
	sc.r.h.Eventf("scenario", "remove n%d", id)
	return fmt.Sprintf("removed n%d", id)
}

// cmdAddNode adds a node with a fresh id that joins the cluster.
//
// Example:
//
//	add-node
//	----
//	n4 joined
func (sc *scenario) cmdAddNode(d *datadriven.TestData) string {
	id := sc.c.AddNode()
	sc.remember(d, id)
	if err := sc.c.Start(id); err != nil {
		return fmt.Sprintf("n%d did not start: %v", id, err)
	}
	if !WaitFor(30*time.Second, func() bool { p := sc.c.Proc(id); return p != nil && p.CaughtUp() }) {
		return fmt.Sprintf("n%d did not catch up", id)
	}
	sc.r.h.Eventf("scenario", "add n%d", id)
	return fmt.Sprintf("n%d joined", id)
}

// cmdSleep lets virtual time pass.
//
// Example:
//
//	sleep 2s
//	----
func (sc *scenario) cmdSleep(d *datadriven.TestData) string {
	dur := time.Second
	for _, a := range d.CmdArgs {
		if v, err := time.ParseDuration(a.Key); err == nil {
			dur = v
		}
	}
	time.Sleep(dur)
	return ""
}

// cmdWaitSettled waits until every member runs, has caught up, and every
// topic's active segment is open under a running leader.
//
// Example:
//
//	wait-settled
//	----
//	settled
func (sc *scenario) cmdWaitSettled(d *datadriven.TestData) string {
	sc.r.s.Topics = sc.topics
	sc.r.res.Problems = nil
	sc.r.running = true
	sc.r.settle()
	sc.r.running = false
	if len(sc.r.res.Problems) > 0 {
		p := sc.r.res.Problems[0]
		if i := strings.Index(p, " ("); i >= 0 {
			p = p[:i]
		}
		return "not settled: " + p
	}
	return "settled"
}

// cmdWaitSealed waits (up to 30s) until a segment is sealed.
//
// Example:
//
//	wait-sealed t/1
//	----
//	t/1 sealed with 5 entries
func (sc *scenario) cmdWaitSealed(d *datadriven.TestData) string {
	topic, segS, _ := strings.Cut(d.CmdArgs[0].Key, "/")
	var sg *raftfsm.Segment
	ok := WaitFor(30*time.Second, func() bool {
		sg = sc.segment(d, topic, segS, true)
		return sg.Sealed()
	})
	if !ok {
		return fmt.Sprintf("%s/%s not sealed after 30s: %v", topic, segS, sg.State)
	}
	return fmt.Sprintf("%s/%s sealed with %d entries", topic, segS, sg.Count)
}

// cmdWaitReplicated waits (up to 30s) until every sealed segment of a
// topic lists only current members, as many as its replication factor
// allows (the live members, at most RF), and says which do not.
//
// Example:
//
//	wait-replicated t
//	----
//	t: every sealed segment has 3 replicas, all members
func (sc *scenario) cmdWaitReplicated(d *datadriven.TestData) string {
	topic := sc.topicArg(d)
	var short []string
	ok := WaitFor(30*time.Second, func() bool {
		st := sc.meta(d, "")
		t := st.Topics[topic]
		short = short[:0]
		want := min(t.RF, len(sc.c.Members()))
		for _, sg := range t.Segments {
			if !sg.Sealed() {
				continue
			}
			n := 0
			for _, r := range sg.Replicas {
				if _, ok := st.Nodes[r]; ok {
					n++
				}
			}
			if n < want {
				short = append(short, fmt.Sprintf("%s/%d has %d", topic, sg.ID, n))
			}
		}
		return len(short) == 0
	})
	if ok {
		return fmt.Sprintf("%s: every sealed segment has %d replicas, all members", topic, min(sc.meta(d, "").Topics[topic].RF, len(sc.c.Members())))
	}
	return "after 30s: " + strings.Join(short, ", ")
}

// cmdLogContains reports whether a node logged a line containing text
// since it last started.
//
// Example:
//
//	log-contains node=$slow
//	cutting torn tail
//	----
//	n3 logged "cutting torn tail": yes
func (sc *scenario) cmdLogContains(d *datadriven.TestData) string {
	id := sc.node(d, sc.arg(d, "node", ""))
	text := sc.arg(d, "text", "")
	if d.Input != "" {
		text = strings.TrimSpace(d.Input)
	}
	found := false
	tag := []byte(fmt.Sprintf("node=%d ", id))
	for _, l := range bytes.Split(sc.logs.snapshot(), []byte("\n")) {
		if bytes.Contains(l, tag) && bytes.Contains(l, []byte(text)) {
			found = true
		}
	}
	yes := "no"
	if found {
		yes = "yes"
	}
	return fmt.Sprintf("n%d logged %q: %s", id, text, yes)
}

func (s *syncBuffer) snapshot() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// ---- clients ----

// cmdRegister registers a topic (through node 1 unless via= says).
//
// Example:
//
//	register t
//	----
//	ok
func (sc *scenario) cmdRegister(d *datadriven.TestData) string {
	topic := sc.topicArg(d)
	via := sc.node(d, sc.arg(d, "via", "any"))
	op := sc.r.h.begin(&Op{Client: int(via), Kind: OpRegister, Topic: topic, Node: via})
	op.apply(sc.client(via).Do(op.Request()))
	sc.r.h.end(op)
	if op.Status == StOK && !contains(sc.topics, topic) {
		sc.topics = append(sc.topics, topic)
	}
	return statusText(op)
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func statusText(o *Op) string {
	switch o.Status {
	case StOK:
		return "ok"
	case StEmpty:
		return "EMPTY"
	}
	return o.Status.String()
}

// cmdPut writes n entries, one after the other, named <topic>-<k>, through
// a node (via=, default any running member); mput uses MPUT (the reply
// carries the offset). It prints each outcome class once with its entries,
// and with within=<duration> whether they all took at most that long
// (virtual time).
//
// Example:
//
//	put t n=3 via=2 within=1s
//	----
//	t-1..t-3: ok
//	within 1s: yes
func (sc *scenario) cmdPut(d *datadriven.TestData) string {
	topic := sc.topicArg(d)
	n := sc.intArg(d, "n", 1)
	via := sc.node(d, sc.arg(d, "via", "any"))
	kind := OpPut
	if sc.arg(d, "mput", "") != "" {
		kind = OpMPut
	}
	type group struct {
		status     string
		first, end int
	}
	var groups []group
	start := time.Now() // virtual: the bubble's clock
	for i := 0; i < n; i++ {
		sc.seq[topic]++
		k := sc.seq[topic]
		op := sc.r.h.begin(&Op{Client: int(via), Kind: kind, Topic: topic, Payload: fmt.Sprintf("%s-%d", topic, k), Node: via})
		op.apply(sc.client(via).Do(op.Request()))
		sc.r.h.end(op)
		st := statusText(op)
		if op.Status == StFail && sc.arg(d, "errors", "") != "" {
			st += " (" + shortErr(errors.New(op.Err)) + ")"
		}
		if len(groups) > 0 && groups[len(groups)-1].status == st {
			groups[len(groups)-1].end = k
		} else {
			groups = append(groups, group{st, k, k})
		}
	}
	var out []string
	for _, g := range groups {
		name := fmt.Sprintf("%s-%d", topic, g.first)
		if g.end != g.first {
			name += fmt.Sprintf("..%s-%d", topic, g.end)
		}
		out = append(out, name+": "+g.status)
	}
	if v := sc.arg(d, "within", ""); v != "" {
		limit, err := time.ParseDuration(v)
		if err != nil {
			d.Fatalf(sc.t, "put within=%q: want a duration", v)
		}
		if took := time.Since(start); took <= limit {
			out = append(out, fmt.Sprintf("within %v: yes", limit))
		} else {
			out = append(out, fmt.Sprintf("within %v: no (took %v)", limit, took))
		}
	}
	return strings.Join(out, "\n")
}

// cmdPutMany sends n PUTs at once, each from its own client connection
// to the node via=, and waits for every answer. Which write gets which
// offset depends on arrival, so only the outcome is printed.
//
// Example:
//
//	put-many t n=20 via=leader(t)
//	----
//	20 writes: 20 ok
func (sc *scenario) cmdPutMany(d *datadriven.TestData) string {
	topic := sc.topicArg(d)
	n := sc.intArg(d, "n", 1)
	via := sc.node(d, sc.arg(d, "via", "any"))
	ops := make([]*Op, n)
	for i := range ops {
		sc.seq[topic]++
		ops[i] = &Op{Client: int(via), Kind: OpPut, Topic: topic, Payload: fmt.Sprintf("%s-%d", topic, sc.seq[topic]), Node: via}
	}
	var wg sync.WaitGroup
	for i, op := range ops {
		cl := NewClient(sc.c.Net, fmt.Sprintf("m%d", i+1), clientAddr(via), 5*time.Second)
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cl.Close()
			sc.r.h.begin(op)
			op.apply(cl.Do(op.Request()))
			sc.r.h.end(op)
		}()
	}
	wg.Wait()
	count := map[string]int{}
	for _, op := range ops {
		st := statusText(op)
		if op.Status == StFail {
			st += " (" + shortErr(errors.New(op.Err)) + ")"
		}
		count[st]++
	}
	var parts []string
	for st, k := range count {
		parts = append(parts, fmt.Sprintf("%d %s", k, st))
	}
	sort.Strings(parts)
	return fmt.Sprintf("%d writes: %s", n, strings.Join(parts, ", "))
}

// cmdReplicateSends counts the Replicate requests (batches) the node
// from= sent the node to= for topic t so far, and the entries they
// carried (the network tap sees every one, resends included), once
// batches carried as many entries as the scenario wrote to t (or 10 s of
// virtual time passed).
//
// Example:
//
//	replicate-sends t from=leader(t) to=n2
//	----
//	n1->n2: 2 batches, 21 entries
func (sc *scenario) cmdReplicateSends(d *datadriven.TestData) string {
	topic := sc.topicArg(d)
	from := sc.node(d, sc.arg(d, "from", ""))
	to := sc.node(d, sc.arg(d, "to", ""))
	var batches, entries int
	count := func() bool {
		batches, entries = 0, 0
		sc.r.h.mu.Lock()
		defer sc.r.h.mu.Unlock()
		for _, r := range sc.r.h.Reps {
			if r.Topic == topic && r.From == NodeHost(from) && r.To == NodeHost(to) {
				batches++
				entries += len(r.Values)
			}
		}
		return entries >= sc.seq[topic]
	}
	// wait (virtual time) until everything written to t was sent there
	WaitFor(10*time.Second, count)
	return fmt.Sprintf("n%d->n%d: %d batches, %d entries", from, to, batches, entries)
}

// cmdGet consumes n entries from the shared cursor through a node.
// wait=<duration> sends long polls (GETW). async=<name> sends one GET on a
// connection of its own and returns at once; await <name> prints its
// answer (a GET in flight while other commands run).
//
// Example:
//
//	get t n=2 via=1
//	----
//	t-1 t-2
//
//	get t via=raft-leader wait=30s async=poll
//	----
//	poll: sent
func (sc *scenario) cmdGet(d *datadriven.TestData) string {
	topic := sc.topicArg(d)
	n := sc.intArg(d, "n", 1)
	via := sc.node(d, sc.arg(d, "via", "any"))
	var wait time.Duration
	if v := sc.arg(d, "wait", ""); v != "" {
		var err error
		if wait, err = time.ParseDuration(v); err != nil || wait <= 0 {
			d.Fatalf(sc.t, "get wait=%q: want a positive duration", v)
		}
	}
	newOp := func() *Op { return &Op{Client: int(via), Kind: OpGet, Topic: topic, Node: via, Wait: wait} }
	if name := sc.arg(d, "async", ""); name != "" {
		if n != 1 {
			d.Fatalf(sc.t, "get async=: one GET (n=1)")
		}
		if sc.async[name] != nil {
			d.Fatalf(sc.t, "get async=%s: that name is in flight already", name)
		}
		op, done := newOp(), make(chan struct{})
		cl := NewClient(sc.c.Net, "async-"+name, clientAddr(via), wait+5*time.Second)
		sc.r.h.begin(op)
		go func() {
			defer close(done)
			defer cl.Close()
			op.apply(cl.Do(op.Request()))
			sc.r.h.end(op)
		}()
		sc.async[name] = &asyncOp{op: op, done: done, cl: cl}
		return name + ": sent"
	}
	var out []string
	for i := 0; i < n; i++ {
		op := sc.r.h.begin(newOp())
		op.apply(sc.client(via).Do(op.Request()))
		sc.r.h.end(op)
		out = append(out, getText(op))
	}
	return strings.Join(out, " ")
}

// asyncOp is a request sent by a command with async=, awaited by await.
type asyncOp struct {
	op   *Op
	done chan struct{}
	cl   *Client
}

// asyncArg is the request a command's one argument names (sent with
// async=<name>).
func (sc *scenario) asyncArg(d *datadriven.TestData) (string, *asyncOp) {
	if len(d.CmdArgs) != 1 {
		d.Fatalf(sc.t, "%s <name>", d.Cmd)
	}
	name := d.CmdArgs[0].Key
	a := sc.async[name]
	if a == nil {
		d.Fatalf(sc.t, "%s %s: nothing sent with async=%s", d.Cmd, name, name)
	}
	return name, a
}

// cmdAwait waits for the answer of a request sent with async=<name> and
// prints it.
//
// Example:
//
//	await poll
//	----
//	poll: t-4
func (sc *scenario) cmdAwait(d *datadriven.TestData) string {
	name, a := sc.asyncArg(d)
	<-a.done
	delete(sc.async, name)
	return name + ": " + getText(a.op)
}

// cmdHangUp closes the connection of a GET sent with async=<name> while
// it waits (its client goes away: FIN), and waits until the client has
// given up on it. Its reply, if one comes, is never read.
//
// Example:
//
//	hang-up poll
//	----
//	poll: hung up
func (sc *scenario) cmdHangUp(d *datadriven.TestData) string {
	name, a := sc.asyncArg(d)
	a.cl.HangUp()
	<-a.done
	delete(sc.async, name)
	if a.op.Status != StUnknown {
		// answered before the hang-up
		return name + ": answered first: " + getText(a.op)
	}
	return name + ": hung up"
}

// getText is a GET's outcome: the entry, EMPTY, or the failure class.
func getText(op *Op) string {
	switch op.Status {
	case StOK:
		return op.Values[0]
	case StEmpty:
		return "EMPTY"
	}
	return op.Status.String()
}

// cmdRead reads by offset; errors=show adds a failure's error text.
//
// Example:
//
//	read t offset=0 max=3
//	----
//	0: t-1 t-2 t-3
func (sc *scenario) cmdRead(d *datadriven.TestData) string {
	topic := sc.topicArg(d)
	via := sc.node(d, sc.arg(d, "via", "any"))
	op := sc.r.h.begin(&Op{Client: int(via), Kind: OpRead, Topic: topic, Node: via,
		Offset: uint64(sc.intArg(d, "offset", 0)), Max: sc.intArg(d, "max", 1)})
	op.apply(sc.client(via).Do(op.Request()))
	sc.r.h.end(op)
	if op.Status != StOK {
		st := statusText(op)
		if op.Status == StFail && sc.arg(d, "errors", "") != "" {
			st += " (" + shortErr(errors.New(op.Err)) + ")"
		}
		return st
	}
	return fmt.Sprintf("%d: %s", op.First, strings.Join(op.Values, " "))
}

// ---- state and verdict ----

// cmdState prints a topic's segments as the raft leader (or, with via=,
// that node) sees them: state, count, replicas (removed nodes marked) and
// leader.
//
// Example:
//
//	state t
//	----
//	t/1: sealed count=5 leader=n1 replicas=n1,n2,n3
//	t/2: open leader=n2 replicas=n2,n3,n1
func (sc *scenario) cmdState(d *datadriven.TestData) string {
	topic := sc.topicArg(d)
	st := sc.meta(d, sc.arg(d, "via", ""))
	t := st.Topics[topic]
	if t == nil {
		return "unknown topic"
	}
	var out []string
	for _, sg := range t.Segments {
		var reps []string
		for _, r := range sg.Replicas {
			s := fmt.Sprintf("n%d", r)
			if _, ok := st.Nodes[r]; !ok {
				s += "(removed)"
			}
			reps = append(reps, s)
		}
		line := fmt.Sprintf("%s/%d: %v", topic, sg.ID, sg.State)
		if sg.Sealed() {
			line += fmt.Sprintf(" count=%d", sg.Count)
		}
		line += fmt.Sprintf(" leader=n%d replicas=%s", sg.Leader, strings.Join(reps, ","))
		if sg.Epoch > 1 {
			line += fmt.Sprintf(" epoch=%d", sg.Epoch)
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// cmdCursorStatus prints the shared cursor's committed position.
//
// Example:
//
//	cursor-status t
//	----
//	committed position 1
func (sc *scenario) cmdCursorStatus(d *datadriven.TestData) string {
	t := sc.meta(d, "").Topics[sc.topicArg(d)]
	if t == nil {
		return "unknown topic"
	}
	return fmt.Sprintf("committed position %d", t.Cursor)
}

// cmdCheck reads every topic to its end, drains the shared cursors, and
// runs the checker over everything the scenario did; every member must be
// running (else it says which is down and checks nothing). It prints the final
// log lengths, counts and each broken rule (details as input-free text).
//
// Example:
//
//	check
//	----
//	t: 8 entries; 8 acknowledged writes, all there
//	cursor: 2 entries served again inside the at-least-once window
//	violations: none
func (sc *scenario) cmdCheck(d *datadriven.TestData) string {
	// The final reads and the replica rules need every member: waiting
	// for one that is down would end in a liveness problem that says only
	// that the cluster did not settle.
	var down []string
	for _, id := range sc.c.Members() {
		if !slices.Contains(sc.c.Up(), id) {
			down = append(down, NodeHost(id))
		}
	}
	if len(down) > 0 {
		return "not checked: " + strings.Join(down, ",") + " down (restart or remove it first)"
	}
	sc.r.s.Topics = sc.topics
	sc.r.res.Problems = nil
	sc.r.collect(sc.topics)
	res := sc.r.res
	for _, id := range sc.c.Up() {
		res.Meta = sc.c.Proc(id).State()
		break
	}
	res.Verdict = Check(res)
	classifyKnown(res)
	var out []string
	for _, tp := range sc.topics {
		acked, there := 0, 0
		in := map[string]bool{}
		for _, p := range res.Final[tp] {
			in[p] = true
		}
		for _, o := range res.History.Ops {
			if o.Topic == tp && o.Kind.IsWrite() && o.Status == StOK {
				acked++
				if in[o.Payload] {
					there++
				}
			}
		}
		line := fmt.Sprintf("%s: %d entries; %d acknowledged writes, ", tp, len(res.Final[tp]), acked)
		if there == acked {
			line += "all there"
		} else {
			line += fmt.Sprintf("%d missing", acked-there)
		}
		if !res.FinalOK[tp] {
			line += " (the final read did not reach the end)"
		}
		out = append(out, line)
	}
	if k := res.Verdict.Counts.CursorRedelivered; k > 0 {
		out = append(out, fmt.Sprintf("cursor: %d entries served again inside the at-least-once window", k))
	}
	if len(res.Verdict.Violations) == 0 {
		out = append(out, "violations: none")
	}
	for _, v := range res.Verdict.Violations {
		out = append(out, "violation: "+v.Rule+" ["+v.Topic+"]")
	}
	for _, id := range res.Verdict.KnownIDs() {
		out = append(out, "known bug: "+id)
	}
	for _, p := range res.Problems {
		if i := strings.Index(p, " ("); i >= 0 {
			p = p[:i]
		}
		out = append(out, "problem: "+p)
	}
	return strings.Join(out, "\n")
}

// cmdKnownBugs lists the known bugs' titles (for the golden files that
// document one).
//
// Example:
//
//	known-bugs KB9
//	----
//	KB9: a follower that could not create a segment's file ...
func (sc *scenario) cmdKnownBugs(d *datadriven.TestData) string {
	var out []string
	for _, a := range d.CmdArgs {
		for _, kb := range KnownBugs {
			if kb.ID == a.Key {
				out = append(out, kb.ID+": "+kb.Title)
			}
		}
	}
	return strings.Join(out, "\n")
}
