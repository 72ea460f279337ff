package deploy

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
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
	"github.com/walrus-go/walrus/wire"
)

// nodeSpec is one node as a deployment file starts it.
type nodeSpec struct {
	name string   // service or pod name (for logs)
	args []string // the command line the file gives walrus
	env  []string // NAME=value the file sets
}

// liveCluster is a cluster of real walrus processes on loopback.
type liveCluster struct {
	t      *testing.T
	specs  []nodeSpec
	addrs  []layout // where each node listens after rewriting
	procs  []*exec.Cmd
	logs   []string
	cmdArg [][]string
}

// startFromFile starts the nodes with the files' command lines, changed only
// where this machine needs it: every host (0.0.0.0, service and pod names,
// machine addresses) becomes 127.0.0.1, --data-dir a temporary folder, and
// ports move to free ones unless preferRef and the reference ports are
// free. A --join or --initial-peer address is mapped to the node that
// advertises that host and listens on that port. Ports a command line
// leaves out get their defaults (9090+id ...), as the node would.
func startFromFile(t *testing.T, specs []nodeSpec, preferRef bool) *liveCluster {
	t.Helper()
	bin := walrusBin(t)
	flags, _ := helpFlags(t)
	ref := refLayout(t)
	dir := t.TempDir()
	c := &liveCluster{t: t, specs: specs}
	type portKey struct{ node, port int }
	parsed := make([][]arg, len(specs))
	hosts := make([]string, len(specs))
	var keys []portKey
	for i, s := range specs {
		args, err := parseArgs(s.args, flags)
		if err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		id := 1
		if v, ok := lookup(args, "node-id"); ok {
			id = atoi(t, s.name+" --node-id", v)
		}
		if id != i+1 {
			t.Fatalf("%s: node id %d, want %d (nodes in id order)", s.name, id, i+1)
		}
		def := ref(id)
		for _, p := range []struct {
			names []string
			def   int
		}{{[]string{"client-port", "port"}, def.client}, {[]string{"raft-port"}, def.raft}, {[]string{"http-port"}, def.http}} {
			if _, ok := lookup(args, p.names...); !ok {
				args = append(args, arg{p.names[0], strconv.Itoa(p.def)})
			}
		}
		hosts[i] = "127.0.0.1"
		if v, ok := lookup(args, "raft-host"); ok {
			hosts[i] = v
		}
		if v, ok := lookup(args, "raft-advertise-host"); ok {
			hosts[i] = v
		}
		parsed[i] = args
		for _, a := range args {
			switch a.Name {
			case "client-port", "port", "raft-port", "http-port":
				keys = append(keys, portKey{i, atoi(t, a.Name, a.Value)})
			}
		}
	}
	ports := map[portKey]int{}
	useRef := preferRef
	if useRef {
		seen := map[int]bool{}
		for _, k := range keys {
			if seen[k.port] || !testport.IsFree(k.port) {
				useRef = false
				break
			}
			seen[k.port] = true
		}
	}
	for _, k := range keys {
		if useRef {
			ports[k] = k.port
		} else {
			ports[k] = testport.Free(t)
		}
	}
	if preferRef && !useRef {
		t.Logf("reference ports busy: using free ports instead")
	}
	mapAddr := func(node int, v string) string {
		h, p, err := splitHostPort(v)
		if err != nil {
			t.Fatalf("%s: %v", specs[node].name, err)
		}
		for target := range specs {
			if mp, ok := ports[portKey{target, p}]; ok && hosts[target] == h {
				return fmt.Sprintf("127.0.0.1:%d", mp)
			}
		}
		t.Fatalf("%s: %s is the address of none of the nodes (advertised hosts %v)", specs[node].name, v, hosts)
		return ""
	}
	for i, s := range specs {
		var out []string
		var l layout
		for _, a := range parsed[i] {
			v := a.Value
			switch a.Name {
			case "client-host", "raft-host", "http-host", "raft-advertise-host", "client-advertise-host", "http-advertise-host":
				v = "127.0.0.1"
			case "client-port", "port":
				v = strconv.Itoa(ports[portKey{i, atoi(t, a.Name, v)}])
				l.client = atoi(t, a.Name, v)
			case "raft-port":
				v = strconv.Itoa(ports[portKey{i, atoi(t, a.Name, v)}])
				l.raft = atoi(t, a.Name, v)
			case "http-port":
				v = strconv.Itoa(ports[portKey{i, atoi(t, a.Name, v)}])
				l.http = atoi(t, a.Name, v)
			case "join":
				v = mapAddr(i, v)
			case "initial-peer":
				id, addr, ok := strings.Cut(v, "@")
				if !ok {
					id, addr, _ = strings.Cut(v, "=")
				}
				v = id + "@" + mapAddr(i, addr)
			case "data-dir":
				v = filepath.Join(dir, "data")
			case "log-file":
				v = filepath.Join(dir, filepath.Base(v))
			}
			out = append(out, "--"+a.Name+"="+v)
		}
		c.addrs = append(c.addrs, l)
		c.cmdArg = append(c.cmdArg, out)
		c.logs = append(c.logs, filepath.Join(dir, strings.ReplaceAll(s.name, " ", "_")+".log"))
	}
	t.Cleanup(c.stop)
	for i, s := range specs {
		logf, err := os.Create(c.logs[i])
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, c.cmdArg[i]...)
		cmd.Stdout, cmd.Stderr = logf, logf
		cmd.Env = append(os.Environ(), s.env...)
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", s.name, err)
		}
		logf.Close()
		c.procs = append(c.procs, cmd)
		t.Logf("%s: walrus %s", s.name, strings.Join(c.cmdArg[i], " "))
	}
	return c
}

