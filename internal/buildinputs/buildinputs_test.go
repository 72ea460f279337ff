package buildinputs

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The node's inputs include its own main package, a package deep in its
// imports, go.mod and go.sum; not the test files, not other modules'.
func TestDeclareListsTheNodesSources(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	files, err := Declare(root, "./cmd/walrus")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"cmd/walrus/main.go", "actors/cursor.go", "wal/wal.go", "go.mod", "go.sum"} {
		if !slices.Contains(files, filepath.Join(root, want)) {
			t.Errorf("%s not declared (%d files)", want, len(files))
		}
	}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			t.Errorf("test file declared: %s", f)
		}
		if rel, err := filepath.Rel(root, f); err != nil || strings.HasPrefix(rel, "..") {
			t.Errorf("file outside the module declared: %s", f)
		}
	}
	if _, err := Declare(root, "./no/such/package"); err == nil {
		t.Error("an unknown package was not an error")
	}
}
