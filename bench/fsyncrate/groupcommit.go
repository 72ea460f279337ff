package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"
)

// groupCommitConfig is the --msgs mode: a replicated write's latency at a
// given message rate on the disk alone, with nothing else on the path (no
// sockets, no actors, no other process).
type groupCommitConfig struct {
	dir      string
	writers  int           // files, one per replica
	ack      int           // a message is acknowledged once the first ack writers hold it durably
	rate     float64       // messages a second, open loop
	entry    int           // bytes a message adds to each file
	trailing time.Duration // writers past ack sync what they lack once its oldest message is this old
	minRound time.Duration // a writer starts a round at least this long after its last one started
	anyAck   bool          // every writer eager, a message done once any ack of them synced it
	dur      time.Duration
	slowOver time.Duration
}

// groupCommit models a cluster's write path on this disk alone. Messages
// arrive on a fixed schedule (rate a second, latency counted from each
// message's slot, so a late one counts its wait as a client would). Each
// writer keeps a file of its own, written into zeros 1 MiB ahead as the WAL
// does, and group-commits: it writes every message that has arrived since
// its last round and fdatasyncs, one round after another, as the segment
// leader's WAL and its eager follower do. Writers past the first ack are
// the trailing replicas: they take a round only once the oldest message
// they lack is trailing old (walrus --trailing-replica-wait). A message is
// done once the first ack writers have synced it (with anyAck: every
// writer eager, done once any ack of them have; walrus
// --trailing-replica-wait 0). The line is a baseline for walrus-bench's
// open loop at the same rate, not a lower bound: on a machine whose host
// pauses it when its syncs come thick and fast, a writer that syncs less
// often (minRound) can do better.
func groupCommit(c groupCommitConfig) groupCommitResult {
	every := time.Duration(float64(time.Second) / c.rate)
	total := int(c.dur / every)
	start := time.Now().Add(10 * time.Millisecond)
	slot := func(i int) time.Time { return start.Add(time.Duration(i) * every) }

	var mu sync.Mutex
	arrived := 0
	durable := make([]int, c.writers)
	acked := 0
	lat := make([]time.Duration, 0, total)
	rounds := make([]int, c.writers)
	var syncs []time.Duration
	wake := make([]chan struct{}, c.writers)
	for w := range wake {
		wake[w] = make(chan struct{}, 1)
	}
	done := make(chan struct{})

	var wg sync.WaitGroup
	for w := range c.writers {
		tf, err := os.CreateTemp(c.dir, "fsyncrate-*")
		if err != nil {
			die(err)
		}
		defer os.Remove(tf.Name())
		defer tf.Close()
		wg.Add(1)
		go func() {
			defer wg.Done()
			zeros := make([]byte, 1<<20)
			var fill []byte // the round's bytes, filled once and grown as rounds need
			var off, alloc int64
			var last time.Time
			written := 0
			for {
				mu.Lock()
				target := arrived
				mu.Unlock()
				if target == written {
					select {
					case <-wake[w]:
						continue
					case <-done:
						return
					}
				}
				if w >= c.ack && !c.anyAck {
					// as walrus's trailing follower: wait for the oldest
					// missing message to be c.trailing old, unless a full
					// batch (actors' trailingBatch, 256) is already there
					if wait := time.Until(slot(written).Add(c.trailing)); wait > 0 && target-written < 256 {
						time.Sleep(wait)
						mu.Lock()
						target = arrived
						mu.Unlock()
					}
				}
				if wait := time.Until(last.Add(c.minRound)); wait > 0 {
					time.Sleep(wait)
					mu.Lock()
					target = arrived
					mu.Unlock()
				}
				n := (target - written) * c.entry
				if len(fill) < n {
					fill = bytes.Repeat([]byte{0xa5}, max(n, 2*len(fill)))
				}
				buf := fill[:n]
				for off+int64(len(buf)) > alloc {
					if _, err := tf.WriteAt(zeros, alloc); err != nil {
						die(err)
					}
					alloc += int64(len(zeros))
				}
				t := time.Now()
				last = t
				if _, err := tf.WriteAt(buf, off); err != nil {
					die(err)
				}
				if err := syscall.Fdatasync(int(tf.Fd())); err != nil {
					die(err)
				}
				now := time.Now()
				off += int64(len(buf))
				written = target
				mu.Lock()
				syncs = append(syncs, now.Sub(t))
				rounds[w]++
				durable[w] = target
				if w < c.ack || c.anyAck {
					for q := quorumEnd(durable, c.ack, c.anyAck); acked < q; acked++ {
						lat = append(lat, now.Sub(slot(acked)))
					}
				}
				mu.Unlock()
			}
		}()
	}

	for i := range total {
		if wait := time.Until(slot(i)); wait > 0 {
			time.Sleep(wait)
		}
		mu.Lock()
		arrived = i + 1
		mu.Unlock()
		for _, ch := range wake {
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}
	// let the last round finish, then stop the writers
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		finished := acked == total
		mu.Unlock()
		if finished {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(done)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	slices.Sort(syncs)
	return groupCommitResult{total: total, lat: lat, syncs: syncs, rounds: rounds}
}

// quorumEnd is how many messages are done, given how many each writer
// has synced: those the first ack writers all hold or, with anyAck, those
// any ack writers hold (the ack-th largest count).
func quorumEnd(durable []int, ack int, anyAck bool) int {
	if anyAck {
		return slices.Sorted(slices.Values(durable))[len(durable)-ack]
	}
	return slices.Min(durable[:ack])
}

// groupCommitResult is what a groupCommit run saw: each acknowledged
// message's latency from its slot and each fdatasync's duration (both
// sorted), and each writer's rounds.
type groupCommitResult struct {
	total  int // messages scheduled
	lat    []time.Duration
	syncs  []time.Duration
	rounds []int
}

// print writes the run's line (one line, for the scripts to parse).
func (r groupCommitResult) print(c groupCommitConfig) {
	lat, syncs, rounds, total := r.lat, r.syncs, r.rounds, r.total
	if len(lat) == 0 {
		fmt.Fprintln(os.Stderr, "fsyncrate: no message acknowledged")
		os.Exit(1)
	}
	pct := func(d []time.Duration, p float64) float64 {
		return float64(d[min(len(d)-1, int(p*float64(len(d))))].Microseconds()) / 1000
	}
	// both sorted: the count over the limit is what lies past it
	over := func(d []time.Duration) int {
		i, _ := slices.BinarySearch(d, c.slowOver+1)
		return len(d) - i
	}
	slow, slowSyncs := over(lat), over(syncs)
	abs, _ := filepath.Abs(c.dir)
	quorum := fmt.Sprintf("acknowledged on the first %d, the others every %v", c.ack, c.trailing)
	if c.anyAck {
		quorum = fmt.Sprintf("all eager, acknowledged on any %d", c.ack)
	}
	fmt.Printf("group-commit baseline (%s, %d writers, %s, rounds at least %v apart): %d of %d messages of %d B at %.0f a second; latency from the slot p50 %.2f p99 %.2f p99.9 %.2f ms, worst %.2f ms, %d over %v; rounds per writer %v, fdatasync p50 %.2f p99 %.2f ms, %d over %v\n",
		abs, c.writers, quorum, c.minRound, len(lat), total, c.entry, c.rate,
		pct(lat, 0.5), pct(lat, 0.99), pct(lat, 0.999), float64(lat[len(lat)-1].Microseconds())/1000, slow, c.slowOver,
		rounds, pct(syncs, 0.5), pct(syncs, 0.99), slowSyncs, c.slowOver)
}
