package deploy

import (
	"bufio"
	"bytes"
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	yaml "go.yaml.in/yaml/v3"

	"github.com/walrus-go/walrus/internal/buildinputs"
)

// repoRoot is the module root (the tests run in deploy/).
var repoRoot = func() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err)
	}
	return filepath.Dir(wd)
}()

func repoPath(p ...string) string { return filepath.Join(append([]string{repoRoot}, p...)...) }

func readFile(t *testing.T, p ...string) []byte {
	t.Helper()
	b, err := os.ReadFile(repoPath(p...))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ---- the binary -----------------------------------------------------------

var (
	binMu   sync.Mutex
	binDir  string
	binDone = map[string]string{} // package -> built binary
)

// walrusBin builds cmd/walrus once per test run with the Dockerfile's own
// build command (so the tests also prove that command works here) and
// returns the binary's path.
func walrusBin(t *testing.T) string { t.Helper(); return dockerBuilt(t, "./cmd/walrus") }

// walrusCLIBin is walrusBin for cmd/walrus-cli.
func walrusCLIBin(t *testing.T) string { t.Helper(); return dockerBuilt(t, "./cmd/walrus-cli") }

func dockerBuilt(t *testing.T, pkg string) string {
	t.Helper()
	binMu.Lock()
	defer binMu.Unlock()
	if p, ok := binDone[pkg]; ok {
		return p
	}
	if binDir == "" {
		d, err := os.MkdirTemp("", "walrus-deploy-test-")
		if err != nil {
			t.Fatal(err)
		}
		binDir = d
	}
	df, err := parseDockerfile(readFile(t, "deploy", "docker", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	run, out, err := df.buildCommand(pkg)
	if err != nil {
		t.Fatal(err)
	}
	// the binary's sources are this test's inputs (go test's cache cannot
	// see what the build command reads)
	if _, err := buildinputs.Declare(repoRoot, pkg); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(binDir, filepath.Base(pkg))
	cmdline := strings.Replace(run, "-o "+out, "-o "+p, 1)
	cmd := exec.Command("/bin/sh", "-c", cmdline)
	cmd.Dir = repoRoot
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the Dockerfile's build command %q failed: %v\n%s", cmdline, err, b)
	}
	binDone[pkg] = p
	return p
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func readFileNoT(p string) []byte {
	b, err := os.ReadFile(p)
	if err != nil {
		panic(err)
	}
	return b
}

// isStatic reports whether the ELF binary at p needs no dynamic loader.
func isStatic(p string) (bool, error) {
	f, err := elf.Open(p)
	if err != nil {
		return false, err
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return false, nil
		}
	}
	return true, nil
}

// ---- the flag set, from --help ---------------------------------------------

// flagInfo is one flag as `walrus --help` prints it.
type flagInfo struct {
	Name    string
	Bool    bool
	Usage   string
	Default string // the "(default X)" the flag package printed, unquoted; "" if none
}

var helpLine = regexp.MustCompile(`^  -([A-Za-z0-9-]+)(?: (\S+))?$`)
var defaultSuffix = regexp.MustCompile(`\(default ([^()]*)\)$`)

// parseHelp reads the flag package's usage output.
func parseHelp(out string) (map[string]*flagInfo, error) {
	flags := map[string]*flagInfo{}
	var cur *flagInfo
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		if m := helpLine.FindStringSubmatch(line); m != nil {
			cur = &flagInfo{Name: m[1], Bool: m[2] == ""}
			flags[cur.Name] = cur
			continue
		}
		if cur != nil && strings.HasPrefix(line, "    \t") {
			if cur.Usage != "" {
				cur.Usage += " "
			}
			cur.Usage += strings.TrimPrefix(line, "    \t")
		}
	}
	for _, f := range flags {
		if m := defaultSuffix.FindStringSubmatch(f.Usage); m != nil {
			f.Default = m[1]
			if s, err := strconv.Unquote(f.Default); err == nil {
				f.Default = s
			}
		}
	}
	if len(flags) == 0 {
		return nil, fmt.Errorf("no flags found in:\n%s", out)
	}
	return flags, nil
}

var (
	flagsOnce sync.Once
	nodeFlags map[string]*flagInfo
	devFlags  map[string]*flagInfo
	flagsErr  error
)

// helpFlags returns the flags of `walrus` and of `walrus dev`.
func helpFlags(t *testing.T) (node, dev map[string]*flagInfo) {
	t.Helper()
	bin := walrusBin(t)
	flagsOnce.Do(func() {
		// the flag package prints usage to stderr; walrus exits 0 on
		// --help, walrus dev exits 2: only the text matters here
		out, _ := exec.Command(bin, "--help").CombinedOutput()
		if nodeFlags, flagsErr = parseHelp(string(out)); flagsErr != nil {
			return
		}
		out, _ = exec.Command(bin, "dev", "--help").CombinedOutput()
		devFlags, flagsErr = parseHelp(string(out))
	})
	if flagsErr != nil {
		t.Fatal(flagsErr)
	}
	return nodeFlags, devFlags
}

// arg is one flag of a command line and its value.
type arg struct{ Name, Value string }

// parseArgs reads a command line the way Go's flag package does (-f, --f,
// -f=v, --f v; bool flags take no separate value) and fails on a flag the
// binary does not have or on a positional argument.
func parseArgs(args []string, known map[string]*flagInfo) ([]arg, error) {
	var out []arg
	for i := 0; i < len(args); i++ {
		a := args[i]
		if !strings.HasPrefix(a, "-") || a == "-" || a == "--" {
			return nil, fmt.Errorf("unexpected argument %q (walrus takes flags only)", a)
		}
		name := strings.TrimLeft(a, "-")
		value, hasValue := "", false
		if k, v, ok := strings.Cut(name, "="); ok {
			name, value, hasValue = k, v, true
		}
		if name == "help" || name == "h" {
			out = append(out, arg{"help", "true"})
			continue
		}
		f, ok := known[name]
		if !ok {
			return nil, fmt.Errorf("flag --%s is not in walrus --help", name)
		}
		if f.Bool {
			if !hasValue {
				value = "true"
			}
		} else if !hasValue {
			if i+1 >= len(args) {
				return nil, fmt.Errorf("flag --%s needs a value", name)
			}
			i++
			value = args[i]
		}
		out = append(out, arg{name, value})
	}
	return out, nil
}

// lookup returns the last value given for a flag (later flags win).
func lookup(args []arg, names ...string) (string, bool) {
	v, found := "", false
	for _, a := range args {
		if slices.Contains(names, a.Name) {
			v, found = a.Value, true
		}
	}
	return v, found
}

func lookupAll(args []arg, name string) []string {
	var out []string
	for _, a := range args {
		if a.Name == name {
			out = append(out, a.Value)
		}
	}
	return out
}

// ---- small parsers ------------------------------------------------------------

// dockerfile is a parsed Dockerfile: its instructions grouped by stage.
type dockerfile struct {
	stages []dockerStage
}

type dockerStage struct {
	from, name string
	instrs     []dockerInstr
}

type dockerInstr struct{ cmd, args string }

func parseDockerfile(b []byte) (*dockerfile, error) {
	df := &dockerfile{}
	var logical []string
	var cur strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") {
			continue
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\") + " ")
			continue
		}
		cur.WriteString(trimmed)
		if s := strings.TrimSpace(cur.String()); s != "" {
			logical = append(logical, s)
		}
		cur.Reset()
	}
	for _, l := range logical {
		cmd, rest, _ := strings.Cut(l, " ")
		cmd = strings.ToUpper(cmd)
		rest = strings.Join(strings.Fields(rest), " ")
		if cmd == "FROM" {
			f := strings.Fields(rest)
			st := dockerStage{from: f[0]}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				st.name = f[2]
			}
			df.stages = append(df.stages, st)
			continue
		}
		if len(df.stages) == 0 {
			return nil, fmt.Errorf("instruction %s before FROM", cmd)
		}
		st := &df.stages[len(df.stages)-1]
		st.instrs = append(st.instrs, dockerInstr{cmd, rest})
	}
	if len(df.stages) == 0 {
		return nil, fmt.Errorf("no FROM")
	}
	return df, nil
}