// stop sends SIGTERM to every node (as compose, kubelet and systemd do),
// waits, and shows the logs if the test failed.
func (c *liveCluster) stop() {
	for _, p := range c.procs {
		_ = p.Process.Signal(syscall.SIGTERM)
	}
	for i, p := range c.procs {
		done := make(chan error, 1)
		go func() { done <- p.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				c.t.Errorf("%s exited after SIGTERM with %v", c.specs[i].name, err)
			}
		case <-time.After(20 * time.Second):
			_ = p.Process.Kill()
			<-done
			c.t.Errorf("%s did not stop within 20s of SIGTERM", c.specs[i].name)
		}
	}
	if c.t.Failed() {
		for i, l := range c.logs {
			b, _ := os.ReadFile(l)
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			c.t.Logf("---- %s log (tail) ----\n%s", c.specs[i].name, b)
		}
	}
}

// request sends one client-protocol request to node i and returns the reply.
func (c *liveCluster) request(i int, req string) (string, error) {
	conn, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", c.addrs[i].client), 2*time.Second)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	w := bufio.NewWriter(conn)
	if err := wire.WriteFrame(w, []byte(req)); err != nil {
		return "", err
	}
	if err := w.Flush(); err != nil {
		return "", err
	}
	b, err := wire.NewFrameReader(conn, 16<<20).ReadFrame()
	return string(b), err
}

func (c *liveCluster) must(i int, req, want string) {
	c.t.Helper()
	got, err := c.request(i, req)
	if err != nil || got != want {
		c.t.Fatalf("%s: %q -> %q, %v; want %q", c.specs[i].name, req, got, err, want)
	}
}

func (c *liveCluster) httpGet(i int, path string) (int, string, error) {
	cl := http.Client{Timeout: 5 * time.Second}
	resp, err := cl.Get(fmt.Sprintf("http://127.0.0.1:%d%s", c.addrs[i].http, path))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), err
}

type metricsJSON struct {
	ID               uint64  `json:"id"`
	State            string  `json:"state"`
	CurrentLeader    *uint64 `json:"current_leader"`
	MembershipConfig struct {
		Membership struct {
			Configs [][]uint64        `json:"configs"`
			Nodes   map[string]string `json:"nodes"`
		} `json:"membership"`
	} `json:"membership_config"`
	UnderReplicated *int `json:"under_replicated_segments"`
}

type nodeJSON struct {
	ID       uint64 `json:"id"`
	Raft     string `json:"raft"`
	Live     bool   `json:"live"`
	Suffrage string `json:"suffrage"`
}

