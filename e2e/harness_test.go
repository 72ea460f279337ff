package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testport"
)

// A cluster is n walrus processes on loopback, started by startCluster and
// killed when the test ends:
//
//	c := startCluster(t, 3, clusterOpts{env: map[string]string{"WALRUS_MAX_SEGMENT_ENTRIES": "10"}})
//	a := c.dial(1)
//	a.mustDo("REGISTER logs", "OK")
//	c.stopAll()
//	c.startAll()
//	c.waitReady()
type cluster struct {
	t     testing.TB // a test, or a benchmark
	dir   string     // --data-dir of every node (state under node_<id>/), and the logs
	opts  clusterOpts
	nodes []*node // nodes[id-1]
}

// clusterOpts shape a cluster; the zero value is a plain cluster.
type clusterOpts struct {
	// env is added to every node's environment (WALRUS_MAX_SEGMENT_ENTRIES,
	// WALRUS_MONITOR_CHECK_MS, ...). The test process's own WALRUS_*
	// variables are never passed on: runs are hermetic.
	env map[string]string
	// args are extra flags for every node.
	args []string
	// http gives every node an --http-port (otherwise --http-port 0).
	http bool
	// host returns the IP node id listens on (client, raft and HTTP
	// ports); nil means 127.0.0.1. The test process must reach it.
	host func(id int) string
	// wrap returns a command prefix that launches node id's process, e.g.
	// "ip netns exec <ns>" (see privateNet); nil runs walrus directly.
	wrap func(id int) []string
	// dataDir returns node id's --data-dir (e.g. a file system of its own,
	// see freezableDisks); nil: the cluster's temporary folder.
	dataDir func(id int) string
}

// node is one member: its fixed identity (ports, folders) and the process
// currently running it, if any.
type node struct {
	id                             int
	host                           string // listen IP, 127.0.0.1 unless clusterOpts.host says otherwise
	clientPort, raftPort, httpPort int
	logPath                        string
	launches                       int
	proc                           *process // nil when not running
	// joinVia, when set, is the member a launch of this node --joins
	// through instead of node 1 (a node whose data dir was wiped must
	// join, even node 1, which bootstrapped the cluster).
	joinVia int
}

func (n *node) clientAddr() string { return net.JoinHostPort(n.host, strconv.Itoa(n.clientPort)) }
func (n *node) raftAddr() string   { return net.JoinHostPort(n.host, strconv.Itoa(n.raftPort)) }
func (n *node) httpAddr() string   { return net.JoinHostPort(n.host, strconv.Itoa(n.httpPort)) }

// readyTimeout bounds every wait for a cluster to form or come back.
const readyTimeout = 30 * time.Second

// startCluster starts an n-node cluster: node 1 bootstraps, nodes 2..n join
// it. It returns once the cluster is ready (waitReady). Every process is
// killed when the test ends; if the test failed, the tail of each node's
// log is printed.
func startCluster(t testing.TB, n int, opts clusterOpts) *cluster {
	t.Helper()
	c := &cluster{t: t, dir: t.TempDir(), opts: opts}
	t.Cleanup(c.cleanup)
	for id := 1; id <= n; id++ {
		host := "127.0.0.1"
		if opts.host != nil {
			host = opts.host(id)
		}
		c.nodes = append(c.nodes, &node{id: id, host: host, logPath: filepath.Join(c.dir, fmt.Sprintf("node_%d.log", id))})
	}
	for _, nd := range c.nodes {
		c.launchFresh(nd)
	}
	c.waitReady()
	return c
}

// dataDir is node id's --data-dir (its data is in node_<id> inside).
func (c *cluster) dataDir(id int) string {
	if c.opts.dataDir != nil {
		return c.opts.dataDir(id)
	}
	return c.dir
}

// node returns member id (1-based).
func (c *cluster) node(id int) *node {
	c.t.Helper()
	if id < 1 || id > len(c.nodes) {
		c.t.Fatalf("no node %d in a %d-node cluster", id, len(c.nodes))
	}
	return c.nodes[id-1]
}

// ids lists the members, running or not.
func (c *cluster) ids() []int {
	ids := make([]int, len(c.nodes))
	for i := range c.nodes {
		ids[i] = i + 1
	}
	return ids
}

