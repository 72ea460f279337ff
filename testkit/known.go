package testkit

import (
	"bytes"
	"strings"
)

// A KnownBug is a node bug the testkit found, recognised by its signature
// so that the CI batch reports it (counted, with a replay line) without
// failing, until it is fixed. Each entry must match only its own mechanism:
// anything else stays a failure. Run with -strict to fail on these too.
type KnownBug struct {
	ID    string
	Title string
	// Violation matches a checker violation caused by the bug.
	Violation func(Violation) bool
	// Liveness matches a run that could not finish because of the bug.
	Liveness func(*Result) bool
}

// KnownBugs lists the bugs found so far that are not fixed on main
// (docs/testing.md, "Findings", lists the fixed ones too: KB1-KB4).
var KnownBugs = []KnownBug{
	{
		ID: "KB5",
		Title: "a node named leader of a new segment whose WAL cannot create the file (disk full, fenced WAL) logs " +
			"\"create segment file; not leading\" and never retries; it is alive, so nothing fails the segment " +
			"over, and the topic is stuck until that node restarts",
		Liveness: func(r *Result) bool {
			if r.Logs == nil || !bytes.Contains(r.Logs.Bytes(), []byte("create segment file; not leading")) {
				return false
			}
			for _, p := range r.Problems {
				if strings.Contains(p, "final read") || strings.Contains(p, "did not settle") {
					return true
				}
			}
			return false
		},
	},
	{
		ID: "KB8",
		Title: "WAL recovery counts as durable whatever the file holds, without syncing it, and Seal does not " +
			"sync a segment recovered that way: bytes written before a failed fsync (or by a process that died " +
			"before syncing) end up in a sealed file that a power cut can tear; the node then refuses its disk " +
			"(TestWALRecoveredBytesAreSyncedBeforeSeal)",
		Violation: func(v Violation) bool {
			return v.Rule == RuleDiskRefused && strings.Contains(v.Detail, ".sealed")
		},
		Liveness: func(r *Result) bool {
			for _, x := range r.Refusals {
				if strings.Contains(x, ".sealed") {
					return true
				}
			}
			return false
		},
	},
	{
		ID: "KB9",
		Title: "a follower that could not create a segment's file (disk full) advances its in-memory end on every " +
			"failed append (the error path resets it from wal.Info, which fails for a missing segment); a recovery " +
			"sync to it later fetches from that end, gets nothing and fails, and recoverSegment retries silently " +
			"forever: the segment stays fenced (scenario follower_disk_full_at_segment_open)",
		Liveness: func(r *Result) bool {
			if r.Logs == nil || !bytes.Contains(r.Logs.Bytes(), []byte("wal: unknown segment")) {
				return false
			}
			for _, p := range r.Problems {
				if strings.Contains(p, "not open under a live leader") && strings.Contains(p, "State:fenced") {
					return true
				}
			}
			return false
		},
	},
}

// classifyKnown splits a verdict's violations into known and unexplained
// ones and names the known bugs behind the run's liveness problems.
func classifyKnown(res *Result) {
	v := res.Verdict
	var rest []Violation
	for _, x := range v.Violations {
		matched := false
		for _, kb := range KnownBugs {
			if kb.Violation != nil && kb.Violation(x) {
				v.Known = append(v.Known, KnownHit{Bug: kb.ID, Violation: x})
				matched = true
				break
			}
		}
		if !matched {
			rest = append(rest, x)
		}
	}
	v.Violations = rest
	if len(res.Problems) > 0 {
		for _, kb := range KnownBugs {
			if kb.Liveness != nil && kb.Liveness(res) {
				v.KnownLiveness = append(v.KnownLiveness, kb.ID)
			}
		}
	}
}

// KnownHit is a violation explained by a known bug.
type KnownHit struct {
	Bug       string
	Violation Violation
}
