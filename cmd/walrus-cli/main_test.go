package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/walrus-go/walrus/actors"
	"github.com/walrus-go/walrus/internal/testcluster"
)

// buildCLI compiles walrus-cli into a temporary directory.
func buildCLI(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "walrus-cli")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// startCluster starts a 3-node in-process cluster (internal/testcluster)
// and returns its nodes' client addresses.
func startCluster(t *testing.T) []string {
	t.Helper()
	return testcluster.Start(t, 3, nil).Addrs()
}

type result struct {
	stdout, stderr string
	code           int
}

// cli runs the binary with args (and stdin) and returns what it printed.
func cli(t *testing.T, bin, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

func TestCLI(t *testing.T) {
	bin := buildCLI(t)
	addrs := startCluster(t)
	a := "--addr=" + addrs[1]

	// want checks one command's stdout, stderr and exit status exactly.
	want := func(args []string, stdout, stderr string, code int) {
		t.Helper()
		r := cli(t, bin, "", args...)
		if r.stdout != stdout || r.stderr != stderr || r.code != code {
			t.Fatalf("walrus-cli %q:\n stdout %q\n stderr %q\n exit %d\nwant\n stdout %q\n stderr %q\n exit %d",
				args, r.stdout, r.stderr, r.code, stdout, stderr, code)
		}
	}
	args := func(s ...string) []string { return append([]string{a}, s...) }

	want(args("register", "logs"), "OK\n", "", 0)
	want(args("register", "logs"), "OK\n", "", 0)
	want(args("register", "solo", "rf=1"), "OK\n", "", 0)
	want(args("put", "logs", "hello", "world"), "OK\n", "", 0)
	want(args("put", "logs", "tab\there"), "OK\n", "", 0)
	want(args("mput", "logs", "a", "b c"), "OK 2 2\n", "", 0)
	want(args("get", "logs"), "hello world\n", "", 0)
	want(args("getw", "logs", "100"), "tab\there\n", "", 0)
	want(args("read", "logs", "0", "10"), "0\thello world\n1\t\"tab\\there\"\n2\ta\n3\tb c\n", "", 0)
	want(args("read", "logs", "3"), "3\tb c\n", "", 0)
	want(args("read", "logs", "99"), "EMPTY\n", "", 0)
	want(args("get", "logs"), "a\n", "", 0)
	want(args("get", "logs"), "b c\n", "", 0)
	want(args("get", "logs"), "EMPTY\n", "", 0)
	want(args("getw", "logs", "20"), "EMPTY\n", "", 0)
	want(args("groupread", "logs", "billing", "2"), "0\thello world\n1\t\"tab\\there\"\n", "", 0)
	want(args("commit", "logs", "audit", "3"), "OK\n", "", 0)
	want(args("groupread", "logs", "audit", "10", "0"), "3\tb c\n", "", 0)
	want(args("groupread", "logs", "done", "10", "20"), "0\thello world\n1\t\"tab\\there\"\n2\ta\n3\tb c\n", "", 0)

	// administration and retention
	want(args("retention", "logs", "max_segments=5"), "OK\n", "", 0)
	want(args("retention", "nope", "max_segments=5"), "", "ERR unknown topic nope\n", 1)
	want(args("retention", "logs", "size=1"), "", "ERR RETENTION option \"size=1\" must be max_age_ms=N, max_bytes=N or max_segments=N\n", 1)
	if r := cli(t, bin, "", args("remove-node", "x")...); r.code != 2 || !strings.Contains(r.stderr, `node id "x" is not a non-negative integer`) {
		t.Fatalf("remove-node x: %+v", r)
	}
	if r := cli(t, bin, "", args("nodes")...); r.code != 0 || !strings.HasPrefix(r.stdout, `[{"id":1,`) {
		t.Fatalf("nodes: %+v", r)
	}

	// JSON outputs
	r := cli(t, bin, "", args("state", "logs")...)
	var st map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &st) != nil || st["current_segment"] != 1.0 {
		t.Fatalf("state: %+v", r)
	}
	r = cli(t, bin, "", args("metrics")...)
	var m map[string]any
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &m) != nil || m["membership_config"] == nil {
		t.Fatalf("metrics: %+v", r)
	}
	r = cli(t, bin, "", args("leader", "logs")...)
	var seg, node uint64
	var addr string
	if _, err := fmt.Sscanf(r.stdout, "%d %d %s\n", &seg, &node, &addr); err != nil || r.code != 0 ||
		seg != 1 || node < 1 || node > 3 || addr != addrs[node-1] {
		t.Fatalf("leader: %+v (nodes %v)", r, addrs)
	}

	// ERR replies: stderr, exit 1
	want(args("put", "nope", "x"), "", "ERR unknown topic nope\n", 1)
	want(args("get", "nope"), "", "ERR unknown topic nope\n", 1)
	want(args("state", "nope"), "", "ERR unknown topic nope\n", 1)
	want(args("read", "logs", "0", "0"), "", "ERR READ max must be an integer from 1 to 10000\n", 1)
	want(args("register", "x", "rf=0"), "", "ERR REGISTER rf must be an integer from 1 to 255\n", 1)
	want(args("leader", "nope"), "", "ERR unknown topic nope\n", 1)

	// usage errors: exit 2, nothing sent
	for _, bad := range [][]string{
		{"frobnicate"}, {"put", "logs"}, {"get"}, {"get", "a", "b"}, {"read", "logs"},
		{"read", "logs", "x"}, {"commit", "logs", "g"}, {"register", "t", "3"}, {"metrics", "x"},
		{"getw", "logs"}, {"--nope"}, {"getw", "logs", "-5"}, {"groupread", "logs", "g", "1", "-5"},
		{"groupread", "logs", "g", "1", "300001"},
	} {
		r := cli(t, bin, "", args(bad...)...)
		if r.code != 2 || r.stdout != "" || !strings.Contains(r.stderr, "usage: walrus-cli") {
			t.Errorf("walrus-cli %q: %+v, want usage and exit 2", bad, r)
		}
	}

	// a node that is not there
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := ln.Addr().String()
	ln.Close()
	if r := cli(t, bin, "", "--addr", dead, "get", "logs"); r.code != 1 || !strings.Contains(r.stderr, "connection refused") {
		t.Errorf("unreachable node: %+v", r)
	}
}

