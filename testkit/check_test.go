package testkit

import (
	"fmt"
	"reflect"
	"testing"
	"time"
)

// hist builds a Result by hand: times are milliseconds.
type hist struct {
	res *Result
}

func newHist(final ...string) *hist {
	h := &History{}
	return &hist{res: &Result{History: h, Final: map[string][]string{"t": final}, FinalOK: map[string]bool{"t": true}}}
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }

func (h *hist) op(o Op, call, ret int) *hist {
	o.Topic = "t"
	o.Call, o.Return = ms(call), ms(ret)
	o.ID = len(h.res.History.Ops) + 1
	h.res.History.Ops = append(h.res.History.Ops, &o)
	return h
}

func (h *hist) put(p string, off int, call, ret int) *hist {
	return h.op(Op{Client: 1, Kind: OpMPut, Payload: p, Status: StOK, HasFirst: true, First: uint64(off)}, call, ret)
}

func (h *hist) get(p string, call, ret int) *hist {
	return h.op(Op{Client: 2, Kind: OpGet, Status: StOK, Values: []string{p}}, call, ret)
}

func (h *hist) rules() []string {
	h.res.Verdict = Check(h.res)
	classifyKnown(h.res)
	return h.res.Verdict.Rules()
}

func expectRules(t *testing.T, h *hist, want ...string) {
	t.Helper()
	got := h.rules()
	if len(want) == 0 {
		want = nil
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rules broken: %v, want %v; violations: %v", got, want, h.res.Verdict)
	}
}

func (v *Verdict) String() string { return fmt.Sprint(v.Violations) }

func TestCheckAcceptsACleanHistory(t *testing.T) {
	h := newHist("a", "b", "c").
		put("a", 0, 0, 10).put("b", 1, 11, 20).
		op(Op{Client: 3, Kind: OpPut, Payload: "c", Status: StUnknown}, 15, 40).
		op(Op{Client: 4, Kind: OpRead, Offset: 0, Max: 2, Status: StOK, HasFirst: true, First: 0, Values: []string{"a", "b"}}, 21, 25).
		get("a", 30, 31).get("b", 32, 33).get("c", 41, 42)
	expectRules(t, h)
}

func TestCheckLostAck(t *testing.T) {
	expectRules(t, newHist("a").put("a", 0, 0, 10).put("b", 1, 11, 20), RuleCursorSkip, RuleLinearizable, RuleLostAck)
}

func TestCheckDuplicateAndPhantom(t *testing.T) {
	expectRules(t, newHist("a", "a").put("a", 0, 0, 10).get("a", 11, 12), RuleCursorSkip, RuleDuplicate)
	expectRules(t, newHist("a", "zz").put("a", 0, 0, 10).get("a", 11, 12).get("zz", 13, 14), RuleCursorSkip, RulePhantom)
}

func TestCheckFailedWriteThatAppears(t *testing.T) {
	h := newHist("a").op(Op{Client: 1, Kind: OpPut, Payload: "a", Status: StFail, Err: "something broke"}, 0, 10).get("a", 11, 12)
	expectRules(t, h, RuleFailedWritten)
	// "outcome unknown" in the error: it may be there
	h = newHist("a").op(Op{Client: 1, Kind: OpPut, Payload: "a", Status: StUnknown, Err: "x (outcome unknown)"}, 0, 10).get("a", 11, 12)
	expectRules(t, h)
}

func TestCheckWritesMustTakeOffsetsInRealTimeOrder(t *testing.T) {
	// b was acknowledged before c was sent, yet c sits before b
	h := newHist("a", "c", "b").put("a", 0, 0, 10).put("b", 2, 11, 20).
		op(Op{Client: 2, Kind: OpPut, Payload: "c", Status: StOK}, 21, 30).
		get("a", 40, 41).get("c", 42, 43).get("b", 44, 45)
	expectRules(t, h, RuleLinearizable)
}

func TestCheckReadMustMatchAndNotSeeTheFuture(t *testing.T) {
	h := newHist("a", "b").put("a", 0, 0, 10).put("b", 1, 11, 20).
		op(Op{Client: 3, Kind: OpRead, Offset: 0, Max: 1, Status: StOK, HasFirst: true, First: 0, Values: []string{"b"}}, 21, 22).
		get("a", 30, 31).get("b", 32, 33)
	expectRules(t, h, RuleReadMismatch)
	// reading b before its write was even sent
	h = newHist("a", "b").put("a", 0, 0, 10).
		op(Op{Client: 3, Kind: OpRead, Offset: 1, Max: 1, Status: StOK, HasFirst: true, First: 1, Values: []string{"b"}}, 11, 12).
		put("b", 1, 13, 20).get("a", 30, 31).get("b", 32, 33)
	expectRules(t, h, RuleLinearizable, RulePhantom)
}

