// Command freezeprobe measures how often the machine stops running
// anything: a thread at real-time priority (SCHED_FIFO, so that no
// ordinary thread keeps it from a CPU once it wakes; needs root, else it
// says so and runs at normal priority) sleeps --tick (5 ms) at a time and
// records each wake-up that comes more than --over (3 ms) late: a pause of
// the whole machine longer than a tick always holds a wake-up, so each
// such pause counts once. Run beside a benchmark it costs two hundred
// short wake-ups a second (~3 % of one CPU on the machine BENCHMARKS.md
// measures; a 1 ms tick cost ~9 %) and shows what no process on the
// machine can hide: the virtual machine paused by its host (or the kernel
// not scheduling at all).
//
//	go run ./bench/freezeprobe --duration 8s
//
// It stops early on SIGTERM or SIGINT (bench/lib.sh's with_freezes runs it
// for as long as a benchmark command runs) and reports what it saw.
//
// It prints one line: the late wake-ups, the longest, and R, the length
// of the mean of their end times as angles on a --period (100 ms) circle:
// near 1 when they come on the beat of a clock of that period (as this
// machine's host pauses it), near 0 when they come at random.
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	duration := flag.Duration("duration", 8*time.Second, "how long to probe")
	over := flag.Duration("over", 3*time.Millisecond, "count wake-ups later than this")
	tick := flag.Duration("tick", 5*time.Millisecond, "how long each sleep is")
	period := flag.Duration("period", 100*time.Millisecond, "the clock period R is measured against")
	flag.Parse()
	if *duration <= 0 || *over <= 0 || *period <= 0 || *tick <= 0 {
		fmt.Fprintln(os.Stderr, "freezeprobe: --duration, --over, --tick and --period must be positive")
		os.Exit(2)
	}
	runtime.LockOSThread()
	prio := "SCHED_FIFO"
	if err := realtime(); err != nil {
		prio = "normal priority (" + err.Error() + ")"
	}
	var stop atomic.Bool
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() { <-sigs; stop.Store(true) }()
	start := time.Now()
	var n int
	var longest time.Duration
	var c, s float64
	for time.Since(start) < *duration && !stop.Load() {
		before := time.Now()
		sleep(*tick)
		late := time.Since(before) - *tick
		if late > *over {
			n++
			longest = max(longest, late)
			end := time.Since(start)
			a := 2 * math.Pi * float64(end%*period) / float64(*period)
			c += math.Cos(a)
			s += math.Sin(a)
		}
	}
	r := 0.0
	if n > 0 {
		r = math.Hypot(c, s) / float64(n)
	}
	fmt.Printf("freezes: %d wake-ups over %v late in %v (a %v sleeper at %s), the longest %.1f ms; their ends on a %v circle: R %.2f\n",
		n, *over, time.Since(start).Round(time.Millisecond), *tick, prio, float64(longest)/1e6, *period, r)
}
