package walrus

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
)

// Style rules as tests (the project's known traps). Each rule names the
// trap it keeps out; per-package purity rules live next to the packages
// (segment/lint_test.go, raftfsm/lint_test.go).
func TestProjectStyleRules(t *testing.T) {
	fset := token.NewFileSet()
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "data") && path != "." {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		file, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			return err
		}
		for _, imp := range file.Imports {
			// a frozen copy of slog with incompatible types: use log/slog
			if strings.Trim(imp.Path.Value, `"`) == "golang.org/x/exp/slog" {
				t.Errorf("%s imports golang.org/x/exp/slog; use log/slog", path)
			}
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			sel, ok := call.Fun.(*ast.SelectorExpr)
			if !ok || sel.Sel.Name != "NewOneForOneStrategy" || len(call.Args) < 2 {
				return true
			}
			// NewOneForOneStrategy(10, 1000, d) is a 1 µs window: the
			// window must be a typed duration (10*time.Second)
			if lit, ok := call.Args[1].(*ast.BasicLit); ok {
				t.Errorf("%s: NewOneForOneStrategy window is the bare number %s (nanoseconds): write e.g. 10*time.Second", fset.Position(lit.Pos()), lit.Value)
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
