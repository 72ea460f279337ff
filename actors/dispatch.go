package actors

import (
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// hotDispatcher runs the mailboxes of the actors on the write and read
// paths (connections, topics, segments). protoactor's default dispatcher
// starts a new goroutine every time a mailbox goes from idle to busy; a new
// goroutine starts with a small stack, and the actors' call chains (encode,
// transport, WAL) grow it by copying, each time: runtime.copystack was ~9 %
// of the nodes' CPU under one-in-flight PUT load (BENCHMARKS.md, "Hot
// path"). This dispatcher hands the mailbox to a parked worker goroutine,
// whose stack has already grown, and starts a new worker only when none is
// parked. A worker parked for poolIdle exits, so the pool shrinks back
// after a burst; it never holds more goroutines than mailboxes ran at once.
//
// Each node has its own pool (Node.hotProps), made when the node starts: a
// worker parks on a channel of its node only, so in the testkit, where each
// simulation runs its nodes inside a synctest bubble, no worker waits on a
// channel made outside the bubble (the bubble could never go idle and its
// clock would stop) and no mailbox of one bubble runs on another's worker.
func newHotProps() actor.PropsOption {
	return actor.WithDispatcher(newPoolDispatcher(300, time.Second))
}

type poolDispatcher struct {
	throughput int
	idle       time.Duration
	parked     chan func() // unbuffered: a send succeeds only into a parked worker
}

func newPoolDispatcher(throughput int, idle time.Duration) *poolDispatcher {
	return &poolDispatcher{throughput: throughput, idle: idle, parked: make(chan func())}
}

func (d *poolDispatcher) Schedule(fn func()) {
	select {
	case d.parked <- fn:
	default:
		go d.work(fn)
	}
}

func (d *poolDispatcher) Throughput() int { return d.throughput }

// work runs fn, then whatever mailbox it is handed next, until it has
// waited d.idle for one. A panic in an actor never reaches it: the mailbox
// recovers and escalates to the supervisor.
func (d *poolDispatcher) work(fn func()) {
	fn()
	t := time.NewTimer(d.idle)
	defer t.Stop()
	for {
		select {
		case fn = <-d.parked:
			fn()
			t.Reset(d.idle)
		case <-t.C:
			return
		}
	}
}
