//go:debug randseednop=0

package testkit

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
)

var (
	flagSeed      = flag.Int64("seed", 0, "rerun this one seed (TestSim); the other Sim tests skip")
	flagSeeds     = flag.Int("seeds", 20, "TestSimBatch/TestSimPlantedBug: how many seeds (CI: 200, see .ci/sim.sh; TestSimPlantedBug: 200 unless given)")
	flagFirst     = flag.Int64("first", 1, "TestSimBatch: the first seed")
	flagPlant     = flag.Bool("plant", false, "TestSim/TestSimBatch: run with the planted bug (AckBeforeQuorum)")
	flagSimLog    = flag.Bool("simlog", false, "print the nodes' logs (Info and above)")
	flagDebugLog  = flag.Bool("debuglog", false, "Debug level for -simlog and for the logs kept in artifacts")
	flagTrace     = flag.Bool("simtrace", false, "print the trace of every run")
	flagRawCrash  = flag.Bool("rawcrash", false, "crash nodes with actors.Node.Crash alone (reproduces the cursor busy loop)")
	flagArtifacts = flag.String("simartifacts", "", "write the trace, schedule and logs of failing runs here (default: a temp dir)")
	flagStrict    = flag.Bool("strict", false, "fail runs that hit a known node bug too")
	flagRepeat    = flag.Int("repeat", 2, "TestSimDeterminism: runs per seed")
	flagDetSeeds  = flag.Int("detseeds", 1, "TestSimDeterminism: how many seeds")
	flagTries     = flag.Int("tries", 1, "TestSim: rerun the seed up to this many times until it fails (see -want)")
	flagWant      = flag.String("want", "", "TestSim with -tries: stop at a verdict naming this rule or known bug (e.g. KB3, lost-ack)")
	flagStrictDet = flag.Bool("strictdet", false, "TestSimDeterminism: fail when two runs of a seed differ")
)

func TestMain(m *testing.M) {
	flag.Parse()
	// One P: with GOMAXPROCS=1 and the seeded sources, goroutines of the
	// bubble interleave the same way from run to run (see docs/testing.md
	// for how far that goes).
	runtime.GOMAXPROCS(1)
	os.Exit(m.Run())
}

// keptLevel is the level of logs kept for artifacts (-debuglog: Debug).
func keptLevel() slog.Level {
	if *flagDebugLog {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

func simLogger() *slog.Logger {
	if !*flagSimLog {
		return nil
	}
	lv := slog.LevelInfo
	if *flagDebugLog {
		lv = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lv}))
}

func report(t *testing.T, res *Result, trace bool) {
	t.Helper()
	if trace {
		var b strings.Builder
		for _, l := range res.Trace {
			b.WriteString(l)
			b.WriteByte('\n')
		}
		fmt.Print(b.String())
	}
	t.Logf("seed %d: schedule %s trace %s; %v virtual in %v; %s", res.Seed, res.ScheduleHash, res.TraceHash,
		res.Virtual.Round(1e6), res.Wall.Round(1e6), res.Verdict.Summary())
	for _, p := range res.Problems {
		t.Logf("seed %d: %s", res.Seed, p)
	}
}

func failed(res *Result) bool { return !res.Verdict.OK() }

// save writes a failing run's artifacts and logs where they went.
func save(t *testing.T, res *Result) {
	t.Helper()
	dir := *flagArtifacts
	if dir == "" {
		dir = filepath.Join(os.TempDir(), "walrus-sim-artifacts")
	}
	if p, err := res.WriteArtifacts(dir); err != nil {
		t.Logf("seed %d: writing artifacts: %v", res.Seed, err)
	} else {
		t.Logf("seed %d: trace, schedule and logs: %s (and .schedule/.log next to it)", res.Seed, p)
	}
}

