package actors

import (
	"bytes"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// While the node stops, raft's warnings and errors are demoted to Info (a
// whole cluster stopping at once makes every raft complain about the
// others); before that they keep their level, and children made with
// Named or With follow the same switch.
func TestRaftLoggerDemotesWhileStopping(t *testing.T) {
	var stopping atomic.Bool
	var buf bytes.Buffer
	base := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))

	atWarn := NewRaftLogger(base, slog.LevelWarn, stopping.Load, nil)
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

	atInfo := NewRaftLogger(base, slog.LevelInfo, stopping.Load, nil)
	atInfo.Named("transport").Error("failed to appendEntries to")
	if got := buf.String(); !strings.Contains(got, `level=INFO msg="failed to appendEntries to"`) || !strings.Contains(got, "component=transport") {
		t.Fatalf("while stopping, at an Info floor, raft's errors are logged at Info:\n%s", got)
	}

	buf.Reset()
	NewRaftLogger(base, slog.LevelWarn, nil, nil).Error("no stop hook")
	if !strings.Contains(buf.String(), "level=ERROR") {
		t.Fatalf("without a stop hook nothing is demoted:\n%s", buf.String())
	}
}

// A peer that stays down makes raft repeat the same complaint several
// times a second: the first is logged, then one per window with the count
// of those held back; another peer's or another message's complaints are
// their own runs, and lines below Warn are never held back.
func TestRaftLoggerHoldsBackRepeats(t *testing.T) {
	var buf bytes.Buffer
	base := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	now := time.Unix(1000, 0)
	lg := NewRaftLogger(base, slog.LevelInfo, nil, func() time.Time { return now })
	repl := lg.Named("replication")
	complain := func(peer string) {
		repl.Error("failed to heartbeat to", "peer", peer, "backoff time", now.Unix(), "error", "connection refused")
	}
	lines := func() []string {
		defer buf.Reset()
		return strings.FieldsFunc(buf.String(), func(r rune) bool { return r == '\n' })
	}

	for i := 0; i < 5; i++ {
		complain("n2")
		now = now.Add(250 * time.Millisecond)
	}
	complain("n3")
	lg.Warn("failed to contact", "server-id", 2)
	lg.Warn("failed to contact", "server-id", 3)
	lg.Warn("failed to contact quorum of nodes")
	lg.Info("entering follower state")
	lg.Info("entering follower state")
	got := lines()
	if len(got) != 7 || !strings.Contains(got[0], "peer=n2") || strings.Contains(got[0], "held_back") ||
		!strings.Contains(got[1], "peer=n3") || !strings.Contains(got[3], "server-id=3") || !strings.Contains(got[4], "quorum") {
		t.Fatalf("first of each complaint, and every Info line, logged; got:\n%s", strings.Join(got, "\n"))
	}

	// the peer stays down: raft goes on complaining, held back, until a
	// window after the last line logged
	now = now.Add(raftRepeatWindow - 2*time.Second) // 58.75 s after the first
	complain("n2")
	if got := lines(); len(got) != 0 {
		t.Fatalf("within the window: %s", strings.Join(got, "\n"))
	}
	now = now.Add(2 * time.Second)
	complain("n2")
	complain("n2")
	got = lines()
	if len(got) != 1 || !strings.Contains(got[0], "peer=n2") || !strings.Contains(got[0], "held_back=5") {
		t.Fatalf("a window later, one line counting the five held back; got:\n%s", strings.Join(got, "\n"))
	}

	// n2 comes back (quiet for hours), then goes down again: the new
	// outage's first line does not carry the last one's count
	now = now.Add(3 * time.Hour)
	complain("n2")
	got = lines()
	if len(got) != 1 || strings.Contains(got[0], "held_back") {
		t.Fatalf("a new outage's first line; got:\n%s", strings.Join(got, "\n"))
	}
}
