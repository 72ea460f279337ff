package e2e

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/testport"
)

// The README's first command, `walrus dev`, as a user runs it: three node
// processes on the documented ports serve writes through one node and
// reads through another, and Ctrl-C (SIGINT to the foreground process
// group) stops them all: the command exits 0, every node logs "node
// stopped", and no node logs an error (nor raft a warning) while stopping.
func TestDevCommand(t *testing.T) {
	d := startDev(t, 0)
	reg := &conn{t: t, id: 1, client: mustDial(t, "127.0.0.1:9091")}
	reg.mustDo("REGISTER devlog", "OK")
	put := &conn{t: t, id: 2, client: mustDial(t, "127.0.0.1:9092")}
	put.mustDo("PUT devlog hello", "OK")
	put.mustDo("PUT devlog world", "OK")
	get := &conn{t: t, id: 3, client: mustDial(t, "127.0.0.1:9093")}
	get.mustDo("GET devlog", "OK hello")
	get.mustDo("GET devlog", "OK world")

	d.stop(t)
	for id := 1; id <= 3; id++ {
		b, err := os.ReadFile(filepath.Join(d.dir, fmt.Sprintf("node_%d.log", id)))
		if err != nil {
			t.Fatal(err)
		}
		log := string(b)
		if !strings.Contains(log, `msg="node stopped"`) {
			t.Errorf("node %d's log does not end with a clean stop\n%s", id, d.logs())
		}
		stopping, _ := afterStopping(log)
		for _, line := range faultsLogged(stopping) {
			t.Errorf("node %d logged while stopping: %s", id, line)
		}
	}
}

// README's failover demo on walrus dev: the node that leads the topic's
// segment, killed (kill -9 of the pid dev printed), is reported with the
// command that starts it again, and dev keeps the other two running: a
// write through one of them is acknowledged (in a new segment once the
// dead leader's is failed over), and a READ through it has every
// acknowledged entry. Started again with that command, the killed node
// serves the shared cursor; Ctrl-C still stops dev's own nodes. It runs
// on ports moved by --port-offset, so the printed command must carry them.
func TestDevCommandKeepsRunningWhenANodeDies(t *testing.T) {
	d := startDev(t, freeDevOffset(t))
	a := &conn{t: t, id: 1, client: mustDial(t, d.clientAddr(1))}
	a.mustDo("REGISTER devkill", "OK")
	a.mustDo("PUT devkill before", "OK")
	var seg, dead int
	var addr string
	if _, err := fmt.Sscanf(a.do("LEADER devkill"), "OK %d %d %s", &seg, &dead, &addr); err != nil || dead < 1 || dead > 3 {
		t.Fatalf("LEADER devkill: %v (node %d)", err, dead)
	}
	live := dead%3 + 1
	b := &conn{t: t, id: live, client: mustDial(t, d.clientAddr(live))}

	m := regexp.MustCompile(fmt.Sprintf(`(?m)^node %d \(pid (\d+)\)`, dead)).FindStringSubmatch(d.output())
	if m == nil {
		t.Fatalf("walrus dev did not print node %d's pid\n%s", dead, d.logs())
	}
	pid, _ := strconv.Atoi(m[1])
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var restart []string
	if err := poll(readyTimeout, func() error {
		report := fmt.Sprintf("node %d exited (signal: killed); the others keep running. To start it again:\n", dead)
		_, after, ok := strings.Cut(d.output(), report)
		if !ok {
			return fmt.Errorf("no report of node %d's exit", dead)
		}
		line, _, _ := strings.Cut(after, "\n")
		restart = strings.Fields(line)
		return nil
	}); err != nil {
		t.Fatalf("%v\n%s", err, d.logs())
	}
	select {
	case <-d.p.done:
		t.Fatalf("walrus dev exited when one node died\n%s", d.logs())
	default:
	}
	if len(restart) < 2 || restart[0] != walrusBin || !slices.Contains(restart, "--node-id") {
		t.Fatalf("restart command %q", restart)
	}
	// a write through a live node is acknowledged once the dead leader's
	// segment is failed over (an error reply until then wrote nothing)
	if err := poll(readyTimeout, func() error {
		if r := b.do("PUT devkill after"); r != "OK" {
			return errors.New(r)
		}
		return nil
	}); err != nil {
		t.Fatalf("PUT through node %d with node %d dead: %v\n%s", live, dead, err, d.logs())
	}
	if r := b.do("READ devkill 0 10"); !strings.Contains(r, "before") {
		t.Fatalf("READ devkill 0 10 through node %d: %q", live, r)
	}
	if r := b.do("READ devkill 1 10"); !strings.Contains(r, "after") {
		t.Fatalf("READ devkill 1 10 through node %d: %q", live, r)
	}

	n, err := startProcess(exec.Command(restart[0], restart[1:]...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.kill)
	if err := poll(readyTimeout, func() error {
		cl, err := dialClient(d.clientAddr(dead))
		if err != nil {
			return err
		}
		defer cl.Close()
		r, err := cl.roundTrip([]byte("GET devkill"))
		if err != nil {
			return err
		}
		if string(r) != "OK before" {
			return fmt.Errorf("GET devkill through the restarted node %d: %q", dead, r)
		}
		return nil
	}); err != nil {
		t.Fatalf("%v\n%s", err, d.logs())
	}

	d.stop(t)
	n.signal(syscall.SIGTERM)
	<-n.done
	if n.err != nil {
		t.Errorf("restarted node %d: SIGTERM: exited with %v, want status 0", dead, n.err)
	}
}

// walrus dev refuses to start a cluster on ports already taken (another
// walrus dev still running, say): it names the port and exits 1, and no
// node runs.
func TestDevCommandPortInUse(t *testing.T) {
	offset := freeDevOffset(t)
	taken := fmt.Sprintf("127.0.0.1:%d", 6002+offset) // node 2's raft port
	ln, err := net.Listen("tcp", taken)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	p, _, outPath := launchDev(t, offset)
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		t.Fatalf("walrus dev still running %v after it started with %s taken", stopTimeout, taken)
	}
	out, _ := os.ReadFile(outPath)
	var ee *exec.ExitError
	if !errors.As(p.err, &ee) || ee.ExitCode() != 1 || !strings.Contains(string(out), "walrus dev: "+taken+" is in use") {
		t.Fatalf("walrus dev with %s taken: %v\n%s", taken, p.err, out)
	}
	if !testport.IsFree(9091 + offset) {
		t.Fatal("walrus dev left node 1 running")
	}
}

