package actors

// Read-only views for the testkit's simulation (testkit/). Nothing in the
// node calls them; they exist so a simulated run can observe raft without
// reaching into the node's internals.

// RaftTerm is the node's current raft term.
func (n *Node) RaftTerm() uint64 { return n.host.r.CurrentTerm() }

// CaughtUp reports whether the node's metadata has caught up with the raft
// leader since it started (its first lease renewal).
func (n *Node) CaughtUp() bool { return n.caughtUp.Load() }

// HaltActors stops every actor of the node the way a dying process loses
// them: no cursor flush, no proposal (crashed is set first). The testkit
// calls it just before Crash, because Crash leaves the actors running
// (protoactor's ActorSystem.Shutdown stops nothing), and a cursor actor
// whose commit keeps failing once the node's context is cancelled retries
// at once, forever.
func (n *Node) HaltActors() {
	n.crashed.Store(true)
	if n.root != nil {
		_ = n.system.Root.StopFuture(n.root).Wait()
	}
}
