package testkit

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
// (docs/testing.md, "Findings", lists every one found: KB1-KB9 are fixed).
var KnownBugs = []KnownBug{}

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