// formed reports whether every node sees the same cluster of all of them:
// one leader, every node a voter and live, every node ready.
func (c *liveCluster) formed() (bool, string) {
	n := len(c.specs)
	var leader uint64
	leaders := 0
	for i := range c.specs {
		r, err := c.request(i, "METRICS")
		if err != nil {
			return false, fmt.Sprintf("%s METRICS: %v", c.specs[i].name, err)
		}
		var m metricsJSON
		if err := json.Unmarshal([]byte(r), &m); err != nil {
			return false, fmt.Sprintf("%s METRICS %q: %v", c.specs[i].name, r, err)
		}
		if m.ID != uint64(i+1) {
			return false, fmt.Sprintf("%s says it is node %d", c.specs[i].name, m.ID)
		}
		cfg := m.MembershipConfig.Membership.Configs
		if len(cfg) != 1 || len(cfg[0]) != n || len(m.MembershipConfig.Membership.Nodes) != n {
			return false, fmt.Sprintf("%s: membership %s", c.specs[i].name, r)
		}
		if m.CurrentLeader == nil || (leader != 0 && *m.CurrentLeader != leader) {
			return false, fmt.Sprintf("%s: leader %v (others: %d)", c.specs[i].name, m.CurrentLeader, leader)
		}
		leader = *m.CurrentLeader
		if m.State == "Leader" {
			leaders++
		}
		if m.UnderReplicated == nil {
			return false, "METRICS lacks under_replicated_segments"
		}
	}
	if leaders != 1 {
		return false, fmt.Sprintf("%d nodes say Leader", leaders)
	}
	r, err := c.request(0, "NODES")
	if err != nil {
		return false, err.Error()
	}
	var nodes []nodeJSON
	if err := json.Unmarshal([]byte(r), &nodes); err != nil || len(nodes) != n {
		return false, fmt.Sprintf("NODES %q", r)
	}
	for _, nd := range nodes {
		if !nd.Live || nd.Suffrage != "voter" {
			return false, fmt.Sprintf("NODES %q", r)
		}
	}
	for i := range c.specs {
		code, body, err := c.httpGet(i, "/readyz")
		if err != nil || code != http.StatusOK {
			return false, fmt.Sprintf("%s /readyz: %d %s %v", c.specs[i].name, code, body, err)
		}
	}
	return true, ""
}

