package raftfsm

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"unicode/utf8"
)

// Handlers: one per command, in type-code order. Each checks every field
// first (ErrInvalid), then the topic/node it names (ErrUnknown*), then its
// guard (ErrStale), and only then writes, through txn. A handler that returns
// an error may have copied things into the txn: Apply drops them.

func invalid(format string, args ...any) Result {
	return Result{Err: fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)}
}

func fail(err error, format string, args ...any) Result {
	return Result{Err: fmt.Errorf("%w: "+format, append([]any{err}, args...)...)}
}

// ValidTopicName reports whether name can name a topic: non-empty, valid
// UTF-8, and without a space (the client protocol splits requests on spaces,
// so such a name could never be addressed).
func ValidTopicName(name string) bool {
	return name != "" && utf8.ValidString(name) && !strings.Contains(name, " ")
}

// applyUpsertNode: ID != 0 and RaftAddr != "" (ErrInvalid). Adds the node or
// replaces its record. Value: the stored *NodeInfo.
func applyUpsertNode(x *txn, c UpsertNode) Result {
	if c.Node.ID == 0 {
		return invalid("node id 0")
	}
	if c.Node.RaftAddr == "" {
		return invalid("node %d without raft address", c.Node.ID)
	}
	n := c.Node
	x.nodes()[n.ID] = &n
	return Result{Value: &n}
}

// applyRemoveNode: ID != 0 (ErrInvalid), known (ErrUnknownNode). Deletes the
// node; segments keep naming it. Value: nil.
func applyRemoveNode(x *txn, c RemoveNode) Result {
	if c.ID == 0 {
		return invalid("node id 0")
	}
	if x.next.Nodes[c.ID] == nil {
		return fail(ErrUnknownNode, "node %d", c.ID)
	}
	delete(x.nodes(), c.ID)
	return Result{}
}

// applySetLiveness: ID != 0 (ErrInvalid), known (ErrUnknownNode). Sets Live.
// Value: the stored *NodeInfo.
func applySetLiveness(x *txn, c SetLiveness) Result {
	if c.ID == 0 {
		return invalid("node id 0")
	}
	old := x.next.Nodes[c.ID]
	if old == nil {
		return fail(ErrUnknownNode, "node %d", c.ID)
	}
	n := *old
	n.Live = c.Live
	x.nodes()[n.ID] = &n
	return Result{Value: &n}
}

// applyCreateTopic: valid name, RF >= 1, retention >= 0 (ErrInvalid). An
// existing topic is left as it is (idempotent; Value: the existing *Topic).
// Otherwise needs a node (ErrNoNodes); opens segment 1 at Base 0, epoch 1,
// led by Candidates()[NextFirstLeader % n] with min(RF, n) replicas in ring
// order, and bumps NextFirstLeader. Value: the new *Topic.
func applyCreateTopic(x *txn, c CreateTopic) Result {
	if !ValidTopicName(c.Name) {
		return invalid("topic name %q", c.Name)
	}
	if c.RF < 1 {
		return invalid("topic %q: rf %d", c.Name, c.RF)
	}
	if !c.Retention.valid() {
		return invalid("topic %q: negative retention %+v", c.Name, c.Retention)
	}
	if t := x.topic(c.Name); t != nil {
		return Result{Value: t}
	}
	cands := x.next.Candidates()
	if len(cands) == 0 {
		return fail(ErrNoNodes, "create topic %q", c.Name)
	}
	li := int(x.next.NextFirstLeader % uint64(len(cands)))
	leader, reps := placement(cands, li, c.RF)
	x.next.NextFirstLeader++
	t := &Topic{
		Name: c.Name,
		RF:   c.RF,
		Segments: []*Segment{{
			ID: 1, Leader: leader, Replicas: reps, Epoch: 1, State: SegOpen,
		}},
		Groups:    map[string]uint64{},
		Retention: c.Retention,
	}
	x.topics()[c.Name] = t
	return Result{Value: t}
}

