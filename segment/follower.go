package segment

import "fmt"

// AppendCheck is the follower-side decision for a replicated batch
// [first, first+n) sent at epoch by the segment's leader, given the
// follower's current end (entries held or queued) and the highest epoch it
// has been fenced at.
type AppendCheck struct {
	// Skip entries of the batch the follower already holds (a resend after
	// a rewind); append the rest at offset first+Skip.
	Skip int
	// Nothing to do: the whole batch is already held.
	Duplicate bool
}

// ErrStaleEpoch means the sender's epoch is older than one the follower was
// fenced at: the sender is a deposed leader.
type ErrStaleEpoch struct{ Have, Got uint64 }

func (e *ErrStaleEpoch) Error() string {
	return fmt.Sprintf("stale epoch %d (fenced at %d)", e.Got, e.Have)
}

// ErrGap means the batch starts beyond the follower's end.
type ErrGap struct{ Have, First uint64 }

func (e *ErrGap) Error() string {
	return fmt.Sprintf("gap: holds %d entries, batch starts at %d", e.Have, e.First)
}

// CheckAppend decides what a follower does with a replicated batch. Entries
// at the same offset of the same segment are identical (one leader ever
// assigns them), so an overlap is skipped, never compared.
func CheckAppend(fencedEpoch, epoch, end, first uint64, n int) (AppendCheck, error) {
	if epoch < fencedEpoch {
		return AppendCheck{}, &ErrStaleEpoch{Have: fencedEpoch, Got: epoch}
	}
	if first > end {
		return AppendCheck{}, &ErrGap{Have: end, First: first}
	}
	skip := end - first
	if skip >= uint64(n) {
		return AppendCheck{Duplicate: true}, nil
	}
	return AppendCheck{Skip: int(skip)}, nil
}
