package actors

import "fmt"

// Hooks for the testkit's simulation (testkit/). Nothing in the node calls
// them: two read-only views of raft, HaltActors for a crash that takes no
// time, a raft leadership transfer, and a hold on the metadata its actors
// see.

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

// HoldMetadata makes this node's actors keep the metadata they have (hold
// true) until it is lifted (hold false): the root fans no change out to the
// topic, segment and cursor actors or the controller, as when its mailbox
// falls behind raft's applies. Raft, the lease and whatever reads the FSM
// directly go on. Lifting it fans out the newest metadata at once.
func (n *Node) HoldMetadata(hold bool) {
	n.holdMeta.Store(hold)
	if root := n.rootPID.Load(); !hold && root != nil {
		n.system.Root.Send(root, metaChangedMsg{})
	}
}
