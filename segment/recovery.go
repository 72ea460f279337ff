package segment

import "slices"

// RecoveryQuorum is how many replicas of a set of rf must report their end
// before a fenced segment's end can be chosen: every acknowledged entry is
// durable on a write quorum, and any rf-quorum+1 replicas intersect every
// write quorum, so they hold every acknowledged entry between them.
func RecoveryQuorum(rf int) int { return rf - Quorum(rf) + 1 }

// RecoveryEnd picks the count to seal a fenced segment at from the ends
// reported by its replicas: the largest reported end, which covers every
// acknowledged entry once enough replicas answered. Entries beyond it on
// replicas that did not answer were never acknowledged and are cut when they
// learn the seal. ok is false until RecoveryQuorum(rf) replicas answered.
// source is a replica holding the chosen end (lowest id among ties), from
// which the others copy what they miss.
func RecoveryEnd(rf int, ends map[NodeID]uint64) (end uint64, source NodeID, ok bool) {
	if len(ends) < RecoveryQuorum(rf) || len(ends) == 0 {
		return 0, 0, false
	}
	ids := make([]NodeID, 0, len(ends))
	for id := range ends {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if e := ends[id]; source == 0 || e > end {
			end, source = e, id
		}
	}
	return end, source, true
}
