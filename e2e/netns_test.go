package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
)

// privateNet gives each node of a cluster a Linux network namespace of its
// own, so a test can cut a node off from its peers on a real network
// (issue 5: "cut a leader off from its peers"):
//
//	test process (root namespace)
//	  bridge <tag>b 10.77.K.254/24
//	   ├── veth <tag>h1 ─── namespace walrus-e2e-<tag>-1: eth0 10.77.K.1
//	   ├── veth <tag>h2 ─── namespace walrus-e2e-<tag>-2: eth0 10.77.K.2
//	   └── ...
//
// Nodes listen on their namespace's address (clusterOpts host/wrap, see
// opts) and reach each other through the bridge; the test process reaches
// every node through the bridge too. isolate(k) adds blackhole routes in
// node k's namespace for every peer's address and in every peer's
// namespace for k's, so k and its peers drop each other's packets while
// the test process still talks to all of them; heal deletes the routes.
//
// Names carry the test binary's pid and a counter (<tag> = w<pid>x<n>);
// the subnet K is one no interface of the machine uses. Everything is
// torn down in t.Cleanup, after the cluster's nodes are killed (create the
// network before the cluster). Leftovers of a test binary that was
// SIGKILLed (its pid no longer runs) are removed at the next start.
// Needs root and iproute2; the test is skipped otherwise.
type privateNet struct {
	t      *testing.T
	tag    string
	prefix string // "10.77.K."
	n      int
	bridge string
	cut    map[[2]int]bool // blackhole route in namespace [0] for node [1]'s address
}

var netSeq atomic.Int32

// newPrivateNet builds a network for nodes 1..n, or skips the test.
func newPrivateNet(t *testing.T, n int) *privateNet {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to create network namespaces (ip netns)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skipf("needs iproute2's ip command: %v", err)
	}
	removeStaleNets(t)
	p := &privateNet{t: t, tag: fmt.Sprintf("w%dx%d", os.Getpid(), netSeq.Add(1)), n: n, cut: map[[2]int]bool{}}
	p.bridge = p.tag + "b"
	k, err := freeSubnet()
	if err != nil {
		t.Skipf("no free 10.77.K.0/24 subnet: %v", err)
	}
	p.prefix = fmt.Sprintf("10.77.%d.", k)
	t.Cleanup(p.teardown)
	steps := [][]string{
		{"link", "add", p.bridge, "type", "bridge"},
		{"addr", "add", p.prefix + "254/24", "dev", p.bridge},
		{"link", "set", p.bridge, "up"},
	}
	for id := 1; id <= n; id++ {
		ns, veth := p.ns(id), fmt.Sprintf("%sh%d", p.tag, id)
		steps = append(steps,
			[]string{"netns", "add", ns},
			[]string{"link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns},
			[]string{"link", "set", veth, "master", p.bridge},
			[]string{"link", "set", veth, "up"},
			[]string{"-n", ns, "addr", "add", p.host(id) + "/24", "dev", "eth0"},
			[]string{"-n", ns, "link", "set", "eth0", "up"},
			[]string{"-n", ns, "link", "set", "lo", "up"},
		)
	}
	for _, s := range steps {
		if err := ipCmd(s...); err != nil {
			t.Skipf("cannot build the network namespaces (needs CAP_NET_ADMIN and CAP_SYS_ADMIN): %v", err)
		}
	}
	t.Logf("private network %s0/24: bridge %s, namespaces %s..%s", p.prefix, p.bridge, p.ns(1), p.ns(n))
	return p
}

func (p *privateNet) ns(id int) string     { return fmt.Sprintf("walrus-e2e-%s-%d", p.tag, id) }
func (p *privateNet) host(id int) string   { return p.prefix + strconv.Itoa(id) }
func (p *privateNet) wrap(id int) []string { return []string{"ip", "netns", "exec", p.ns(id)} }

// opts makes a cluster run on this network.
func (p *privateNet) opts(o clusterOpts) clusterOpts {
	o.host, o.wrap = p.host, p.wrap
	return o
}

// isolate cuts node k off from every other node, both ways.
func (p *privateNet) isolate(k int) {
	p.t.Helper()
	for j := 1; j <= p.n; j++ {
		if j == k {
			continue
		}
		for _, r := range [][2]int{{k, j}, {j, k}} {
			if err := ipCmd("-n", p.ns(r[0]), "route", "add", "blackhole", p.host(r[1])+"/32"); err != nil {
				p.t.Fatalf("isolate node %d: %v", k, err)
			}
			p.cut[r] = true
		}
	}
}

// heal removes every cut.
func (p *privateNet) heal() {
	p.t.Helper()
	for r := range p.cut {
		if err := ipCmd("-n", p.ns(r[0]), "route", "del", "blackhole", p.host(r[1])+"/32"); err != nil {
			p.t.Fatalf("heal: %v", err)
		}
		delete(p.cut, r)
	}
}

// teardown deletes the namespaces (their veths go with them) and the
// bridge. The nodes must be dead by now: t.Cleanup runs the cluster's
// cleanup first when the network was made first.
func (p *privateNet) teardown() {
	for id := 1; id <= p.n; id++ {
		if err := ipCmd("netns", "del", p.ns(id)); err != nil && !strings.Contains(err.Error(), "No such file") {
			p.t.Errorf("tear down the private network: %v", err)
		}
	}
	if err := ipCmd("link", "del", p.bridge); err != nil && !strings.Contains(err.Error(), "Cannot find device") {
		p.t.Errorf("tear down the private network: %v", err)
	}
}

func ipCmd(args ...string) error {
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// freeSubnet picks K such that no interface has an address in 10.77.K.0/24.
func freeSubnet() (int, error) {
	out, err := exec.Command("ip", "-o", "addr", "show").CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("ip -o addr show: %v: %s", err, out)
	}
	start := os.Getpid() % 250
	for i := range 250 {
		k := (start+i)%250 + 1
		if !bytes.Contains(out, []byte(fmt.Sprintf(" 10.77.%d.", k))) {
			return k, nil
		}
	}
	return 0, errors.New("all in use")
}

var staleName = regexp.MustCompile(`^(?:walrus-e2e-)?w(\d+)x\d+(?:b|h\d+|-\d+)(?:@\S*)?$`)

// removeStaleNets deletes namespaces and links left by a test binary that
// no longer runs (one killed before its cleanups ran).
func removeStaleNets(t *testing.T) {
	dead := func(name string) bool {
		m := staleName.FindStringSubmatch(name)
		if m == nil {
			return false
		}
		pid, _ := strconv.Atoi(m[1])
		return pid != os.Getpid() && errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
	}
	if out, err := exec.Command("ip", "netns", "list").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], "walrus-e2e-") && dead(f[0]) {
				t.Logf("removing stale network namespace %s", f[0])
				_ = ipCmd("netns", "del", f[0])
			}
		}
	}
	if out, err := exec.Command("ip", "-o", "link", "show").Output(); err == nil {
		for _, line := range strings.Split(string(out), "\n") {
			f := strings.Fields(line)
			if len(f) < 2 {
				continue
			}
			name := strings.TrimSuffix(f[1], ":")
			if dead(name) {
				t.Logf("removing stale link %s", name)
				_ = ipCmd("link", "del", strings.SplitN(name, "@", 2)[0])
			}
		}
	}
}