// applySealSegment: Segment and Epoch >= 1, AtMs >= 0 (ErrInvalid); topic
// known (ErrUnknownTopic); Segment is the active one, not sealed, at Epoch
// (ErrStale); Base+Count and Segment+1 do not overflow (ErrInvalid); a node
// exists (ErrNoNodes). Seals it with Count and AtMs, then opens Segment+1 at
// Base+Count, epoch 1, led by the first candidate after the old leader in
// ring order, with min(RF, candidates) replicas. Value: the new *Segment.
func applySealSegment(x *txn, c SealSegment) Result {
	if c.Segment == 0 || c.Epoch == 0 {
		return invalid("seal %q/%d: segment and epoch start at 1", c.Topic, c.Segment)
	}
	if c.AtMs < 0 {
		return invalid("seal %q/%d: negative time %d", c.Topic, c.Segment, c.AtMs)
	}
	t := x.topic(c.Topic)
	if t == nil {
		return fail(ErrUnknownTopic, "%q", c.Topic)
	}
	a := t.Active()
	if a == nil || a.ID != c.Segment || a.State == SegSealed || a.Epoch != c.Epoch {
		return fail(ErrStale, "seal %q/%d at epoch %d", c.Topic, c.Segment, c.Epoch)
	}
	if a.Base+c.Count < a.Base || a.ID == math.MaxUint64 {
		return invalid("seal %q/%d: count %d overflows", c.Topic, c.Segment, c.Count)
	}
	cands := x.next.Candidates()
	if len(cands) == 0 {
		return fail(ErrNoNodes, "seal %q/%d", c.Topic, c.Segment)
	}
	sealed := a.clone()
	sealed.State = SegSealed
	sealed.Count = c.Count
	sealed.SealedAtMs = c.AtMs
	sealed.Bytes = max(c.Bytes, 0)
	leader, reps := placement(cands, nextAfter(cands, a.Leader), t.RF)
	next := &Segment{
		ID: a.ID + 1, Leader: leader, Replicas: reps, Epoch: 1, State: SegOpen,
		Base: sealed.End(),
	}
	segs := make([]*Segment, len(t.Segments)+1)
	copy(segs, t.Segments)
	segs[len(t.Segments)-1] = sealed
	segs[len(t.Segments)] = next
	x.writableTopic(c.Topic).Segments = segs
	return Result{Value: next}
}

// applyFenceSegment: Segment and Epoch >= 1 (ErrInvalid); topic known
// (ErrUnknownTopic); Segment is the active one, open, at Epoch (ErrStale).
// Bumps the epoch and marks it fenced. Value: the fenced *Segment.
func applyFenceSegment(x *txn, c FenceSegment) Result {
	if c.Segment == 0 || c.Epoch == 0 {
		return invalid("fence %q/%d: segment and epoch start at 1", c.Topic, c.Segment)
	}
	t := x.topic(c.Topic)
	if t == nil {
		return fail(ErrUnknownTopic, "%q", c.Topic)
	}
	a := t.Active()
	if a == nil || a.ID != c.Segment || a.State != SegOpen || a.Epoch != c.Epoch {
		return fail(ErrStale, "fence %q/%d at epoch %d", c.Topic, c.Segment, c.Epoch)
	}
	if a.Epoch == math.MaxUint64 {
		return invalid("fence %q/%d: epoch overflows", c.Topic, c.Segment)
	}
	f := a.clone()
	f.Epoch++
	f.State = SegFenced
	segs := slices.Clone(t.Segments)
	segs[len(segs)-1] = f
	x.writableTopic(c.Topic).Segments = segs
	return Result{Value: f}
}

// applyCommitCursor: topic known (ErrUnknownTopic). Group "" moves the shared
// cursor to Offset if that is forward (otherwise nothing changes: commits may
// arrive out of order); a named group is set to Offset, created if absent.
// Value: the resulting committed offset (uint64).
func applyCommitCursor(x *txn, c CommitCursor) Result {
	t := x.topic(c.Topic)
	if t == nil {
		return fail(ErrUnknownTopic, "%q", c.Topic)
	}
	if c.Group == "" {
		if c.Offset <= t.Cursor {
			return Result{Value: t.Cursor}
		}
		x.writableTopic(c.Topic).Cursor = c.Offset
		return Result{Value: c.Offset}
	}
	g := maps.Clone(t.Groups)
	if g == nil {
		g = map[string]uint64{}
	}
	g[c.Group] = c.Offset
	x.writableTopic(c.Topic).Groups = g
	return Result{Value: c.Offset}
}

