package deploy

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/walrus-go/walrus/wire"
)

// section returns the text of the "## ..." section whose heading starts
// with prefix (up to the next "## " heading).
func section(t *testing.T, doc, prefix string) string {
	t.Helper()
	parts := strings.Split("\n"+doc, "\n## ")
	for _, p := range parts[1:] {
		if strings.HasPrefix(p, prefix) {
			return p
		}
	}
	t.Fatalf("no section \"## %s\"", prefix)
	return ""
}

// tableRows maps the first cell of each table row (without backticks) to
// the whole row.
func tableRows(text string) map[string]string {
	rows := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(line, "| ") {
			continue
		}
		cells := strings.Split(line, "|")
		if len(cells) < 3 {
			continue
		}
		rows[strings.Trim(strings.TrimSpace(cells[1]), "`")] = line
	}
	return rows
}

// checkFlagTable: every flag of the binary has a row, with the default
// --help gives, and the table has no flag the binary lacks.
func checkFlagTable(t *testing.T, what, text string, flags map[string]*flagInfo) {
	t.Helper()
	rows := tableRows(text)
	for name, f := range flags {
		row, ok := rows["--"+name]
		if !ok {
			t.Errorf("%s: walrus --help has --%s; the table has no row for it", what, name)
			continue
		}
		// | `--flag` | `default` | meaning |
		if cells := strings.Split(row, "|"); f.Default != "" && (len(cells) < 4 || !strings.Contains(cells[2], "`"+f.Default+"`")) {
			t.Errorf("%s: --%s defaults to %q (walrus --help); its row's default column says otherwise: %s", what, name, f.Default, row)
		}
	}
	for k := range rows {
		if name, ok := strings.CutPrefix(k, "--"); ok {
			if _, known := flags[name]; !known {
				t.Errorf("%s: the table documents --%s, which walrus --help does not have", what, name)
			}
		}
	}
}

// TestConfigurationDocCoversEverySetting: docs/configuration.md has a row
// for every flag of walrus and walrus dev and for every WALRUS_* variable
// cmd/walrus reads, each with its default; it explains the fsync modes.
func TestConfigurationDocCoversEverySetting(t *testing.T) {
	doc := string(readFile(t, "docs", "configuration.md"))
	node, dev := helpFlags(t)
	checkFlagTable(t, "## Flags", section(t, doc, "Flags"), node)
	checkFlagTable(t, "## `walrus dev`", section(t, doc, "`walrus dev`"), dev)

	// environment: every variable, with the default and minimum the source
	// passes to envUint
	rows := tableRows(section(t, doc, "Environment variables"))
	src := string(readFile(t, "cmd", "walrus", "main.go"))
	re := regexp.MustCompile(`envUint\("(WALRUS_[A-Z0-9_]+)", ([0-9_]+), ([0-9_]+)\)`)
	found := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(src, -1) {
		name, def, min := m[1], strings.ReplaceAll(m[2], "_", ""), strings.ReplaceAll(m[3], "_", "")
		found[name] = true
		row, ok := rows[name]
		if !ok {
			t.Errorf("configuration.md: no row for %s", name)
			continue
		}
		if !strings.Contains(row, "`"+def+"`") || !strings.Contains(row, "Minimum "+min) {
			t.Errorf("configuration.md: %s has default %s and minimum %s in cmd/walrus; its row says %s", name, def, min, row)
		}
	}
	for _, v := range envVarsOfNode(t) {
		if !found[v] {
			t.Errorf("cmd/walrus reads %s other than through envUint; document it and extend this test", v)
		}
	}

	// the fsync modes parseSync accepts
	fs := section(t, doc, "Durability")
	for _, mode := range []string{"`always`", "`batch`", "`interval:<d>`", "`never`"} {
		if !strings.Contains(fs, mode) {
			t.Errorf("configuration.md: the durability section does not explain %s", mode)
		}
	}
}

// docCommand is one command line found in the docs.
type docCommand struct {
	doc, line string
	env       []string
	prog      string // "walrus", "walrus dev", "walrus-cli" or "walrus-req"
	args      []string
}

var walrusProgs = []string{"bin/walrus", "walrus", "./walrus", "/usr/local/bin/walrus"}

