package testkit

import (
	"bytes"
	"fmt"
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
// (docs/testing.md, "Findings", lists the fixed ones too: KB1, KB2, KB3).
var KnownBugs = []KnownBug{
	{
		ID: "KB4",
		Title: "a removed node that leads an open segment leaves its topic stuck: the controller fails over only " +
			"nodes still in the metadata, RemoveNode deletes the node from it, and nothing re-replicates",
		Liveness: func(r *Result) bool {
			for _, p := range r.Problems {
				for _, id := range r.Removed {
					if strings.Contains(p, "active segment not open under a live leader") &&
						strings.Contains(p, fmt.Sprintf("Leader:%d ", id)) {
						return true
					}
				}
			}
			return false
		},
	},
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