func TestCLIPrompt(t *testing.T) {
	bin := buildCLI(t)
	addrs := startCluster(t)
	r := cli(t, bin, "REGISTER p\n\n  PUT p one two  \nMPUT p 1\nput p x\n", "--addr", addrs[2])
	wantOut, wantErr := "OK\nOK\n", "ERR MPUT requires a newline after the count\nERR unknown command\n"
	if r.stdout != wantOut || r.stderr != wantErr || r.code != 0 {
		t.Fatalf("prompt:\n stdout %q\n stderr %q\n exit %d\nwant\n stdout %q\n stderr %q", r.stdout, r.stderr, r.code, wantOut, wantErr)
	}
	input := strings.Join([]string{
		"GET p",
		"GET p",
		"READ p 0 5",
		"STATE nope",
		"quit",
		"PUT p after-quit",
	}, "\n") + "\n"
	r = cli(t, bin, input, "--addr", addrs[2])
	wantOut = "OK one two\nEMPTY\nOK 0 1\n0\tone two\n"
	wantErr = "ERR unknown topic nope\n"
	if r.stdout != wantOut || r.stderr != wantErr || r.code != 0 {
		t.Fatalf("prompt:\n stdout %q\n stderr %q\n exit %d\nwant\n stdout %q\n stderr %q", r.stdout, r.stderr, r.code, wantOut, wantErr)
	}
	// nothing after quit ran; end of input also leaves
	for _, word := range []string{"exit", "q", "QUIT"} {
		r = cli(t, bin, "READ p 1\n"+word+"\nPUT p no\n", "--addr", addrs[0])
		if r.stdout != "EMPTY\n" || r.code != 0 {
			t.Fatalf("%s: %+v", word, r)
		}
	}
	r = cli(t, bin, "READ p 0 10\nMETRICS", "--addr", addrs[0])
	if !strings.HasPrefix(r.stdout, "OK 0 1\n0\tone two\n{") || r.code != 0 {
		t.Fatalf("EOF: %+v", r)
	}
}

// A READ stops at a segment's end; `walrus-cli read` goes on from there,
// so it prints the log up to max whatever the segments: here five entries
// in segments of two.
func TestCLIReadAcrossSegments(t *testing.T) {
	bin := buildCLI(t)
	addrs := testcluster.Start(t, 3, func(c *actors.Config) { c.MaxSegmentEntries = 2 }).Addrs()
	a := "--addr=" + addrs[0]
	if r := cli(t, bin, "", a, "register", "small"); r.code != 0 {
		t.Fatalf("register: %+v", r)
	}
	for _, p := range []string{"e0", "e1", "e2", "e3", "e4"} {
		if r := cli(t, bin, "", a, "put", "small", p); r.code != 0 {
			t.Fatalf("put %s: %+v", p, r)
		}
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"read", "small", "0", "10"}, "0\te0\n1\te1\n2\te2\n3\te3\n4\te4\n"},
		{[]string{"read", "small", "1", "3"}, "1\te1\n2\te2\n3\te3\n"},
		{[]string{"read", "small", "3", "2"}, "3\te3\n4\te4\n"},
		{[]string{"read", "small", "1"}, "1\te1\n"},
		{[]string{"read", "small", "5", "10"}, "EMPTY\n"},
		{[]string{"read", "small", "2", "50000"}, "2\te2\n3\te3\n4\te4\n"}, // past READ's 10000: asked in parts
	} {
		if r := cli(t, bin, "", append([]string{a}, c.args...)...); r.stdout != c.want || r.stderr != "" || r.code != 0 {
			t.Errorf("walrus-cli %q: %+v, want stdout %q", c.args, r, c.want)
		}
	}
}
