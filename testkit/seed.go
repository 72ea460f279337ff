package testkit

import (
	"math/rand"
	"os"
	"runtime"
	"testing"
	"testing/cryptotest"
)

// Seed makes a simulation in t replay from seed as far as it can
// (docs/testing.md, "How deterministic is a run"): it seeds math/rand's
// global source, from which hashicorp/raft draws its election jitter
// (setting GODEBUG randseednop=0 for the rest of t, without which Go
// ignores rand.Seed), and crypto/rand, from which protoactor and raft draw
// ids; and it runs the process on one P (GOMAXPROCS 1), so that the
// bubble's goroutines interleave alike from run to run. Everything is
// restored when t ends. Run and RunScenario call it; a test that builds
// its own Cluster calls it first thing inside synctest.Test. These are
// process-wide: simulations run in parallel (t.Parallel) share them and
// do not replay.
func Seed(t *testing.T, seed int64) {
	t.Helper()
	prevProcs := runtime.GOMAXPROCS(1)
	prevDebug, hadDebug := os.LookupEnv("GODEBUG")
	debug := "randseednop=0"
	if prevDebug != "" {
		debug = prevDebug + "," + debug // the last setting of a name wins
	}
	os.Setenv("GODEBUG", debug)
	t.Cleanup(func() {
		if hadDebug {
			os.Setenv("GODEBUG", prevDebug)
		} else {
			os.Unsetenv("GODEBUG")
		}
		runtime.GOMAXPROCS(prevProcs)
	})
	//lint:ignore SA1019 deliberate: raft's jitter comes from the global source
	rand.Seed(seed) //nolint:staticcheck // deliberate: raft's jitter comes from the global source
	cryptotest.SetGlobalRandom(t, uint64(seed))
}
