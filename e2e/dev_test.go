package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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
// stopped", and no node logs an error while stopping.
func TestDevCommand(t *testing.T) {
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
	if err := declareInputs(); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "dev")
	out, err := os.Create(filepath.Join(t.TempDir(), "dev.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	cmd := exec.Command(walrusBin, "dev", "--data-dir", dir)
	cmd.Stdout, cmd.Stderr = out, out
	p, err := startProcess(cmd)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.kill)
	logs := func() string {
		var b strings.Builder
		o, _ := os.ReadFile(out.Name())
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
		c.nodes = append(c.nodes, &node{id: id, host: "127.0.0.1", clientPort: 9090 + id, raftPort: 6000 + id,
			httpPort: 8080 + id, logPath: filepath.Join(dir, fmt.Sprintf("node_%d.log", id)), proc: p})
	}
	c.waitReady()
	reg := &conn{t: t, id: 1, client: mustDial(t, "127.0.0.1:9091")}
	reg.mustDo("REGISTER devlog", "OK")
	put := &conn{t: t, id: 2, client: mustDial(t, "127.0.0.1:9092")}
	put.mustDo("PUT devlog hello", "OK")
	put.mustDo("PUT devlog world", "OK")
	get := &conn{t: t, id: 3, client: mustDial(t, "127.0.0.1:9093")}
	get.mustDo("GET devlog", "OK hello")
	get.mustDo("GET devlog", "OK world")

	p.signal(syscall.SIGINT) // Ctrl-C: the whole foreground group
	select {
	case <-p.done:
	case <-time.After(stopTimeout):
		t.Fatalf("walrus dev did not exit within %v of SIGINT\n%s", stopTimeout, logs())
	}
	if p.err != nil {
		t.Errorf("walrus dev: exited with %v, want status 0", p.err)
	}
	for id := 1; id <= 3; id++ {
		b, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("node_%d.log", id)))
		if err != nil {
			t.Fatal(err)
		}
		log := string(b)
		if !strings.Contains(log, `msg="node stopped"`) {
			t.Errorf("node %d's log does not end with a clean stop\n%s", id, logs())
		}
		at := strings.Index(log, "msg=stopping")
		if at < 0 {
			continue
		}
		for _, line := range strings.Split(log[at:], "\n") {
			if strings.Contains(line, "level=ERROR") {
				t.Errorf("node %d logged an error while stopping: %s", id, line)
			}
		}
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