// TestSim runs one seed (-seed, default 1) and prints its trace with -v.
// Runs are not bit-for-bit repeatable (docs/testing.md): -tries N reruns
// the seed until it fails (or, with -want, until the verdict names that
// rule or known bug), at most N times.
func TestSim(t *testing.T) {
	seed := *flagSeed
	if seed == 0 {
		seed = 1
	}
	tries := max(*flagTries, 1)
	var res *Result
	for try := 1; try <= tries; try++ {
		res = Run(t, Options{Seed: seed, Plant: *flagPlant, RawCrash: *flagRawCrash, Logger: simLogger(),
			KeepLogs: *flagTries > 1 || *flagArtifacts != "", LogLevel: keptLevel()})
		hit := failed(res)
		if *flagWant != "" {
			// one whole element of the key ("lost-ack", "KB3", "liveness"):
			// -want ok must not match lost-ack
			words := strings.FieldsFunc(res.Key(), func(r rune) bool { return r == ',' || r == '|' })
			hit = slices.Contains(words, *flagWant)
		}
		if tries > 1 {
			t.Logf("try %d: %s", try, res.Key())
		}
		if hit || try == tries {
			break
		}
	}
	report(t, res, testing.Verbose() || *flagTrace)
	if *flagArtifacts != "" || (failed(res) && tries > 1) {
		save(t, res)
	}
	if failed(res) {
		for _, v := range res.Verdict.Violations {
			t.Errorf("%v", v)
		}
		t.Errorf("replay: %s", ReplayCommand(seed, *flagPlant))
	}
}

// TestSimBatch runs -seeds seeds from -first (CI: 200) and fails on any
// unexplained safety violation or liveness problem, printing the line that
// replays each failing seed. Runs that hit a known node bug (known.go) are
// counted and listed; -strict fails them too.
func TestSimBatch(t *testing.T) {
	if *flagSeed != 0 {
		t.Skip("-seed given: TestSim runs it")
	}
	b := runBatch(t, *flagFirst, *flagSeeds, *flagPlant)
	t.Logf("%s", b.summary())
}

type batchResult struct {
	first         int64
	n             int
	bad, liveness []int64
	known         map[string][]int64
	wall, virt    float64
}

func (b *batchResult) summary() string {
	var ks []string
	for _, kb := range KnownBugs {
		if seeds := b.known[kb.ID]; len(seeds) > 0 {
			ks = append(ks, fmt.Sprintf("%s in %d runs %v", kb.ID, len(seeds), head64(seeds, 8)))
		}
	}
	return fmt.Sprintf("batch: %d seeds from %d: %d unexplained safety failures %v, %d unexplained liveness failures %v; known bugs: %s; mean %.2fs wall, %.1fs virtual per run",
		b.n, b.first, len(b.bad), b.bad, len(b.liveness), b.liveness, strings.Join(ks, "; "), b.wall/float64(b.n), b.virt/float64(b.n))
}

func head64(xs []int64, n int) []int64 {
	if len(xs) > n {
		return xs[:n]
	}
	return xs
}

// runBatch runs n seeds and reports failures through t.
func runBatch(t *testing.T, first int64, n int, plant bool) *batchResult {
	b := &batchResult{first: first, n: n, known: map[string][]int64{}}
	for i := 0; i < n; i++ {
		seed := first + int64(i)
		res := Run(t, Options{Seed: seed, Plant: plant, RawCrash: *flagRawCrash, Logger: simLogger(), KeepLogs: true})
		b.wall += res.Wall.Seconds()
		b.virt += res.Virtual.Seconds()
		if *flagTrace {
			report(t, res, true)
		}
		for _, id := range res.Verdict.KnownIDs() {
			b.known[id] = append(b.known[id], seed)
		}
		strictFail := *flagStrict && len(res.Verdict.KnownIDs()) > 0
		switch {
		case res.Failed() || strictFail:
			if failed(res) {
				b.bad = append(b.bad, seed)
			} else {
				b.liveness = append(b.liveness, seed)
			}
			report(t, res, false)
			for _, v := range res.Verdict.Violations {
				t.Errorf("seed %d: %v", seed, v)
			}
			save(t, res)
			t.Errorf("seed %d FAILED; replay: %s", seed, ReplayCommand(seed, plant))
		case len(res.Verdict.KnownIDs()) > 0:
			t.Logf("seed %d: known node bugs %v (replay: %s)", seed, res.Verdict.KnownIDs(), ReplayCommand(seed, plant))
		}
	}
	return b
}

