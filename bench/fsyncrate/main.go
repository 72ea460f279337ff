// Command fsyncrate measures the disk baseline the benchmarks are read
// against: how many times a second one writer can append a block to a file
// and fdatasync it (what a log that syncs before acknowledging pays per
// group commit).
//
//	go run ./bench/fsyncrate --dir /tmp --block 4096 --duration 3s
//
// With --prealloc each block is written inside space allocated ahead of it
// in 1 MiB steps (fallocate) instead of appended, so that most fdatasyncs
// have no size change to commit: a probe of the experiment BENCHMARKS.md
// describes under "Preallocated segment files" (tried and reverted; the WAL
// appends).
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	dir := flag.String("dir", os.TempDir(), "directory on the disk to measure (the benchmarks' data directory)")
	block := flag.Int("block", 4096, "bytes appended before each fdatasync")
	dur := flag.Duration("duration", 3*time.Second, "how long to measure")
	prealloc := flag.Bool("prealloc", false, "write into space allocated up front (fallocate) instead of appending")
	flag.Parse()
	f, err := os.CreateTemp(*dir, "fsyncrate-*")
	if err != nil {
		fmt.Fprintln(os.Stderr, "fsyncrate:", err)
		os.Exit(1)
	}
	defer os.Remove(f.Name())
	defer f.Close()
	buf := make([]byte, *block)
	for i := range buf {
		buf[i] = byte(i)
	}
	what := "append"
	if *prealloc {
		what = "write into space allocated ahead"
	}
	var n int
	var off, alloc int64
	var worst time.Duration
	start := time.Now()
	for time.Since(start) < *dur {
		t := time.Now()
		for *prealloc && off+int64(len(buf)) > alloc {
			if err := syscall.Fallocate(int(f.Fd()), 0, alloc, 1<<20); err != nil {
				fmt.Fprintln(os.Stderr, "fsyncrate: fallocate:", err)
				os.Exit(1)
			}
			alloc += 1 << 20
		}
		if _, err := f.WriteAt(buf, off); err != nil {
			fmt.Fprintln(os.Stderr, "fsyncrate:", err)
			os.Exit(1)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			fmt.Fprintln(os.Stderr, "fsyncrate:", err)
			os.Exit(1)
		}
		worst = max(worst, time.Since(t))
		off += int64(len(buf))
		n++
	}
	el := time.Since(start)
	abs, _ := filepath.Abs(*dir)
	fmt.Printf("fdatasync baseline (%s): %d x (%s %d B + fdatasync) in %.2f s = %.0f syncs/s, mean %.0f µs, worst %.2f ms\n",
		abs, n, what, *block, el.Seconds(), float64(n)/el.Seconds(), float64(el.Microseconds())/float64(n), float64(worst.Microseconds())/1000)
}
