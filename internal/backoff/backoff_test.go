package backoff

import (
	"math"
	"testing"
	"time"
)

func TestExp(t *testing.T) {
	const ms = time.Millisecond
	for _, tc := range []struct {
		base    time.Duration
		n       int
		ceiling time.Duration
		want    time.Duration
	}{
		{100 * ms, 0, time.Second, 100 * ms},
		{100 * ms, -3, time.Second, 100 * ms},
		{100 * ms, 1, time.Second, 200 * ms},
		{100 * ms, 3, time.Second, 800 * ms},
		{100 * ms, 4, time.Second, time.Second}, // 1.6 s capped
		{100 * ms, 1000, time.Second, time.Second},
		{ms, 7, 100 * ms, 100 * ms},                    // 128 ms capped
		{2 * time.Second, 0, time.Second, time.Second}, // base above the ceiling
		{0, 0, time.Second, 0},
		{0, 1, time.Second, time.Second},
		{time.Duration(math.MaxInt64 / 3), 5, time.Duration(math.MaxInt64), time.Duration(math.MaxInt64)}, // overflow
	} {
		if got := Exp(tc.base, tc.n, tc.ceiling); got != tc.want {
			t.Errorf("Exp(%v, %d, %v) = %v, want %v", tc.base, tc.n, tc.ceiling, got, tc.want)
		}
	}
}
