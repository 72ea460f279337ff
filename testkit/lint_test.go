package testkit

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"
)

// TestPurity keeps the parts that must depend on the seed alone pure: the
// schedule generator and the checker may not read the clock, use
// math/rand's global source, or start goroutines (STYLE.md item 8).
func TestPurity(t *testing.T) {
	for _, file := range []string{"schedule.go", "check.go", "known.go"} {
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, file, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]string{} // local name -> import path
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			name := importName(p)
			if im.Name != nil {
				name = im.Name.Name
			}
			names[name] = p
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch x := n.(type) {
			case *ast.GoStmt:
				t.Errorf("%s: go statement", fset.Position(x.Pos()))
			case *ast.SelectorExpr:
				id, ok := x.X.(*ast.Ident)
				if !ok {
					return true
				}
				switch names[id.Name] {
				case "math/rand", "math/rand/v2":
					if x.Sel.Name != "New" && x.Sel.Name != "NewSource" && x.Sel.Name != "Rand" {
						t.Errorf("%s: global %s.%s (use the seeded *rand.Rand)", fset.Position(x.Pos()), id.Name, x.Sel.Name)
					}
				case "time":
					if x.Sel.Name == "Now" || x.Sel.Name == "Since" || x.Sel.Name == "Sleep" || x.Sel.Name == "After" {
						t.Errorf("%s: time.%s", fset.Position(x.Pos()), x.Sel.Name)
					}
				}
			}
			return true
		})
	}
}

// importName is the name an unnamed import gets: the path's last element,
// or the one before a major-version suffix ("math/rand/v2" is rand).
func importName(p string) string {
	parts := strings.Split(p, "/")
	last := parts[len(parts)-1]
	if len(parts) > 1 && len(last) > 1 && last[0] == 'v' && strings.Trim(last[1:], "0123456789") == "" {
		return parts[len(parts)-2]
	}
	return last
}
