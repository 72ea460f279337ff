package testkit

import (
	"regexp"
	"runtime"
	"strings"
)

var bubbleRE = regexp.MustCompile(`synctest bubble (\d+)`)

// bubbleStacks returns the stacks of the goroutines of the caller's
// synctest bubble (leaked goroutines of earlier runs are left out).
func bubbleStacks() string {
	self := make([]byte, 4096)
	self = self[:runtime.Stack(self, false)]
	m := bubbleRE.FindSubmatch(self)
	if m == nil {
		return ""
	}
	tag := "synctest bubble " + string(m[1]) + "]"
	buf := make([]byte, 32<<20)
	all := string(buf[:runtime.Stack(buf, true)])
	var b strings.Builder
	for _, g := range strings.Split(all, "\n\n") {
		if strings.Contains(strings.SplitN(g, "\n", 2)[0], tag) {
			b.WriteString(g)
			b.WriteString("\n\n")
		}
	}
	return b.String()
}

// KnownRaftPipelineDeadlock names the hashicorp/raft v1.7.3 bug that the
// checker recognises from goroutine stacks: pipelineDecode has returned
// (a follower answered Success=false), decodeResponses is parked sending
// to doneCh, and pipelineReplicate is parked in netPipeline.AppendEntries
// on inprogressCh (both channels unbuffered with the default
// MaxRPCsInFlight). pipeline.Close is deferred behind it, so the leader
// never replicates to that follower again (heartbeats still flow) and
// Raft.Shutdown waits forever.
const KnownRaftPipelineDeadlock = "hashicorp/raft pipeline deadlock (netPipeline.AppendEntries parked, pipelineDecode gone)"

// classifyStuck names a known cause of stuck goroutines, or "".
func classifyStuck(stacks string) string {
	if strings.Contains(stacks, "raft.(*netPipeline).AppendEntries") && !strings.Contains(stacks, "raft.(*Raft).pipelineDecode") {
		return KnownRaftPipelineDeadlock
	}
	return ""
}