// applyDeleteGroup: Group != "" (ErrInvalid: the shared cursor cannot be
// deleted); topic known (ErrUnknownTopic). Deleting an absent group is a
// no-op. Value: whether a group was deleted (bool).
func applyDeleteGroup(x *txn, c DeleteGroup) Result {
	if c.Group == "" {
		return invalid("delete group %q: the shared cursor is not a group", c.Topic)
	}
	t := x.topic(c.Topic)
	if t == nil {
		return fail(ErrUnknownTopic, "%q", c.Topic)
	}
	if _, ok := t.Groups[c.Group]; !ok {
		return Result{Value: false}
	}
	g := maps.Clone(t.Groups)
	delete(g, c.Group)
	x.writableTopic(c.Topic).Groups = g
	return Result{Value: true}
}

// applySetReplicas: Segment >= 1, Replicas non-empty, no id 0, no duplicates
// (ErrInvalid); topic known (ErrUnknownTopic); segment retained
// (ErrUnknownSegment); every replica a known node (ErrUnknownNode); for the
// active segment, its leader stays in the set (ErrInvalid). Replaces the set
// as given (order kept). Value: the updated *Segment.
func applySetReplicas(x *txn, c SetReplicas) Result {
	if c.Segment == 0 || len(c.Replicas) == 0 {
		return invalid("set replicas %q/%d: empty", c.Topic, c.Segment)
	}
	if !distinctNodes(c.Replicas) {
		return invalid("set replicas %q/%d: node 0 or a repeated node in %v", c.Topic, c.Segment, c.Replicas)
	}
	t := x.topic(c.Topic)
	if t == nil {
		return fail(ErrUnknownTopic, "%q", c.Topic)
	}
	i, ok := t.segmentIndex(c.Segment)
	if !ok {
		return fail(ErrUnknownSegment, "%q/%d", c.Topic, c.Segment)
	}
	for _, id := range c.Replicas {
		if x.next.Nodes[id] == nil {
			return fail(ErrUnknownNode, "set replicas %q/%d: node %d", c.Topic, c.Segment, id)
		}
	}
	s := t.Segments[i]
	if i == len(t.Segments)-1 && !slices.Contains(c.Replicas, s.Leader) {
		return invalid("set replicas %q/%d: active segment's leader %d dropped", c.Topic, c.Segment, s.Leader)
	}
	ns := s.clone()
	ns.Replicas = slices.Clone(c.Replicas)
	segs := slices.Clone(t.Segments)
	segs[i] = ns
	x.writableTopic(c.Topic).Segments = segs
	return Result{Value: ns}
}

// applyDeleteSegments: topic known (ErrUnknownTopic). Drops every segment
// with ID < Below except the active one (all of them are sealed). Cursors and
// groups are not touched: one that now points below FirstOffset is skipped
// forward by its reader. Value: the number of segments dropped (int).
func applyDeleteSegments(x *txn, c DeleteSegments) Result {
	t := x.topic(c.Topic)
	if t == nil {
		return fail(ErrUnknownTopic, "%q", c.Topic)
	}
	if len(t.Segments) == 0 || c.Below <= t.Segments[0].ID {
		return Result{Value: 0}
	}
	k := int(min(c.Below-t.Segments[0].ID, uint64(len(t.Segments)-1)))
	if k == 0 {
		return Result{Value: 0}
	}
	// Clone so the dropped segments are not kept alive by a shared array.
	x.writableTopic(c.Topic).Segments = slices.Clone(t.Segments[k:])
	return Result{Value: k}
}

// applySetRetention: retention >= 0 (ErrInvalid); topic known
// (ErrUnknownTopic). Replaces the policy. Value: the updated *Topic.
func applySetRetention(x *txn, c SetRetention) Result {
	if !c.Retention.valid() {
		return invalid("topic %q: negative retention %+v", c.Topic, c.Retention)
	}
	if x.topic(c.Topic) == nil {
		return fail(ErrUnknownTopic, "%q", c.Topic)
	}
	t := x.writableTopic(c.Topic)
	t.Retention = c.Retention
	return Result{Value: t}
}
