// Command fsyncrate measures the disk baseline the benchmarks are read
// against: how many times a second one writer can append a block to a file
// and fdatasync it (what a log that syncs before acknowledging pays per
// group commit).
//
//	go run ./bench/fsyncrate --dir /tmp --block 4096 --duration 3s
//
// With --writers N, N writers do so at once, each on its own file, as the
// three nodes of a benchmark cluster on one disk do; the line then also
// gives the latency percentiles of one append+fdatasync, the floor under a
// replicated write's tail on this disk.
//
// With --zero-ahead each block is written into zeros written ahead of it
// in 1 MiB steps instead of appended, so that most fdatasyncs have no size
// change to commit: what the WAL does with Options.Prealloc (a node's
// --wal-prealloc, in 64 KiB steps). --prealloc does the same with space
// allocated by fallocate, the variant BENCHMARKS.md ("Preallocated segment
// files") measured and did not keep.
//
// With --syncers-per-file N, N goroutines share each writer's file, each
// writing its own block at the file's next offset and fdatasyncing, so up
// to N fdatasyncs of one file are in flight at once: what a WAL that
// started the next round's sync before the last one returned would see
// (BENCHMARKS.md, "Syncs of one file in flight at once").
//
// With --rate R each writer starts R cycles a second (open loop, at most
// one in flight per syncer) instead of one after another, to load the disk
// as a node cluster does at a given write rate rather than as hard as it
// goes; a cycle's duration is still from its own start. The line ends
// with how many cycles took longer than --slow-over (3 ms), and this
// process's CPU time (user + system) per cycle.
//
// With --msgs R the tool models a cluster's write path on this disk
// alone instead: R messages a second arrive on a fixed schedule, each of
// --writers files group-commits them (writes every message that arrived
// since its last round, fdatasyncs, goes again), a message is done once
// the first --ack files (2: the segment leader and its eager follower)
// synced it, and the files past --ack sync only once their oldest
// missing message is --trailing-wait old (the trailing follower). The
// line gives the messages' latency from their slots: a replicated,
// fdatasynced write at that rate on the disk alone, with no sockets and
// no other process, which bench/compare.sh runs beside each half-rate
// open loop (a baseline, not a lower bound: with --min-round D each file
// starts a round at most every D, fewer and larger syncs, which on this
// machine can have the shorter tail).
//
//	go run ./bench/fsyncrate --dir /tmp --msgs 4000 --duration 8s
//
// With --sync dsync each block is written to a file opened O_DSYNC, the
// write itself durable (one system call, no fdatasync); with --sync direct
// also O_DIRECT, each write rewriting the 4 KiB-aligned blocks it touches
// (the page cache bypassed); the line then starts "durable-write
// baseline". Both were measured against a WAL's write+fdatasync and not
// taken up (BENCHMARKS.md, "Durable writes without fdatasync", and
// "O_DIRECT appends, built and measured, not kept").
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

