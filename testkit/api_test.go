package testkit_test

import (
	"math/rand"
	"os"
	"runtime"
	"testing"
	"testing/synctest"
	"time"

	"github.com/walrus-go/walrus/testkit"
)

// A test of its own, as a user outside this package writes one: a
// cluster in a bubble, a client, a crash of the segment leader; Shutdown
// leaves no goroutine behind, so synctest.Test returns (it panics with
// "blocked goroutines remain" otherwise).
func TestOwnClusterTest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		testkit.Seed(t, 7)
		c := testkit.NewCluster(testkit.ClusterConfig{Nodes: 3, Seed: 7, DataDir: t.TempDir()})
		if err := c.StartAll(); err != nil {
			t.Fatal(err)
		}
		if !c.WaitReady(30 * time.Second) {
			t.Fatal("no raft leader with every node caught up")
		}
		cl := testkit.NewClient(c.Net, "client1", c.Proc(1).ClientAddr(), 5*time.Second)
		defer cl.Close()
		for _, req := range []string{"REGISTER t", "PUT t a"} {
			if r, err := cl.Do([]byte(req)); err != nil || string(r) != "OK" {
				t.Fatalf("%s: %q %v", req, r, err)
			}
		}
		if hung := c.Shutdown(false); len(hung) > 0 {
			t.Fatalf("teardown of %v hung", hung)
		}
	})
}

// Seed makes math/rand's global source replay even where Go would ignore
// rand.Seed (GODEBUG randseednop=1, the default of a module without this
// package's go:debug line), runs on one P, and puts both back after.
func TestSeedPinsTheGlobals(t *testing.T) {
	t.Setenv("GODEBUG", "randseednop=1")
	prev := runtime.GOMAXPROCS(2)
	defer runtime.GOMAXPROCS(prev)
	var draws []int64
	for range 2 {
		t.Run("run", func(t *testing.T) {
			testkit.Seed(t, 42)
			if n := runtime.GOMAXPROCS(0); n != 1 {
				t.Errorf("GOMAXPROCS %d under Seed, want 1", n)
			}
			draws = append(draws, rand.Int63())
		})
	}
	if draws[0] != draws[1] {
		t.Errorf("two runs seeded 42 drew %d and %d", draws[0], draws[1])
	}
	if g := os.Getenv("GODEBUG"); g != "randseednop=1" {
		t.Errorf("GODEBUG %q after the runs, want it back", g)
	}
	if n := runtime.GOMAXPROCS(0); n != 2 {
		t.Errorf("GOMAXPROCS %d after the runs, want 2 back", n)
	}
}
