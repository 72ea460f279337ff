package testkit

import (
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestScenarios runs the scripts in testdata/scenarios (datadriven; rewrite
// the expectations with -rewrite). See docs/testing.md for the commands.
func TestScenarios(t *testing.T) {
	if *flagSeed != 0 {
		t.Skip("-seed given: TestSim runs it")
	}
	datadriven.Walk(t, "testdata/scenarios", func(t *testing.T, path string) { RunScenario(t, path) })
}