// parseDocCommand reads a shell line from the docs; ok is false for lines
// that do not run walrus or walrus-req.
func parseDocCommand(line string) (c docCommand, ok bool) {
	f := strings.Fields(line)
	var words []string
	for _, w := range f {
		if w == "&" || w == "&&" || w == "|" || w == ";" || strings.HasPrefix(w, ">") || strings.HasPrefix(w, "2>") || strings.HasPrefix(w, "#") {
			break
		}
		words = append(words, w)
	}
	for len(words) > 0 && (words[0] == "sudo" || regexp.MustCompile(`^[A-Z_][A-Z0-9_]*=`).MatchString(words[0])) {
		if words[0] != "sudo" {
			c.env = append(c.env, words[0])
		}
		words = words[1:]
	}
	if len(words) >= 3 && words[0] == "go" && words[1] == "run" && words[2] == "./cmd/walrus" {
		words = append([]string{"walrus"}, words[3:]...)
	}
	// walrus-cli inside a container: docker compose ... exec node1 walrus-cli ...,
	// kubectl exec walrus-0 -- walrus-cli ...
	if len(words) > 0 && (words[0] == "docker" || words[0] == "kubectl") && slices.Contains(words, "exec") {
		for i, w := range words {
			if w == "walrus-cli" {
				words = words[i:]
				break
			}
		}
	}
	switch {
	case len(words) == 0:
		return c, false
	case words[0] == "deploy/walrus-req" && (len(words) == 1 || slices.Contains(words, "HOST:PORT")):
		return c, false // the tool's name or its usage line
	case words[0] == "deploy/walrus-req":
		c.prog, c.args = "walrus-req", words[1:]
	case words[0] == "walrus-cli" || strings.HasSuffix(words[0], "/walrus-cli"):
		c.prog, c.args = "walrus-cli", words[1:]
	case slices.Contains(walrusProgs, words[0]):
		c.prog, c.args = "walrus", words[1:]
		if len(c.args) > 0 && c.args[0] == "dev" {
			c.prog, c.args = "walrus dev", c.args[1:]
		}
	default:
		return c, false
	}
	if slices.ContainsFunc(c.args, func(a string) bool { return strings.HasPrefix(a, "[") }) {
		return c, false // a usage synopsis ("[--addr host:port] [command [args]]"), not a command
	}
	c.line = line
	return c, true
}

