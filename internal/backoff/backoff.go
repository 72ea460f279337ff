// Package backoff is the capped exponential delay every retry loop of the
// module uses (client retries, peer re-dials, segment recovery, replication
// to a failing follower, a connection's re-routing). Pure: callers bring
// their own clock and, where they want it, jitter.
package backoff

import "time"

// Exp is base doubled n times, but never more than ceiling: base, 2·base,
// 4·base, ..., ceiling. n <= 0 gives base (capped). A base of 0 or less
// jumps to ceiling on the first doubling, and a doubling that overflows
// gives ceiling, so a large n never wraps around to a short delay.
func Exp(base time.Duration, n int, ceiling time.Duration) time.Duration {
	d := base
	for i := 0; i < n && d < ceiling; i++ {
		d *= 2
		if d <= 0 {
			return ceiling
		}
	}
	return min(d, ceiling)
}