func TestCheckEmptyReadOfAnAcknowledgedEntryIsStale(t *testing.T) {
	// b was acknowledged at 20; a READ of offset 1 sent at 21 says EMPTY
	h := newHist("a", "b").put("a", 0, 0, 10).put("b", 1, 11, 20).
		op(Op{Client: 3, Kind: OpRead, Offset: 1, Max: 1, Status: StEmpty}, 21, 22).
		get("a", 30, 31).get("b", 32, 33)
	expectRules(t, h, RuleStaleEmpty)
	// sent while b's write was still in flight: EMPTY is allowed
	h = newHist("a", "b").put("a", 0, 0, 10).put("b", 1, 11, 20).
		op(Op{Client: 3, Kind: OpRead, Offset: 1, Max: 1, Status: StEmpty}, 15, 22).
		get("a", 30, 31).get("b", 32, 33)
	expectRules(t, h)
	// at the end of the log: EMPTY is the answer
	h = newHist("a", "b").put("a", 0, 0, 10).put("b", 1, 11, 20).
		op(Op{Client: 3, Kind: OpRead, Offset: 2, Max: 1, Status: StEmpty}, 21, 22).
		get("a", 30, 31).get("b", 32, 33)
	expectRules(t, h)
}

func TestCheckEmptyGetWhileAnAcknowledgedEntryWaits(t *testing.T) {
	getEmpty := func(h *hist, call, ret int) *hist {
		return h.op(Op{Client: 3, Kind: OpGet, Status: StEmpty}, call, ret)
	}
	// b was acknowledged at 20; a GET sent at 21 says EMPTY, and b is
	// served only afterwards
	h := getEmpty(newHist("a", "b").put("a", 0, 0, 10).put("b", 1, 11, 20).get("a", 12, 13), 21, 22).get("b", 30, 31)
	expectRules(t, h, RuleCursorEmpty)
	// b already served when the EMPTY GET was sent: the cursor was at the end
	h = getEmpty(newHist("a", "b").put("a", 0, 0, 10).put("b", 1, 11, 20).get("a", 12, 13).get("b", 21, 22), 23, 24)
	expectRules(t, h)
	// b's write still in flight when the EMPTY GET was sent
	h = getEmpty(newHist("a", "b").put("a", 0, 0, 10).put("b", 1, 11, 20).get("a", 12, 13), 15, 22).get("b", 30, 31)
	expectRules(t, h)
	// b served by a GET overlapping the EMPTY one: either may have come first
	h = getEmpty(newHist("a", "b").put("a", 0, 0, 10).put("b", 1, 11, 20).get("a", 12, 13), 21, 26).get("b", 25, 31)
	expectRules(t, h)
	// a raft leadership change between: a deposed cursor owner may say EMPTY
	h = getEmpty(newHist("a", "b").put("a", 0, 0, 10).put("b", 1, 11, 20).get("a", 12, 13), 21, 22).get("b", 60, 61)
	h.res.History.Terms = []TermChange{{At: ms(40), Leader: 2, Term: 3}}
	expectRules(t, h)
}

func TestCheckCursorRepeatsOnlyAcrossLeaderChanges(t *testing.T) {
	base := func() *hist {
		return newHist("a", "b").put("a", 0, 0, 10).put("b", 1, 11, 20).get("a", 21, 22).get("b", 23, 24).get("b", 50, 51)
	}
	expectRules(t, base(), RuleCursorDup, RuleCursorOrder)
	h := base()
	h.res.History.Terms = []TermChange{{At: ms(40), Leader: 2, Term: 3}}
	expectRules(t, h)
	if h.res.Verdict.Counts.CursorRedelivered != 1 {
		t.Fatalf("redelivered %d, want 1", h.res.Verdict.Counts.CursorRedelivered)
	}
}

func TestCheckCursorSkipNeedsLostReplies(t *testing.T) {
	h := newHist("a", "b", "c").put("a", 0, 0, 10).put("b", 1, 11, 20).put("c", 2, 21, 30).get("a", 31, 32).get("c", 33, 34)
	expectRules(t, h, RuleCursorSkip)
	h = newHist("a", "b", "c").put("a", 0, 0, 10).put("b", 1, 11, 20).put("c", 2, 21, 30).get("a", 31, 32).
		op(Op{Client: 2, Kind: OpGet, Status: StUnknown}, 33, 40).get("c", 41, 42)
	expectRules(t, h)
}

func TestCheckOneWriterPerSegmentEpoch(t *testing.T) {
	h := newHist()
	h.res.History.Reps = []ReplicateObs{
		{From: "n1", Topic: "t", Segment: 1, Epoch: 1, First: 0, Values: []string{"a", "b"}},
		{From: "n2", Topic: "t", Segment: 1, Epoch: 1, First: 1, Values: []string{"x"}},
	}
	expectRules(t, h, RuleOneWriter)
}

func TestDivergence(t *testing.T) {
	a := []string{" 0.100000s x", " 0.200000s y", " 1.000000s z"}
	b := []string{" 0.100000s x", " 0.250000s y2", " 1.000000s z"}
	d := Diverge(a, b)
	if d.Identical || d.Line != 1 || d.At != 200*time.Millisecond {
		t.Fatalf("divergence %+v", d)
	}
	if !Diverge(a, a).Identical {
		t.Fatal("a trace differs from itself")
	}
}
