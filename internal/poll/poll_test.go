package poll

import (
	"testing"
	"time"
)

func TestUntil(t *testing.T) {
	n := 0
	if !Until(time.Second, time.Millisecond, func() bool { n++; return n == 3 }) || n != 3 {
		t.Fatalf("held after %d calls, want true after 3", n)
	}
	start := time.Now()
	if Until(30*time.Millisecond, time.Millisecond, func() bool { return false }) {
		t.Fatal("a condition that never holds reported true")
	}
	if el := time.Since(start); el < 30*time.Millisecond {
		t.Fatalf("gave up after %v, before its 30ms", el)
	}
}
