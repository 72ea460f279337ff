//go:build tools

// Package walrus pins the stack's modules in go.mod before every package that
// uses them exists (the conventional tools.go pattern; never built).
package walrus

import (
	_ "github.com/hashicorp/raft"
	_ "github.com/hashicorp/raft-boltdb/v2"
	_ "github.com/vmihailenco/msgpack/v5"
)
