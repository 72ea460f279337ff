package actors

import (
	"testing"
	"time"
)

func TestWakeupOneTimerAtATime(t *testing.T) {
	t0 := time.Unix(0, 0)
	var w wakeup
	s1, start := w.arm(t0.Add(100 * time.Millisecond))
	if !start {
		t.Fatal("nothing armed: the first arm must start a timer")
	}
	if _, start := w.arm(t0.Add(200 * time.Millisecond)); start {
		t.Fatal("a later wake-up is covered by the armed one")
	}
	s2, start := w.arm(t0.Add(5 * time.Millisecond))
	if !start || s2 == s1 {
		t.Fatalf("an earlier wake-up replaces the armed timer with a new one: start %v, seq %d after %d", start, s2, s1)
	}
	if !w.fired(s2) {
		t.Fatal("the armed timer's firing counts")
	}
	if w.fired(s1) {
		t.Fatal("the replaced timer's late firing must not count")
	}
	if w.fired(s2) {
		t.Fatal("a timer counts once")
	}
	if _, start := w.arm(t0.Add(100 * time.Millisecond)); !start {
		t.Fatal("after the armed timer fired, the next arm starts one")
	}
}

// The bug this type fixes: with a flag reset by every firing, timers that
// an earlier deadline replaced (but that still fired) each re-armed on
// their own, and a leader alternating a 5 ms hold with a 100 ms back-off
// ran out of memory in the simulation (seed 58). Play that alternation
// out with replaced timers firing anyway (never stopped): the timers
// started per step must stay few.
func TestWakeupReplacedTimersDoNotMultiply(t *testing.T) {
	type timer struct {
		at  time.Time
		seq uint64
	}
	var w wakeup
	var pending []timer
	started := 0
	now := time.Unix(0, 0)
	arm := func(d time.Duration) {
		if seq, start := w.arm(now.Add(d)); start {
			started++
			pending = append(pending, timer{now.Add(d), seq}) // never stopped
		}
	}
	arm(100 * time.Millisecond)
	for step := 0; step < 1000; step++ {
		started = 0
		arm(5 * time.Millisecond) // a hold, earlier than the back-off
		// fire everything due next (the earliest deadline), in order
		next := pending[0].at
		for _, p := range pending {
			if p.at.Before(next) {
				next = p.at
			}
		}
		now = next
		var keep []timer
		var due []timer
		for _, p := range pending {
			if p.at.After(now) {
				keep = append(keep, p)
			} else {
				due = append(due, p)
			}
		}
		pending = keep
		for _, p := range due {
			if w.fired(p.seq) {
				arm(100 * time.Millisecond) // the pump finds the back-off again
			}
		}
		if started > 2 {
			t.Fatalf("step %d: %d timers started; replaced timers multiply", step, started)
		}
	}
}