// args are node nd's command-line flags; they never change between
// restarts.
func (c *cluster) args(nd *node) []string {
	a := []string{
		"--node-id", strconv.Itoa(nd.id),
		"--data-dir", c.dataDir(nd.id),
		"--client-host", nd.host, "--client-port", strconv.Itoa(nd.clientPort),
		"--raft-host", nd.host, "--raft-port", strconv.Itoa(nd.raftPort),
		"--http-port", strconv.Itoa(nd.httpPort),
		"--log-file", nd.logPath,
	}
	if nd.host != "127.0.0.1" {
		a = append(a, "--http-host", nd.host)
	}
	switch {
	case nd.joinVia != 0:
		a = append(a, "--join", c.node(nd.joinVia).raftAddr())
	case nd.id != 1:
		a = append(a, "--join", c.nodes[0].raftAddr())
	}
	if lv := os.Getenv("E2E_LOG_LEVEL"); lv != "" {
		a = append(a, "--log-level", lv)
	}
	return append(a, c.opts.args...)
}

func (c *cluster) env() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WALRUS_") {
			env = append(env, kv)
		}
	}
	keys := make([]string, 0, len(c.opts.env))
	for k := range c.opts.env {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		env = append(env, k+"="+c.opts.env[k])
	}
	return env
}

// launchFresh starts a node for the first time on newly picked free ports,
// picking again if another process took one of them in between.
func (c *cluster) launchFresh(nd *node) {
	c.t.Helper()
	const attempts = 3
	for i := 1; ; i++ {
		ports := freePorts(c.t, 3)
		nd.clientPort, nd.raftPort = ports[0], ports[1]
		if c.opts.http {
			nd.httpPort = ports[2]
		}
		p := c.spawn(nd)
		err := c.waitStarted(nd, p)
		if err == nil {
			return
		}
		if i < attempts && strings.Contains(err.Error(), "address already in use") {
			c.t.Logf("node %d: %v; picking other ports", nd.id, err)
			continue
		}
		c.t.Fatalf("start node %d: %v", nd.id, err)
	}
}

