package actors

import "fmt"

// Hooks for the testkit's simulation (testkit/). Nothing in the node calls
// them: two read-only views of raft, HaltActors for a crash that takes no
// time, a raft leadership transfer, and a hold on the cursors' metadata.

// RaftTerm is the node's current raft term.
func (n *Node) RaftTerm() uint64 { return n.host.r.CurrentTerm() }

// CaughtUp reports whether the node's metadata has caught up with the raft
// leader since it started (its first lease renewal).
func (n *Node) CaughtUp() bool { return n.caughtUp.Load() }

// HaltActors stops every actor of the node the way a dying process loses
// them: no cursor flush, no proposal (crashed is set first), and waits
// until they have stopped. The testkit calls it just before Crash, which
// stops the root and listener actors without waiting: waiting here makes a
// simulated crash complete at one instant of virtual time.
func (n *Node) HaltActors() {
	n.crashed.Store(true)
	if n.root != nil {
		_ = n.system.Root.StopFuture(n.root).Wait()
	}
}

// TransferRaftLeadership hands raft leadership to node id; this node must
// lead. (Raft's own transfer: the target is brought up to date, then told
// to start an election at once.)
func (n *Node) TransferRaftLeadership(id uint64) error {
	cf := n.host.r.GetConfiguration()
	if err := cf.Error(); err != nil {
		return err
	}
	for _, s := range cf.Configuration().Servers {
		if s.ID == serverID(id) {
			return n.host.r.LeadershipTransferToServer(s.ID, s.Address).Error()
		}
	}
	return fmt.Errorf("node %d is not a raft member", id)
}

// HoldCursorMeta makes this node's cursors keep the topic metadata they
// have (hold true) until it is lifted (hold false): what a cursor sees when
// its node applies raft entries late. A held update is kept and taken at
// the cursor's next message once lifted (a cursor holding GETs wakes at
// least every 50 ms).
func (n *Node) HoldCursorMeta(hold bool) { n.holdCursorMeta.Store(hold) }
