package actors

import (
	"bytes"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
)

// While the node stops, raft's warnings and errors are demoted to Info (a
// whole cluster stopping at once makes every raft complain about the
// others); before that they keep their level, and children made with
// Named or With follow the same switch.
func TestRaftLoggerDemotesWhileStopping(t *testing.T) {
	var stopping atomic.Bool
	var buf bytes.Buffer
	base := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))

	atWarn := NewRaftLogger(base, slog.LevelWarn, stopping.Load)
	child := atWarn.Named("transport").With("peer", "p1")
	atWarn.Error("failed to heartbeat to")
	child.Warn("failed to decode incoming command")
	got := buf.String()
	if !strings.Contains(got, `level=ERROR msg="failed to heartbeat to"`) ||
		!strings.Contains(got, `level=WARN msg="failed to decode incoming command"`) {
		t.Fatalf("before the stop, raft's errors and warnings keep their level:\n%s", got)
	}

	buf.Reset()
	stopping.Store(true)
	atWarn.Error("failed to heartbeat to")
	child.Warn("failed to decode incoming command")
	if buf.Len() != 0 {
		t.Fatalf("while stopping, at a Warn floor, raft's complaints are dropped; got:\n%s", buf.String())
	}

	atInfo := NewRaftLogger(base, slog.LevelInfo, stopping.Load)
	atInfo.Named("transport").Error("failed to appendEntries to")
	if got := buf.String(); !strings.Contains(got, `level=INFO msg="failed to appendEntries to"`) || !strings.Contains(got, "component=transport") {
		t.Fatalf("while stopping, at an Info floor, raft's errors are logged at Info:\n%s", got)
	}

	buf.Reset()
	NewRaftLogger(base, slog.LevelWarn, nil).Error("no stop hook")
	if !strings.Contains(buf.String(), "level=ERROR") {
		t.Fatalf("without a stop hook nothing is demoted:\n%s", buf.String())
	}
}