// spawn starts node nd's process with its flags and the cluster's
// environment, stdout and stderr going to its log.
func (c *cluster) spawn(nd *node) *process {
	c.t.Helper()
	if nd.proc != nil {
		c.t.Fatalf("node %d is already running (pid %d)", nd.id, nd.proc.pid())
	}
	if err := declareInputs(); err != nil {
		c.t.Fatal(err)
	}
	nd.launches++
	logf, err := os.OpenFile(nd.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	defer logf.Close()
	args := c.args(nd)
	fmt.Fprintf(logf, "=== e2e: launch %d of node %d: walrus %s\n", nd.launches, nd.id, strings.Join(args, " "))
	cmd := exec.Command(walrusBin, args...)
	if c.opts.wrap != nil {
		w := c.opts.wrap(nd.id)
		cmd = exec.Command(w[0], append(append(w[1:len(w):len(w)], walrusBin), args...)...)
	}
	cmd.Env = c.env()
	cmd.Stdout, cmd.Stderr = logf, logf
	p, err := startProcess(cmd)
	if err != nil {
		c.t.Fatalf("start node %d: %v", nd.id, err)
	}
	nd.proc = p
	return p
}

// waitStarted waits until the launch of nd logs "node started" or accepts
// a connection on its client port (with --log-level above info it logs
// nothing), or fails with the reason if the process exits first.
func (c *cluster) waitStarted(nd *node, p *process) error {
	marker := fmt.Sprintf("=== e2e: launch %d of node %d:", nd.launches, nd.id)
	deadline := time.Now().Add(readyTimeout)
	for {
		b, _ := os.ReadFile(nd.logPath)
		_, after, _ := bytes.Cut(b, []byte(marker))
		if bytes.Contains(after, []byte(`msg="node started"`)) {
			return nil
		}
		select {
		case <-p.done:
			nd.proc = nil
			return fmt.Errorf("exited (%v) before it started; its log says:\n%s", p.err, lastLines(string(after), 20))
		default:
		}
		if nc, err := net.DialTimeout("tcp", nd.clientAddr(), time.Second); err == nil {
			nc.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no %q in its log after %v", "node started", readyTimeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// start starts a node that is not running, with the same flags, ports and
// data as before, and waits until it listens.
func (c *cluster) start(id int) {
	c.t.Helper()
	nd := c.node(id)
	if err := c.waitStarted(nd, c.spawn(nd)); err != nil {
		c.t.Fatalf("restart node %d: %v", id, err)
	}
}

// restart stops node id gracefully (if it runs) and starts it again.
func (c *cluster) restart(id int) {
	c.t.Helper()
	if c.node(id).proc != nil {
		c.stop(id)
	}
	c.start(id)
}

// startAll starts every stopped node at once (a whole cluster coming back
// needs a quorum before any node can make progress) and waits until each
// listens. Call waitReady to wait for a leader.
func (c *cluster) startAll() {
	c.t.Helper()
	type launch struct {
		nd *node
		p  *process
	}
	var ls []launch
	for _, nd := range c.nodes {
		if nd.proc == nil {
			ls = append(ls, launch{nd, c.spawn(nd)})
		}
	}
	for _, l := range ls {
		if err := c.waitStarted(l.nd, l.p); err != nil {
			c.t.Fatalf("restart node %d: %v", l.nd.id, err)
		}
	}
}

// kill sends SIGKILL to node id and waits for it to die.
func (c *cluster) kill(id int) {
	c.t.Helper()
	nd := c.node(id)
	if nd.proc == nil {
		c.t.Fatalf("kill node %d: not running", id)
	}
	nd.proc.kill()
	nd.proc = nil
}

// waitExited waits for node id's process to exit by itself and requires
// exit status status.
func (c *cluster) waitExited(id, status int) {
	c.t.Helper()
	nd := c.node(id)
	p := c.running(id)
	select {
	case <-p.done:
	case <-time.After(readyTimeout):
		c.t.Fatalf("node %d did not exit in %v", id, readyTimeout)
	}
	nd.proc = nil
	code := 0
	if p.err != nil {
		code = -1
		var ee *exec.ExitError
		if errors.As(p.err, &ee) {
			code = ee.ExitCode()
		}
	}
	if code != status {
		c.t.Fatalf("node %d exited with %v, want exit status %d", id, p.err, status)
	}
}

// wipe kills node id (SIGKILL) if it runs and deletes its whole state,
// <data-dir>/node_<id>/ (its log stays). Its next launch joins the cluster
// through member via, as a node without state must.
func (c *cluster) wipe(id, via int) {
	c.t.Helper()
	nd := c.node(id)
	if nd.proc != nil {
		c.kill(id)
	}
	if err := os.RemoveAll(filepath.Join(c.dataDir(id), fmt.Sprintf("node_%d", id))); err != nil {
		c.t.Fatalf("wipe node %d: %v", id, err)
	}
	nd.joinVia = via
}

// killAll sends SIGKILL to every running node, all before waiting for any.
func (c *cluster) killAll() {
	c.t.Helper()
	var ps []*process
	for _, nd := range c.nodes {
		if nd.proc != nil {
			nd.proc.signal(syscall.SIGKILL)
			ps = append(ps, nd.proc)
			nd.proc = nil
		}
	}
	for _, p := range ps {
		<-p.done
	}
}

// stopTimeout is how long a node may take to stop after SIGTERM.
const stopTimeout = 15 * time.Second

// stop sends SIGTERM to node id and waits for it to exit; a node that does
// not exit within stopTimeout fails the test (and is killed).
func (c *cluster) stop(id int) {
	c.t.Helper()
	c.stopNodes(id)
}

// stopAll stops every running node gracefully, all at once.
func (c *cluster) stopAll() {
	c.t.Helper()
	var ids []int
	for _, nd := range c.nodes {
		if nd.proc != nil {
			ids = append(ids, nd.id)
		}
	}
	c.stopNodes(ids...)
}

func (c *cluster) stopNodes(ids ...int) {
	c.t.Helper()
	for _, id := range ids {
		nd := c.node(id)
		if nd.proc == nil {
			c.t.Fatalf("stop node %d: not running", id)
		}
		nd.proc.signal(syscall.SIGCONT) // a paused node could not handle SIGTERM
		nd.proc.signal(syscall.SIGTERM)
	}
	deadline := time.After(stopTimeout)
	for _, id := range ids {
		nd := c.node(id)
		select {
		case <-nd.proc.done:
			if nd.proc.err != nil {
				c.t.Errorf("node %d: SIGTERM: exited with %v, want status 0", id, nd.proc.err)
			}
		case <-deadline:
			c.t.Errorf("node %d did not exit within %v of SIGTERM; killing it", id, stopTimeout)
			nd.proc.kill()
		}
		nd.proc = nil
	}
}

// pause freezes node id (SIGSTOP): its sockets stay open, it answers
// nothing.
func (c *cluster) pause(id int) {
	c.t.Helper()
	c.running(id).signal(syscall.SIGSTOP)
}

// resume undoes pause (SIGCONT).
func (c *cluster) resume(id int) {
	c.t.Helper()
	c.running(id).signal(syscall.SIGCONT)
}

func (c *cluster) running(id int) *process {
	c.t.Helper()
	p := c.node(id).proc
	if p == nil {
		c.t.Fatalf("node %d is not running", id)
	}
	return p
}

// waitReady waits until the lowest-numbered running node lists every
// member as a voter, every running node answers METRICS with a leader, and
// every running node has applied what that leader had committed (so
// STATE and GET do not answer from metadata a restart left behind).
func (c *cluster) waitReady() {
	c.t.Helper()
	var up []int
	for _, nd := range c.nodes {
		if nd.proc != nil {
			up = append(up, nd.id)
		}
	}
	if len(up) == 0 {
		c.t.Fatal("waitReady: no node is running")
	}
	want := fmt.Sprint([][]int{c.ids()})
	what := fmt.Sprintf("node %d to list voters %s, and nodes %v to know a leader and apply its commit index", up[0], want, up)
	c.waitFor(what, readyTimeout, func() error {
		m, err := c.metrics(up[0])
		if err != nil {
			return err
		}
		if got := voterSets(m); fmt.Sprint(got) != want {
			return fmt.Errorf("node %d: membership_config.membership.configs = %v", up[0], m.get("membership_config", "membership", "configs"))
		}
		ms := map[int]jsonObj{}
		for _, id := range up {
			if ms[id], err = c.metrics(id); err != nil {
				return err
			}
			if ms[id].get("current_leader") == nil {
				return fmt.Errorf("node %d: current_leader is null (state %v, term %v)", id, ms[id].get("state"), ms[id].get("current_term"))
			}
		}
		leader, _ := asInt(ms[up[0]].get("current_leader"))
		lm, ok := ms[int(leader)]
		if !ok {
			return fmt.Errorf("leader %d is not running", leader)
		}
		commit, ok := asInt(lm.get("commit_index"))
		if !ok {
			return fmt.Errorf("leader %d: no integer commit_index in METRICS", leader)
		}
		for _, id := range up {
			if applied, _ := asInt(ms[id].get("last_applied")); applied < commit {
				return fmt.Errorf("node %d: last_applied %d < leader %d's commit_index %d", id, applied, leader, commit)
			}
		}
		return nil
	})
}

// voterSets returns METRICS' membership_config.membership.configs with
// each voter list sorted (the node lists voters in the order they joined),
// or nil if it is not a list of integer lists.
func voterSets(m jsonObj) [][]int {
	cfgs, ok := m.get("membership_config", "membership", "configs").([]any)
	if !ok {
		return nil
	}
	out := [][]int{}
	for _, cfg := range cfgs {
		ids, ok := cfg.([]any)
		if !ok {
			return nil
		}
		set := []int{}
		for _, v := range ids {
			id, ok := asInt(v)
			if !ok {
				return nil
			}
			set = append(set, int(id))
		}
		slices.Sort(set)
		out = append(out, set)
	}
	return out
}

// waitFor polls cond every 20ms until it returns nil. Past the deadline it
// fails the test with what it waited for, cond's last complaint and each
// node's view.
func (c *cluster) waitFor(what string, d time.Duration, cond func() error) {
	c.t.Helper()
	if err := poll(d, cond); err != nil {
		c.t.Fatalf("timed out after %v waiting for %s\nlast: %v\n%s", d, what, err, c.describe())
	}
}

// poll calls cond until it returns nil or d passes; it returns cond's last
// error then.
func poll(d time.Duration, cond func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// describe is one line per node: its process and its METRICS summary.
func (c *cluster) describe() string {
	var b strings.Builder
	for _, nd := range c.nodes {
		fmt.Fprintf(&b, "node %d (client %s, raft %s): ", nd.id, nd.clientAddr(), nd.raftAddr())
		if nd.proc == nil {
			b.WriteString("not running\n")
			continue
		}
		select {
		case <-nd.proc.done:
			fmt.Fprintf(&b, "EXITED unexpectedly: %v\n", nd.proc.err)
			continue
		default:
		}
		m, err := c.metrics(nd.id)
		if err != nil {
			fmt.Fprintf(&b, "pid %d, METRICS: %v\n", nd.proc.pid(), err)
			continue
		}
		fmt.Fprintf(&b, "pid %d, state=%v term=%v leader=%v last_log_index=%v last_applied=%v voters=%v\n",
			nd.proc.pid(), m.get("state"), m.get("current_term"), m.get("current_leader"),
			m.get("last_log_index"), m.get("last_applied"), m.get("membership_config", "membership", "configs"))
	}
	return b.String()
}

// cleanup runs when the test ends: it reports nodes that died on their
// own, kills the rest and prints the logs of a failed test.
func (c *cluster) cleanup() {
	for _, nd := range c.nodes {
		if nd.proc == nil {
			continue
		}
		select {
		case <-nd.proc.done:
			c.t.Errorf("node %d exited on its own during the test: %v", nd.id, nd.proc.err)
		default:
		}
		nd.proc.kill()
		nd.proc = nil
	}
	c.checkLogs()
	if c.t.Failed() || os.Getenv("E2E_LOGS") != "" {
		c.dumpLogs()
	}
}

// checkLogs fails the test if a node's log shows a Go panic, a fatal
// runtime error or (E2E_RACE=1) a data race, even one the node survived.
// nodeLog is node id's log file as it stands.
func (c *cluster) nodeLog(id int) string {
	c.t.Helper()
	b, err := os.ReadFile(c.node(id).logPath)
	if err != nil {
		c.t.Fatal(err)
	}
	return string(b)
}

func (c *cluster) checkLogs() {
	for _, nd := range c.nodes {
		b, err := os.ReadFile(nd.logPath)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "WARNING: DATA RACE") || strings.HasPrefix(line, "panic: ") ||
				strings.HasPrefix(line, "fatal error: ") {
				c.t.Errorf("node %d's log %s has %q", nd.id, nd.logPath, line)
				break
			}
		}
	}
}

// dumpLogs prints the last lines of every node's log (E2E_LOG_LINES,
// default 50; 0 means all).
func (c *cluster) dumpLogs() {
	n := 50
	if v, err := strconv.Atoi(os.Getenv("E2E_LOG_LINES")); err == nil {
		n = v
	}
	for _, nd := range c.nodes {
		b, err := os.ReadFile(nd.logPath)
		if err != nil {
			c.t.Logf("node %d log: %v", nd.id, err)
			continue
		}
		c.t.Logf("---- node %d: last %d lines of %s ----\n%s", nd.id, n, nd.logPath, lastLines(string(b), n))
	}
}

// lastLines returns the last n lines of s (all of them if n <= 0).
func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if n > 0 && len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	ports := make([]int, n)
	for i := range ports {
		ports[i] = testport.Free(t) // outside the ephemeral range: see testport
	}
	return ports
}

// process is one node process. Each runs in its own process group and gets
// SIGKILL if the test binary dies (see startProcess).
type process struct {
	cmd  *exec.Cmd
	done chan struct{} // closed once the process has exited
	err  error         // Wait's result; read after done
}

func (p *process) pid() int { return p.cmd.Process.Pid }

// signal sends sig to the process's group.
func (p *process) signal(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	if err := syscall.Kill(-p.pid(), sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		_ = p.cmd.Process.Signal(sig)
	}
}

// kill sends SIGKILL to the group and waits for the process to exit.
func (p *process) kill() {
	p.signal(syscall.SIGKILL)
	<-p.done
}

// live holds every node process of the run, for the watchdog.
var live = struct {
	sync.Mutex
	m map[*process]bool
}{m: map[*process]bool{}}

// killAllProcesses kills every node process still running (watchdog and
// the end of the run).
func killAllProcesses() {
	live.Lock()
	ps := make([]*process, 0, len(live.m))
	for p := range live.m {
		ps = append(ps, p)
	}
	live.Unlock()
	for _, p := range ps {
		p.signal(syscall.SIGKILL)
	}
}

// spawnRequests feeds the one goroutine that starts processes. It is
// locked to its OS thread for the life of the test binary: Linux delivers
// the parent-death signal when the thread that forked the child exits, so
// the forking thread must never exit while nodes run.
var spawnRequests = make(chan spawnRequest)

type spawnRequest struct {
	cmd *exec.Cmd
	err chan error
}

func init() {
	go func() {
		runtime.LockOSThread() // never unlocked: this thread lives as long as the binary
		for r := range spawnRequests {
			r.err <- r.cmd.Start()
		}
	}()
}

// startProcess starts cmd in a new process group with SIGKILL as its
// parent-death signal, and tracks it until it exits.
func startProcess(cmd *exec.Cmd) (*process, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	errc := make(chan error)
	spawnRequests <- spawnRequest{cmd, errc}
	if err := <-errc; err != nil {
		return nil, err
	}
	p := &process{cmd: cmd, done: make(chan struct{})}
	live.Lock()
	live.m[p] = true
	live.Unlock()
	go func() {
		p.err = cmd.Wait()
		live.Lock()
		delete(live.m, p)
		live.Unlock()
		close(p.done)
	}()
	return p, nil
}
