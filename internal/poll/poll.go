// Package poll is the condition-polling loop the module shares: the tests
// (the actors package's own cluster helper, internal/testcluster, the
// testkit, whose time may be a synctest bubble's virtual time) and
// walrus-bench's setup. It imports nothing of the project, so every
// package may use it.
package poll

import "time"

// Until calls cond every interval until it holds or d has passed; it
// reports whether it held.
func Until(d, every time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if !time.Now().Before(deadline) {
			return false
		}
		time.Sleep(every)
	}
	return true
}
