package raftfsm

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// forbiddenImports keeps the state machine pure: no clock, no global or
// seeded randomness of its own, no files, processes or sockets.
var forbiddenImports = []string{"time", "math/rand", "math/rand/v2", "crypto/rand", "os", "net", "syscall", "unsafe"}

// allowedModules are the only non-standard-library imports (DESIGN.md).
var allowedModules = []string{
	"github.com/vmihailenco/msgpack/v5",
	"github.com/walrus-go/walrus/messages",
}

// TestPurity fails if a non-test file of this package imports something
// that does I/O, reads a clock or draws randomness, imports a module other
// than msgpack and messages, or starts a goroutine.
func TestPurity(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		checked++
		for _, imp := range f.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if bad := importProblem(path); bad != "" {
				t.Errorf("%s: import %q: %s", fset.Position(imp.Pos()), path, bad)
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if g, ok := n.(*ast.GoStmt); ok {
				t.Errorf("%s: go statement in the state machine", fset.Position(g.Pos()))
			}
			return true
		})
	}
	if checked < 5 {
		t.Fatalf("only %d files checked: is the test running in the package directory?", checked)
	}
}

func importProblem(path string) string {
	for _, f := range forbiddenImports {
		if path == f || strings.HasPrefix(path, f+"/") {
			return "forbidden in a pure state machine"
		}
	}
	if first, _, _ := strings.Cut(path, "/"); strings.Contains(first, ".") {
		for _, m := range allowedModules {
			if path == m || strings.HasPrefix(path, m+"/") {
				return ""
			}
		}
		return "module not allowed (only msgpack and messages)"
	}
	return ""
}

func TestImportProblem(t *testing.T) {
	for path, bad := range map[string]bool{
		"time": true, "os": true, "os/exec": true, "net": true, "net/http": true, "math/rand": true,
		"math/rand/v2": true, "fmt": false, "timeout": false, "sort": false, "osx": false,
		"github.com/vmihailenco/msgpack/v5": false, "github.com/walrus-go/walrus/messages": false,
		"github.com/walrus-go/walrus/wal": true, "github.com/hashicorp/raft": true,
	} {
		if got := importProblem(path) != ""; got != bad {
			t.Errorf("importProblem(%q) = %v, want %v", path, got, bad)
		}
	}
}