func main() {
	dir := flag.String("dir", os.TempDir(), "directory on the disk to measure (the benchmarks' data directory)")
	block := flag.Int("block", 4096, "bytes appended before each fdatasync")
	dur := flag.Duration("duration", 3*time.Second, "how long to measure")
	prealloc := flag.Bool("prealloc", false, "write into space allocated up front (fallocate) instead of appending")
	zeroAhead := flag.Bool("zero-ahead", false, "write into space filled with zeros ahead, 1 MiB at a time (walrus --wal-prealloc 1048576), instead of appending")
	writers := flag.Int("writers", 1, "writers, each appending and syncing its own file at once (3: the three nodes of a benchmark cluster on this one disk; 3 unless set with --msgs)")
	perFile := flag.Int("syncers-per-file", 1, "goroutines sharing each writer's file, each writing a block and fdatasyncing it, so that this many syncs of one file can be in flight")
	rate := flag.Float64("rate", 0, "cycles a second per writer, paced (0: one after another, as fast as the disk goes)")
	slowOver := flag.Duration("slow-over", 3*time.Millisecond, "count the cycles that took longer than this")
	syncMode := flag.String("sync", "fdatasync", "how a block is made durable: fdatasync (write, then fdatasync), dsync (write to a file opened O_DSYNC), direct (O_DIRECT|O_DSYNC, rewriting the 4 KiB blocks a write touches)")
	msgs := flag.Float64("msgs", 0, "group-commit mode: messages a second, open loop, each written by every writer's group commit and acknowledged once the first --ack writers synced it (0: off)")
	ack := flag.Int("ack", 2, "group-commit mode: writers a message must be durable on (the segment leader and its eager follower)")
	entry := flag.Int("entry", 148, "group-commit mode: bytes a message adds to each file (128 B and the WAL's 20-byte record header)")
	trailing := flag.Duration("trailing-wait", 5*time.Millisecond, "group-commit mode: writers past --ack sync what they lack once its oldest message is this old (walrus --trailing-replica-wait)")
	minRound := flag.Duration("min-round", 0, "group-commit mode: a writer starts a round at least this long after its last one started (0: as soon as the last one synced)")
	anyAck := flag.Bool("any-ack", false, "group-commit mode: every writer syncs as messages come, and a message is done once any --ack of them synced it (walrus --trailing-replica-wait 0)")
	flag.Parse()
	if *msgs < 0 {
		fmt.Fprintln(os.Stderr, "fsyncrate: --msgs must not be negative")
		os.Exit(2)
	}
	if *msgs > 0 {
		set := false
		flag.Visit(func(f *flag.Flag) { set = set || f.Name == "writers" })
		if !set {
			*writers = 3 // the three replicas of a benchmark cluster
		}
		if *writers < *ack || *ack < 1 || *entry < 1 || *dur <= 0 || *trailing < 0 || *minRound < 0 {
			fmt.Fprintln(os.Stderr, "fsyncrate: --msgs needs --ack of at least 1, --writers of at least --ack, --entry at least 1, --duration positive, --trailing-wait and --min-round not negative")
			os.Exit(2)
		}
		c := groupCommitConfig{dir: *dir, writers: *writers, ack: *ack, rate: *msgs, entry: *entry, trailing: *trailing, minRound: *minRound, anyAck: *anyAck, dur: *dur, slowOver: *slowOver}
		groupCommit(c).print(c)
		return
	}
	if *writers < 1 || *perFile < 1 || *block < 1 || *dur <= 0 || *rate < 0 {
		fmt.Fprintln(os.Stderr, "fsyncrate: --writers, --syncers-per-file and --block must be at least 1, --duration positive, --rate not negative")
		os.Exit(2)
	}
	// each syncer paces itself at its share of its writer's rate
	var every time.Duration
	if *rate > 0 {
		every = time.Duration(float64(time.Second) * float64(*perFile) / *rate)
	}
	if *prealloc && *zeroAhead {
		fmt.Fprintln(os.Stderr, "fsyncrate: --prealloc and --zero-ahead exclude each other")
		os.Exit(2)
	}
	var openFlags int
	switch *syncMode {
	case "fdatasync":
	case "dsync":
		openFlags = syscall.O_DSYNC
	case "direct":
		openFlags = syscall.O_DSYNC | syscall.O_DIRECT
	default:
		fmt.Fprintln(os.Stderr, "fsyncrate: --sync is fdatasync, dsync or direct")
		os.Exit(2)
	}
	what := "append"
	mode := modeAppend
	switch {
	case *prealloc:
		what, mode = "write into space allocated ahead", modeFallocate
	case *zeroAhead:
		what, mode = "write into zeros written ahead", modeZeros
	}
	lat := make([][]time.Duration, *writers**perFile)
	var wg sync.WaitGroup
	cpu0 := cpuTime()
	start := time.Now()
	for w := range *writers {
		tf, err := os.CreateTemp(*dir, "fsyncrate-*")
		if err != nil {
			die(err)
		}
		defer os.Remove(tf.Name())
		tf.Close()
		f, err := os.OpenFile(tf.Name(), os.O_RDWR|openFlags, 0)
		if err != nil {
			die(err)
		}
		defer f.Close()
		st := &fileState{f: f, direct: *syncMode == "direct", dsync: openFlags != 0}
		for k := range *perFile {
			wg.Add(1)
			go func() {
				defer wg.Done()
				lat[w**perFile+k] = syncLoop(st, *block, mode, start, every, start.Add(*dur))
			}()
		}
	}
	wg.Wait()
	el := time.Since(start)
	cpu := cpuTime() - cpu0
	var all []time.Duration
	var sum time.Duration
	slow := 0
	for _, l := range lat {
		all = append(all, l...)
		for _, d := range l {
			sum += d
			if d > *slowOver {
				slow++
			}
		}
	}
	slices.Sort(all)
	n := len(all)
	pct := func(p float64) float64 { return float64(all[min(n-1, int(p*float64(n)))].Microseconds()) / 1000 }
	abs, _ := filepath.Abs(*dir)
	shared := ""
	if *perFile > 1 {
		shared = fmt.Sprintf(", %d syncers per file", *perFile)
	}
	if *rate > 0 {
		shared += fmt.Sprintf(", paced at %.0f a second each", *rate)
	}
	label, how := "fdatasync baseline", "+ fdatasync"
	switch *syncMode {
	case "dsync":
		label, how = "durable-write baseline", "O_DSYNC"
	case "direct":
		label, how = "durable-write baseline", "O_DIRECT|O_DSYNC"
	}
	fmt.Printf("%s (%s, %d writer(s)%s): %d x (%s %d B %s) in %.2f s = %.0f syncs/s, mean %.0f µs, p50 %.2f p99 %.2f p99.9 %.2f ms, worst %.2f ms, %d over %v; cpu %.1f µs per cycle\n",
		label, abs, *writers, shared, n, what, *block, how, el.Seconds(), float64(n)/el.Seconds(), float64(sum.Microseconds())/float64(n),
		pct(0.5), pct(0.99), pct(0.999), float64(all[n-1].Microseconds())/1000, slow, *slowOver, float64(cpu.Microseconds())/float64(n))
}

