package e2e

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/walrus-go/walrus/internal/buildinputs"
)

// walrusBin is the node binary TestMain builds for the whole run.
var walrusBin string

// declareInputs makes the binary's sources inputs of this run for go
// test's cache, which cannot see what TestMain's go build read. It runs
// from a test (spawn): go test records the files a run consults only
// once m.Run has begun.
var declareInputs = sync.OnceValue(func() error {
	_, err := buildinputs.Declare(".", "github.com/walrus-go/walrus/cmd/walrus")
	return err
})

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipped in -short mode (starts real node processes)")
		os.Exit(0)
	}
	os.Exit(run(m))
}

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "walrus-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	walrusBin = filepath.Join(dir, "walrus")
	if err := buildWalrus(walrusBin); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build cmd/walrus:", err)
		return 1
	}
	raiseFileLimit()
	defer armWatchdog()()
	return m.Run()
}

// buildWalrus compiles cmd/walrus to bin (with -race when E2E_RACE is set).
func buildWalrus(bin string) error {
	args := []string{"build", "-o", bin}
	if os.Getenv("E2E_RACE") != "" {
		args = append(args, "-race")
	}
	args = append(args, "github.com/walrus-go/walrus/cmd/walrus")
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "e2e: built %s in %v\n", bin, time.Since(start).Round(time.Millisecond))
	return nil
}

// raiseFileLimit lifts the soft RLIMIT_NOFILE to the hard limit: the
// connection tests open a thousand sockets at once.
func raiseFileLimit() {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	if lim.Cur < lim.Max {
		lim.Cur = lim.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
			fmt.Fprintln(os.Stderr, "e2e: raise RLIMIT_NOFILE:", err)
		}
	}
}

// armWatchdog kills every node process when the test binary is about to
// die without running cleanups: shortly before -timeout panics it, or on
// SIGINT/SIGTERM. (The parent-death signal set on each node covers a
// SIGKILL of the test binary.) It returns a func that disarms it.
func armWatchdog() (disarm func()) {
	stop := make(chan struct{})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	var fire <-chan time.Time
	if f := flag.Lookup("test.timeout"); f != nil {
		if d, ok := f.Value.(flag.Getter).Get().(time.Duration); ok && d > 0 {
			margin := min(10*time.Second, d/10)
			fire = time.After(d - margin)
		}
	}
	go func() {
		select {
		case <-stop:
			return
		case <-fire:
			fmt.Fprintln(os.Stderr, "e2e: -timeout is near: killing every node process")
			killAllProcesses()
			// let the testing package report the timeout and its stacks
		case s := <-sig:
			fmt.Fprintf(os.Stderr, "e2e: %v: killing every node process\n", s)
			killAllProcesses()
			os.Exit(1)
		}
	}()
	return func() {
		signal.Stop(sig)
		close(stop)
		killAllProcesses()
	}
}
