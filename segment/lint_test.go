package segment

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Decision code stays pure: no clock reads, no global randomness, no
// goroutines, no I/O packages.
func TestDecisionCodeIsPure(t *testing.T) {
	forbiddenImports := map[string]bool{"math/rand": true, "math/rand/v2": true, "os": true, "net": true, "sync": true}
	forbiddenCalls := map[string]bool{"time.Now": true, "time.Since": true, "time.Until": true, "time.After": true, "time.Sleep": true, "time.NewTimer": true, "time.NewTicker": true, "time.AfterFunc": true, "time.Tick": true}
	files, _ := filepath.Glob("*.go")
	fset := token.NewFileSet()
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		file, err := parser.ParseFile(fset, f, src, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range file.Imports {
			if p := strings.Trim(imp.Path.Value, `"`); forbiddenImports[p] {
				t.Errorf("%s imports %s", f, p)
			}
		}
		ast.Inspect(file, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.GoStmt:
				t.Errorf("%s: go statement at %s", f, fset.Position(x.Pos()))
			case *ast.SelectorExpr:
				if id, ok := x.X.(*ast.Ident); ok && forbiddenCalls[id.Name+"."+x.Sel.Name] {
					t.Errorf("%s: %s.%s at %s", f, id.Name, x.Sel.Name, fset.Position(x.Pos()))
				}
			}
			return true
		})
	}
}