// die reports err and ends the run: a measurement that lost a write or a
// sync means nothing.
func die(err error) {
	fmt.Fprintln(os.Stderr, "fsyncrate:", err)
	os.Exit(1)
}

type writeMode int

const (
	modeAppend    writeMode = iota
	modeFallocate           // fallocate 1 MiB ahead
	modeZeros               // write 1 MiB of zeros ahead (synced with the next block)
)

// fileState is one writer's file and where its next block goes, shared by
// that file's syncers.
type fileState struct {
	mu         sync.Mutex
	f          *os.File
	off, alloc int64
	dsync      bool // opened O_DSYNC: a write is durable when it returns
	direct     bool // opened O_DIRECT: writes are whole aligned 4 KiB blocks
}

// cpuTime is this process's CPU time so far, user and system.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// aligned returns n zero bytes whose address is a multiple of 4096 (what
// O_DIRECT asks of a buffer).
func aligned(n int) []byte {
	b := make([]byte, n+4096)
	skip := (4096 - int(uintptr(unsafe.Pointer(&b[0]))&4095)) & 4095
	return b[skip : skip+n]
}

// syncLoop appends (or writes into space allocated or zero-filled ahead)
// one block at the file's next offset and fdatasyncs it until end; it
// returns each cycle's duration, the steps ahead included. The file's
// other syncers write and sync meanwhile; only the writes take turns.
// With every > 0 the cycles start every apart from start on (a late cycle
// starts at once, and the schedule does not catch up by bunching).
func syncLoop(st *fileState, block int, mode writeMode, start time.Time, every time.Duration, end time.Time) []time.Duration {
	zeros := aligned(1 << 20)
	buf := make([]byte, block)
	for i := range buf {
		buf[i] = byte(i)
	}
	// direct: the 4 KiB blocks a write touches, its bytes copied in; the
	// rest of those blocks is whatever the buffer last held (this measures
	// the cost of the writes, it does not keep a log)
	page := aligned(block + 2*4096)
	var out []time.Duration
	next := start
	for time.Now().Before(end) {
		if every > 0 {
			if wait := time.Until(next); wait > 0 {
				time.Sleep(wait)
			}
			now := time.Now()
			if next = next.Add(every); next.Before(now) {
				next = now.Add(every)
			}
		}
		t := time.Now()
		st.mu.Lock()
		off := st.off
		st.off += int64(len(buf))
		for mode != modeAppend && st.off > st.alloc {
			var err error
			if mode == modeFallocate {
				err = syscall.Fallocate(int(st.f.Fd()), 0, st.alloc, 1<<20)
			} else {
				_, err = st.f.WriteAt(zeros, st.alloc)
			}
			if err != nil {
				fmt.Fprintln(os.Stderr, "fsyncrate: space ahead:", err)
				os.Exit(1)
			}
			st.alloc += 1 << 20
		}
		var err error
		if st.direct {
			first, last := off&^4095, (off+int64(block)+4095)&^4095
			w := page[:last-first]
			copy(w[off-first:], buf)
			_, err = st.f.WriteAt(w, first)
		} else {
			_, err = st.f.WriteAt(buf, off)
		}
		st.mu.Unlock()
		if err != nil {
			die(err)
		}
		if !st.dsync {
			if err := syscall.Fdatasync(int(st.f.Fd())); err != nil {
				die(err)
			}
		}
		out = append(out, time.Since(t))
	}
	return out
}