func (s *dockerStage) all(cmd string) []string {
	var out []string
	for _, in := range s.instrs {
		if in.cmd == cmd {
			out = append(out, in.args)
		}
	}
	return out
}

func (s *dockerStage) last(cmd string) string {
	a := s.all(cmd)
	if len(a) == 0 {
		return ""
	}
	return a[len(a)-1]
}

var goBuildOut = regexp.MustCompile(`-o (\S+)`)

// buildCommand returns the RUN command of the first stage that runs
// `go build` of pkg (./cmd/walrus), and the output path it gives -o.
func (df *dockerfile) buildCommand(pkg string) (run, out string, err error) {
	for _, in := range df.stages[0].instrs {
		if in.cmd == "RUN" && strings.Contains(in.args, "go build") && slices.Contains(strings.Fields(in.args), pkg) {
			m := goBuildOut.FindStringSubmatch(in.args)
			if m == nil {
				return "", "", fmt.Errorf("the build RUN has no -o: %s", in.args)
			}
			return in.args, m[1], nil
		}
	}
	return "", "", fmt.Errorf("no RUN ... go build %s in the first stage", pkg)
}

// jsonArray parses an exec-form instruction argument (["a", "b"]).
func jsonArray(s string) ([]string, error) {
	var out []string
	if err := yaml.Unmarshal([]byte(s), &out); err != nil || !strings.HasPrefix(s, "[") {
		return nil, fmt.Errorf("not an exec-form JSON array: %s", s)
	}
	return out, nil
}