func mustDial(t *testing.T, addr string) *client {
	t.Helper()
	cl, err := dialClient(addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// launchDev starts `walrus dev` (with --port-offset unless offset is 0)
// on a fresh data folder, its output going to a file; the process and the
// nodes it starts (its process group) are killed when the test ends. It
// returns the process, the data folder and the output file.
func launchDev(t *testing.T, offset int) (p *process, dir, out string) {
	t.Helper()
	if err := declareInputs(); err != nil {
		t.Fatal(err)
	}
	dir = filepath.Join(t.TempDir(), "dev")
	out = filepath.Join(t.TempDir(), "dev.out")
	f, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	args := []string{"dev", "--data-dir", dir}
	if offset != 0 {
		args = append(args, "--port-offset", strconv.Itoa(offset))
	}
	cmd := exec.Command(walrusBin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if p, err = startProcess(cmd); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.kill)
	return p, dir, out
}

// freeDevOffset is a --port-offset that puts walrus dev's three nodes on
// free ports.
func freeDevOffset(t *testing.T) int {
	var ports []int
	for i := 1; i <= 3; i++ {
		ports = append(ports, 9090+i, 6000+i, 8080+i)
	}
	return testport.FreeOffset(t, ports...)
}

// devPortsFree skips the test when a port walrus dev listens on by
// default (the README's command) is taken.
func devPortsFree(t *testing.T) {
	t.Helper()
	var busy []int
	for _, base := range []int{9090, 6000, 8080} {
		for i := 1; i <= 3; i++ {
			if !testport.IsFree(base + i) {
				busy = append(busy, base+i)
			}
		}
	}
	if len(busy) > 0 {
		t.Skipf("walrus dev listens on fixed ports and these are in use: %v", busy)
	}
}

// devRun is one `walrus dev` of a test.
type devRun struct {
	p      *process
	dir    string // its --data-dir
	out    string // the file its stdout and stderr go to
	offset int    // its --port-offset
	logs   func() string
}

// clientAddr is node id's client address.
func (d *devRun) clientAddr(id int) string { return fmt.Sprintf("127.0.0.1:%d", 9090+id+d.offset) }

// stop presses Ctrl-C (SIGINT to the whole foreground process group) and
// waits for walrus dev to exit 0.
func (d *devRun) stop(t *testing.T) {
	t.Helper()
	d.p.signal(syscall.SIGINT)
	select {
	case <-d.p.done:
	case <-time.After(stopTimeout):
		t.Fatalf("walrus dev did not exit within %v of SIGINT\n%s", stopTimeout, d.logs())
	}
	if d.p.err != nil {
		t.Errorf("walrus dev: exited with %v, want status 0", d.p.err)
	}
}

// output is what walrus dev has printed so far.
func (d *devRun) output() string {
	b, _ := os.ReadFile(d.out)
	return string(b)
}

// startDev runs `walrus dev` with --port-offset offset on a fresh data
// folder and waits until its three nodes form the cluster. With offset 0
// (the README's ports) it skips the test when those are taken.
func startDev(t *testing.T, offset int) *devRun {
	t.Helper()
	if offset == 0 {
		devPortsFree(t)
	}
	p, dir, out := launchDev(t, offset)
	logs := func() string {
		var b strings.Builder
		o, _ := os.ReadFile(out)
		fmt.Fprintf(&b, "walrus dev's output:\n%s", o)
		for id := 1; id <= 3; id++ {
			l, _ := os.ReadFile(filepath.Join(dir, fmt.Sprintf("node_%d.log", id)))
			fmt.Fprintf(&b, "---- node %d ----\n%s", id, lastLines(string(l), 30))
		}
		return b.String()
	}
	// The harness's readiness check, over walrus dev's three nodes: node 1
	// lists voters 1-3 and every node knows the leader and has applied its
	// commit index.
	c := &cluster{t: t, dir: dir}
	for id := 1; id <= 3; id++ {
		c.nodes = append(c.nodes, &node{id: id, host: "127.0.0.1", clientPort: 9090 + id + offset, raftPort: 6000 + id + offset,
			httpPort: 8080 + id + offset, logPath: filepath.Join(dir, fmt.Sprintf("node_%d.log", id)), proc: p})
	}
	c.waitReady()
	return &devRun{p: p, dir: dir, out: out, offset: offset, logs: logs}
}