// prose returns a markdown text without its fenced code blocks, so that
// pairing backticks for inline code cannot run across a fence.
func prose(doc string) string {
	var out []string
	in := false
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			in = !in
			continue
		}
		if !in {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// docBlocks returns the fenced code blocks of a markdown text, each as its
// lines (backslash continuations joined).
func docBlocks(doc string) [][]string {
	var blocks [][]string
	var cur []string
	in := false
	for _, line := range strings.Split(doc, "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "```") {
			if in {
				blocks = append(blocks, cur)
				cur = nil
			}
			in = !in
			continue
		}
		if in {
			if n := len(cur); n > 0 && strings.HasSuffix(cur[n-1], "\\") {
				cur[n-1] = strings.TrimSuffix(cur[n-1], "\\") + " " + trimmed
				continue
			}
			cur = append(cur, trimmed)
		}
	}
	return blocks
}

var inlineCode = regexp.MustCompile("`([^`]+)`")

// docCommands finds every walrus and walrus-req command in the docs: in
// code blocks and in inline code.
func docCommands(t *testing.T) []docCommand {
	t.Helper()
	var out []docCommand
	docs, err := filepath.Glob(repoPath("docs", "*.md"))
	if err != nil || len(docs) == 0 {
		t.Fatalf("no docs/*.md (%v)", err)
	}
	docs = append(docs, repoPath("README.md"))
	for _, path := range docs {
		name, _ := filepath.Rel(repoPath(), path)
		doc := string(readFileNoT(path))
		for _, b := range docBlocks(doc) {
			for _, line := range b {
				if c, ok := parseDocCommand(line); ok {
					c.doc = name
					out = append(out, c)
				}
			}
		}
		for _, m := range inlineCode.FindAllStringSubmatch(strings.ReplaceAll(prose(doc), "\n", " "), -1) {
			if c, ok := parseDocCommand(m[1]); ok {
				c.doc = name
				out = append(out, c)
			}
		}
	}
	return out
}

var wireCommands = []string{wire.CmdRegister, wire.CmdPut, wire.CmdGet, wire.CmdState, wire.CmdMetrics, wire.CmdRead,
	wire.CmdMPut, wire.CmdGroupRead, wire.CmdCommit, wire.CmdLeader, wire.CmdGetW, wire.CmdNodes, wire.CmdRetention, wire.CmdRemoveNode}

// cliUsage returns walrus-cli's flags and subcommands, from its --help.
func cliUsage(t *testing.T) (flags, commands []string) {
	t.Helper()
	out, err := exec.Command(walrusCLIBin(t), "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("walrus-cli --help: %v\n%s", err, out)
	}
	for _, m := range regexp.MustCompile(`\[--([a-z-]+) [^\]]+\]`).FindAllStringSubmatch(string(out), -1) {
		flags = append(flags, m[1])
	}
	_, cmds, _ := strings.Cut(string(out), "\ncommands")
	for _, m := range regexp.MustCompile(`(?m)^  ([a-z][a-z-]*)(?: |$)`).FindAllStringSubmatch(cmds, -1) {
		commands = append(commands, m[1])
	}
	if len(flags) == 0 || len(commands) < 5 {
		t.Fatalf("could not read walrus-cli --help:\n%s", out)
	}
	return flags, commands
}

// checkCLIArgs: [--flag value | --flag=value]... [subcommand args...]
func checkCLIArgs(args, flags, commands []string) error {
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		name, _, hasValue := strings.Cut(strings.TrimLeft(args[0], "-"), "=")
		if !slices.Contains(flags, name) {
			return fmt.Errorf("walrus-cli has no flag --%s (it has %v)", name, flags)
		}
		args = args[1:]
		if !hasValue {
			if len(args) == 0 {
				return fmt.Errorf("--%s needs a value", name)
			}
			args = args[1:]
		}
	}
	if len(args) > 0 && !slices.Contains(commands, args[0]) {
		return fmt.Errorf("walrus-cli has no subcommand %q (it has %v)", args[0], commands)
	}
	return nil
}

// TestDocsCommandsAreValid: every walrus command line in the docs uses
// flags the binary has, every walrus-cli line flags and a subcommand
// walrus-cli has, and every walrus-req line an address and a command the
// node knows.
func TestDocsCommandsAreValid(t *testing.T) {
	node, dev := helpFlags(t)
	cliFlags, cliCommands := cliUsage(t)
	envVars := envVarsOfNode(t)
	cmds := docCommands(t)
	if len(cmds) < 10 {
		t.Fatalf("found only %d commands in the docs: is the parser broken?", len(cmds))
	}
	for _, c := range cmds {
		for _, e := range c.env {
			if k, _, _ := strings.Cut(e, "="); !slices.Contains(envVars, k) {
				t.Errorf("%s: %q sets %s, which walrus does not read", c.doc, c.line, k)
			}
		}
		switch c.prog {
		case "walrus":
			if _, err := parseArgs(c.args, node); err != nil {
				t.Errorf("%s: %q: %v", c.doc, c.line, err)
			}
		case "walrus dev":
			if _, err := parseArgs(c.args, dev); err != nil {
				t.Errorf("%s: %q: %v", c.doc, c.line, err)
			}
		case "walrus-cli":
			if err := checkCLIArgs(c.args, cliFlags, cliCommands); err != nil {
				t.Errorf("%s: %q: %v", c.doc, c.line, err)
			}
		case "walrus-req":
			if len(c.args) < 2 {
				t.Errorf("%s: %q: want walrus-req HOST:PORT REQUEST", c.doc, c.line)
				continue
			}
			if _, _, err := splitHostPort(c.args[0]); err != nil {
				t.Errorf("%s: %q: %v", c.doc, c.line, err)
			}
			if !slices.Contains(wireCommands, c.args[1]) {
				t.Errorf("%s: %q: %s is not a command of the client protocol", c.doc, c.line, c.args[1])
			}
		}
	}
}

// TestOperationsDocClustersForm runs every code block of operations.md
// that starts several nodes, as written (hosts and ports moved to free
// loopback ones, data in a temporary folder), and checks that the nodes
// form a cluster.
func TestOperationsDocClustersForm(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 3-node clusters")
	}
	walrusBin(t)
	doc := string(readFile(t, "docs", "operations.md"))
	n := 0
	for _, b := range docBlocks(doc) {
		var specs []nodeSpec
		for _, line := range b {
			if c, ok := parseDocCommand(line); ok && c.prog == "walrus" {
				specs = append(specs, nodeSpec{name: fmt.Sprintf("node %d", len(specs)+1), args: c.args, env: c.env})
			}
		}
		if len(specs) < 2 {
			continue
		}
		n++
		block := b
		t.Run(fmt.Sprintf("block%d", n), func(t *testing.T) {
			for _, s := range specs {
				t.Logf("from the docs: walrus %s", strings.Join(s.args, " "))
			}
			c := startFromFile(t, specs, false)
			c.waitFormed()
			c.exercise("docs")
			// the block's walrus-cli lines, run against this cluster
			for _, line := range block {
				if dc, ok := parseDocCommand(line); ok && dc.prog == "walrus-cli" {
					c.runCLI(dc)
				}
			}
		})
	}
	if n < 3 {
		t.Errorf("found %d cluster blocks in operations.md, want 3 (one machine, three machines, --initial-peer)", n)
	}
}

// runCLI runs a walrus-cli line from the docs against the cluster, its
// --addr (default 127.0.0.1:9091, node 1) moved to where that node listens
// here. Only subcommands that change nothing are run.
func (c *liveCluster) runCLI(dc docCommand) {
	c.t.Helper()
	addr, rest := "127.0.0.1:9091", dc.args
	for len(rest) > 1 && strings.HasPrefix(rest[0], "--") {
		if rest[0] == "--addr" {
			addr = rest[1]
		}
		rest = rest[2:]
	}
	if len(rest) == 0 || !slices.Contains([]string{"nodes", "metrics", "state"}, rest[0]) {
		return
	}
	_, port, err := splitHostPort(addr)
	if err != nil {
		c.t.Fatal(err)
	}
	node := -1
	ref := refLayout(c.t)
	for i := range c.specs {
		if ref(i+1).client == port {
			node = i
		}
	}
	if node < 0 {
		c.t.Fatalf("%q: %s is no node's client address", dc.line, addr)
	}
	args := append([]string{"--addr", fmt.Sprintf("127.0.0.1:%d", c.addrs[node].client)}, rest...)
	out, err := exec.Command(walrusCLIBin(c.t), args...).CombinedOutput()
	if err != nil {
		c.t.Errorf("%q (run as walrus-cli %s): %v\n%s", dc.line, strings.Join(args, " "), err, out)
		return
	}
	c.t.Logf("%q: %s", dc.line, strings.TrimSpace(string(out)))
}