// parseUnit reads a systemd unit: section -> key -> values (keys repeat).
func parseUnit(b []byte) map[string]map[string][]string {
	out := map[string]map[string][]string{}
	sec := ""
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		if strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]") {
			sec = strings.Trim(line, "[]")
			out[sec] = map[string][]string{}
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if ok && sec != "" {
			out[sec][strings.TrimSpace(k)] = append(out[sec][strings.TrimSpace(k)], strings.TrimSpace(v))
		}
	}
	return out
}

// parseEnvFile reads a systemd EnvironmentFile.
func parseEnvFile(b []byte) map[string]string {
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		if len(v) >= 2 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
			v = v[1 : len(v)-1]
		}
		out[strings.TrimSpace(k)] = v
	}
	return out
}

// expandExecStart expands %i and environment variables in an ExecStart
// line as systemd does: $VAR (unbraced) splits into words, ${VAR} is one
// word.
func expandExecStart(line, instance string, env map[string]string) []string {
	line = strings.ReplaceAll(line, "%i", instance)
	var out []string
	for _, w := range strings.Fields(line) {
		switch {
		case strings.HasPrefix(w, "${") && strings.HasSuffix(w, "}"):
			out = append(out, env[w[2:len(w)-1]])
		case strings.HasPrefix(w, "$"):
			out = append(out, strings.Fields(env[w[1:]])...)
		default:
			out = append(out, w)
		}
	}
	return out
}

// composeInterpolate resolves ${VAR}, ${VAR:-default} and $VAR like
// docker compose, from this process's environment.
func composeInterpolate(s string) string {
	return os.Expand(s, func(name string) string {
		if k, def, ok := strings.Cut(name, ":-"); ok {
			if v := os.Getenv(k); v != "" {
				return v
			}
			return def
		}
		return os.Getenv(name)
	})
}

// envVarsOfNode lists the WALRUS_* environment variables cmd/walrus reads,
// from its source.
func envVarsOfNode(t *testing.T) []string {
	t.Helper()
	re := regexp.MustCompile(`"(WALRUS_[A-Z0-9_]+)"`)
	files, err := filepath.Glob(repoPath("cmd", "walrus", "*.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no cmd/walrus sources: %v", err)
	}
	var out []string
	for _, f := range files {
		for _, m := range re.FindAllSubmatch(readFileNoT(f), -1) {
			if !slices.Contains(out, string(m[1])) {
				out = append(out, string(m[1]))
			}
		}
	}
	slices.Sort(out)
	if len(out) == 0 {
		t.Fatal("found no WALRUS_* variables in cmd/walrus")
	}
	return out
}

// splitHostPort is net.SplitHostPort with the port as an int.
func splitHostPort(s string) (string, int, error) {
	i := strings.LastIndex(s, ":")
	if i < 0 {
		return "", 0, fmt.Errorf("%q has no port", s)
	}
	p, err := strconv.Atoi(s[i+1:])
	if err != nil {
		return "", 0, fmt.Errorf("%q: bad port", s)
	}
	return s[:i], p, nil
}

func atoi(t *testing.T, what, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%s: %q is not a number", what, s)
	}
	return n
}

func mustYAML(t *testing.T, b []byte, v any, strict bool) {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(strict)
	if err := dec.Decode(v); err != nil {
		t.Fatal(err)
	}
}
