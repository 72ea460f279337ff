// Package buildinputs is for tests that build a binary of this module with
// `go build` in a child process (e2e, deploy) and then test that binary.
// go test caches a passing result keyed by the test binary and by the
// files and environment the test itself consulted; it cannot see what a
// child process read. Without this, `go test ./...` after a change to the
// node answered "ok (cached)" for tests of the old node.
package buildinputs

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// Declare stats every source file of this module that building pkgs (run
// from dir) compiles, and the module's go.mod and go.sum, so that go
// test's cache counts them as inputs of the calling test: a change to any
// of them runs the test again. It returns the files it declared.
func Declare(dir string, pkgs ...string) ([]string, error) {
	// The main module's packages only: dependencies are pinned by go.sum,
	// the standard library by the toolchain, which the test binary already
	// depends on.
	const format = `{{if and .Module .Module.Main}}{{.Dir}}{{range .GoFiles}}|{{.}}{{end}}{{range .EmbedFiles}}|{{.}}{{end}}{{end}}`
	args := append([]string{"list", "-deps", "-f", format}, pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list %v: %w: %s", pkgs, err, stderr.Bytes())
	}
	var files []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		parts := strings.Split(sc.Text(), "|")
		if len(parts) < 2 {
			continue
		}
		for _, f := range parts[1:] {
			files = append(files, filepath.Join(parts[0], f))
		}
	}
	env := exec.Command("go", "env", "GOMOD")
	env.Dir = dir // the module of dir, as for go list above
	gomod, err := env.Output()
	if err != nil {
		return nil, fmt.Errorf("go env GOMOD: %w", err)
	}
	if mod := strings.TrimSpace(string(gomod)); mod != "" && mod != os.DevNull {
		files = append(files, mod, filepath.Join(filepath.Dir(mod), "go.sum"))
	}
	for _, f := range files {
		if _, err := os.Stat(f); err != nil {
			return nil, err
		}
	}
	return files, nil
}