// TestSimDeterminism runs the same seed several times (-detseeds seeds from
// -first, -repeat runs each; CI: 1 seed twice) and compares them. The
// schedule (every client op and fault) must be identical: it is drawn from
// the seed alone. The trace (what the cluster answered, when) is compared by
// hash and by how long it stays identical; see docs/testing.md for the
// numbers and why runs diverge. -strictdet makes a trace difference fail.
func TestSimDeterminism(t *testing.T) {
	if *flagSeed != 0 {
		t.Skip("-seed given: TestSim runs it")
	}
	var same, total, sameOutcomes int
	var fracSum, outSum float64
	agree := 0
	for i := 0; i < *flagDetSeeds; i++ {
		seed := *flagFirst + int64(i)
		var runs []*Result
		for k := 0; k < *flagRepeat; k++ {
			runs = append(runs, Run(t, Options{Seed: seed, Plant: *flagPlant}))
		}
		base := runs[0]
		hashes := map[string]int{}
		for _, r := range runs {
			hashes[r.TraceHash]++
		}
		for k, r := range runs[1:] {
			total++
			if r.ScheduleHash != base.ScheduleHash {
				t.Errorf("seed %d run %d: schedule %s differs from run 1's %s: the schedule must depend on the seed alone",
					seed, k+2, r.ScheduleHash, base.ScheduleHash)
			}
			d := Diverge(base.Trace, r.Trace)
			if d.Identical {
				same++
			} else if *flagStrictDet {
				t.Errorf("seed %d run %d: trace differs from run 1 at %s", seed, k+2, d)
			}
			fracSum += d.Fraction
			if r.Key() == base.Key() {
				agree++
			}
			oa := OutcomeAgreement(base.Outcomes, r.Outcomes)
			outSum += oa
			if r.OutcomeHash == base.OutcomeHash {
				sameOutcomes++
			}
			t.Logf("seed %d run %d vs 1: schedule %s=%s trace %s vs %s: %s; outcomes %s vs %s (%.1f%% agree); verdict %q vs %q",
				seed, k+2, r.ScheduleHash, base.ScheduleHash, r.TraceHash, base.TraceHash, d, r.OutcomeHash, base.OutcomeHash,
				100*oa, r.Key(), base.Key())
		}
		t.Logf("seed %d: %d runs, %d distinct traces", seed, len(runs), len(hashes))
	}
	if total > 0 {
		t.Logf("determinism: %d of %d repeats had the identical trace; on average the first %.1f%% of a run (virtual time) was identical; identical client outcomes in %d of %d, %.1f%% of client outcomes agreed (up to each client's first difference); verdicts agreed in %d of %d",
			same, total, 100*fracSum/float64(total), sameOutcomes, total, 100*outSum/float64(total), agree, total)
	}
}

// TestSimPlantedBug proves the checker has teeth: with the planted bug
// (actors.Config.AckBeforeQuorum: a segment leader acknowledges writes on
// its own copy alone) the CI batch's seeds must produce a safety violation
// that no known bug explains. It runs the batch's seeds in order and stops
// at the first one caught: 200 of them unless -seeds says otherwise, also
// under a plain `go test ./...`. About one seed in seven to fifteen catches
// it (seeds 5, 13 and 19 of the first 20), and the runs are not bit-for-bit
// deterministic: in one CI run on 2026-11-28 all three missed under the
// load of the other packages' tests, so 20 seeds were not enough.
func TestSimPlantedBug(t *testing.T) {
	if *flagSeed != 0 {
		t.Skip("-seed given: TestSim runs it")
	}
	seeds := plantedSeeds
	flag.Visit(func(f *flag.Flag) {
		if f.Name == "seeds" {
			seeds = *flagSeeds
		}
	})
	for i := 0; i < seeds; i++ {
		seed := *flagFirst + int64(i)
		res := Run(t, Options{Seed: seed, Plant: true, KeepLogs: true})
		if failed(res) {
			t.Logf("planted bug caught by seed %d (the %d. seed of the batch): %v", seed, i+1, res.Verdict.Rules())
			for _, v := range res.Verdict.Violations {
				t.Logf("  %v", v)
			}
			t.Logf("replay: %s", ReplayCommand(seed, true))
			return
		}
	}
	t.Fatalf("the planted bug (AckBeforeQuorum) went unnoticed in all %d seeds from %d", seeds, *flagFirst)
}

// plantedSeeds is how many seeds TestSimPlantedBug may take without
// -seeds: the CI batch's 200, which all miss the bug about once in ten
// million (docs/testing.md, "The planted bug").
const plantedSeeds = 200