func (c *liveCluster) waitFormed() {
	c.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		ok, why := c.formed()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("the cluster did not form within 90s: %s", why)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// exercise writes through the last node and reads through another.
func (c *liveCluster) exercise(topic string) {
	c.t.Helper()
	n := len(c.specs)
	c.must(0, "REGISTER "+topic, "OK")
	c.must(n-1, "PUT "+topic+" hello from "+c.specs[n-1].name, "OK")
	c.must(1, "GET "+topic, "OK hello from "+c.specs[n-1].name)
	c.must(0, "GET "+topic, "EMPTY")
}

// metricNames scrapes /metrics of every node and returns the metric names
// (from the # HELP lines).
func (c *liveCluster) metricNames() []string {
	c.t.Helper()
	var names []string
	re := regexp.MustCompile(`(?m)^# HELP (\S+) `)
	for i := range c.specs {
		code, body, err := c.httpGet(i, "/metrics")
		if err != nil || code != http.StatusOK {
			c.t.Fatalf("%s /metrics: %d %v", c.specs[i].name, code, err)
		}
		for _, m := range re.FindAllStringSubmatch(body, -1) {
			if !slices.Contains(names, m[1]) {
				names = append(names, m[1])
			}
		}
		if code, _, err := c.httpGet(i, "/healthz"); err != nil || code != http.StatusOK {
			c.t.Errorf("%s /healthz: %d %v", c.specs[i].name, code, err)
		}
	}
	return names
}

// TestComposeClusterForms starts three nodes with the compose file's
// commands and environment and checks that they form one cluster that
// takes writes and reads; it also runs deploy/walrus-req against it and
// checks the metric names docs/operations.md tells operators to watch.
func TestComposeClusterForms(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	cf := loadCompose(t)
	var specs []nodeSpec
	for _, name := range composeNames(cf) {
		s := cf.Services[name]
		var env []string
		for k, v := range s.Environment {
			env = append(env, k+"="+composeInterpolate(v))
		}
		specs = append(specs, nodeSpec{name: name, args: s.Command, env: env})
	}
	c := startFromFile(t, specs, true)
	c.waitFormed()
	c.exercise("compose")

	// the operator's tool from the docs, against the live cluster
	out, err := exec.Command("bash", repoPath("deploy", "walrus-req"), fmt.Sprintf("127.0.0.1:%d", c.addrs[1].client), "NODES").Output()
	if err != nil {
		t.Fatalf("walrus-req NODES: %v", err)
	}
	var nodes []nodeJSON
	if err := json.Unmarshal(out, &nodes); err != nil || len(nodes) != 3 {
		t.Errorf("walrus-req NODES printed %q (%v)", out, err)
	}
	// and walrus-cli, which the image also carries
	out, err = exec.Command(walrusCLIBin(t), "--addr", fmt.Sprintf("127.0.0.1:%d", c.addrs[2].client), "nodes").Output()
	if err != nil {
		t.Fatalf("walrus-cli nodes: %v", err)
	}
	if err := json.Unmarshal(out, &nodes); err != nil || len(nodes) != 3 {
		t.Errorf("walrus-cli nodes printed %q (%v)", out, err)
	}
	out, err = exec.Command("bash", repoPath("deploy", "walrus-req"), fmt.Sprintf("127.0.0.1:%d", c.addrs[0].client), "PUT", "nope", "x").Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || string(out) != "ERR unknown topic nope\n" {
		t.Errorf("walrus-req on an ERR reply: %q, %v; want the error and exit status 1", out, err)
	}

	// every walrus_* metric the operations guide names exists
	names := c.metricNames()
	doc := string(readFile(t, "docs", "operations.md"))
	for _, m := range regexp.MustCompile(`\bwalrus_[a-z0-9_-]*[a-z0-9]`).FindAllString(doc, -1) {
		if strings.ContainsAny(m, "0123456789-") {
			continue // a volume name (walrus_node1-data), not a metric
		}
		base := m
		for _, suf := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(m, suf); ok && slices.Contains(names, b) {
				base = b
			}
		}
		if !slices.Contains(names, base) {
			t.Errorf("docs/operations.md names metric %s; /metrics has no such metric", m)
		}
	}
}

// TestKubernetesPodsFormCluster starts three nodes with the command lines
// the StatefulSet's entrypoint script gives pods walrus-0..2 (every pod on
// the same ports, so they move to free ones here).
func TestKubernetesPodsFormCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node cluster")
	}
	m := loadK8s(t)
	c := m.container(t)
	var env []string
	for _, e := range c.Env {
		if e.ValueFrom == nil {
			env = append(env, e.Name+"="+e.Value)
		}
	}
	var specs []nodeSpec
	for ord := 0; ord < m.sts.Replicas; ord++ {
		pod := fmt.Sprintf("%s-%d", m.stsName, ord)
		specs = append(specs, nodeSpec{name: pod, args: podArgs(t, c, pod), env: env})
	}
	lc := startFromFile(t, specs, false)
	lc.waitFormed()
	lc.exercise("k8s")

	// scaling down as docs/operations.md says: remove the highest node
	// with walrus-cli; the others drop it and re-replicate its segments
	out, err := exec.Command(walrusCLIBin(t), "--addr", fmt.Sprintf("127.0.0.1:%d", lc.addrs[0].client), "remove-node", "3").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "OK" {
		t.Fatalf("walrus-cli remove-node 3: %q, %v", out, err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		r, err := lc.request(0, "METRICS")
		var m metricsJSON
		if err == nil && json.Unmarshal([]byte(r), &m) == nil && m.UnderReplicated != nil && *m.UnderReplicated == 0 &&
			len(m.MembershipConfig.Membership.Configs) == 1 && slices.Equal(m.MembershipConfig.Membership.Configs[0], []uint64{1, 2}) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after remove-node 3, METRICS still says %q (%v)", r, err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	lc.must(1, "PUT k8s after removal", "OK")
}
