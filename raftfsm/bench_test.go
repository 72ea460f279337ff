package raftfsm

import (
	"fmt"
	"testing"
)

// The copy-on-write cost of one command grows with the number of topics
// (the topic map is copied) but not with their histories. A named group
// commit always writes (the shared cursor skips backward commits).
func BenchmarkApplyCommitCursor(b *testing.B) {
	for _, topics := range []int{10, 1000, 10000} {
		b.Run(fmt.Sprintf("topics=%d", topics), func(b *testing.B) {
			h := cluster(b, 1, 2, 3)
			for i := range topics {
				h.ok(CreateTopic{Name: fmt.Sprintf("t%d", i), RF: 3})
			}
			for range 100 {
				h.seal("t0", 10)
			}
			entries := make([][]byte, 64)
			for i := range entries {
				entries[i] = mustEncode(b, CommitCursor{Topic: "t0", Group: "g", Offset: uint64(i + 1)})
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				h.raw(entries[i%len(entries)])
			}
		})
	}
}
