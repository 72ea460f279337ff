package testkit

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/anishathalye/porcupine"
)

// Rules the checker enforces. Each violation names one.
const (
	RuleLostAck       = "lost-ack"       // an acknowledged write is not in the final log
	RuleDuplicate     = "duplicate"      // one write appears twice in the final log
	RulePhantom       = "phantom"        // an entry no client wrote, or read before it was written
	RuleFailedWritten = "failed-written" // a write answered with a definite error is in the log
	RuleOffset        = "offset"         // MPUT's acknowledged offset is not where the entry is
	RuleReadMismatch  = "read-mismatch"  // READ returned other bytes than the final log holds there
	RuleStaleEmpty    = "stale-empty"    // READ answered EMPTY at an offset whose entry was acknowledged before it was sent
	RuleLinearizable  = "linearizable"   // porcupine found no linearization (see docs/testing.md)
	RuleCursorDup     = "cursor-dup"     // GET served an entry twice outside the at-least-once window
	RuleCursorSkip    = "cursor-skip"    // GET never served entries, more than lost replies explain
	RuleCursorOrder   = "cursor-order"   // GET served entries out of offset order
	RuleCursorEmpty   = "cursor-empty"   // GET answered EMPTY while an entry acknowledged before it was sent was still unserved
	RuleOneWriter     = "one-writer"     // two writers for one segment epoch, or two values at one offset
	RuleReplica       = "replica"        // a sealed replica's bytes differ from the final log
	RuleMeta          = "meta"           // metadata disagrees with the data
	RuleDiskRefused   = "disk-refused"   // a node's WAL did not open after a crash, with nothing damaged on purpose
)

// Violation is one broken rule.
type Violation struct {
	Rule   string
	Topic  string
	Detail string
}

func (v Violation) String() string {
	if v.Topic == "" {
		return v.Rule + ": " + v.Detail
	}
	return v.Rule + " [" + v.Topic + "]: " + v.Detail
}

// Verdict is the checker's answer for one run.
type Verdict struct {
	Violations []Violation // unexplained: each one fails the run
	// Known holds violations explained by a known bug (known.go);
	// KnownLiveness the known bugs behind the run's liveness problems.
	Known         []KnownHit
	KnownLiveness []string
	// Dropped counts violations beyond maxPerRule per rule and topic.
	Dropped int
	Counts  Counts
	// Porcupine is each topic's linearizability result.
	Porcupine map[string]porcupine.CheckResult
}

// Counts summarise a history.
type Counts struct {
	Acked, Unknown, Failed     int // writes
	Gets, GetEmpty, GetUnknown int
	Reads, ReadEmpty           int
	CursorRedelivered          int // duplicates inside the at-least-once window
	LaggingReplicas            int
	Entries                    int // final log entries over all topics
	TermChanges                int
}

// OK reports whether no rule was broken.
func (v *Verdict) OK() bool { return len(v.Violations) == 0 }

// KnownIDs lists the known bugs the run hit, sorted.
func (v *Verdict) KnownIDs() []string {
	seen := map[string]bool{}
	var out []string
	add := func(id string) {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	for _, k := range v.Known {
		add(k.Bug)
	}
	for _, id := range v.KnownLiveness {
		add(id)
	}
	sort.Strings(out)
	return out
}

// Rules lists the distinct rules broken, sorted.
func (v *Verdict) Rules() []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range v.Violations {
		if !seen[x.Rule] {
			seen[x.Rule] = true
			out = append(out, x.Rule)
		}
	}
	sort.Strings(out)
	return out
}

const maxPerRule = 20 // violations kept per rule and topic (the rest only counted)

type checker struct {
	res   *Result
	v     *Verdict
	count map[string]int
}

func (c *checker) add(rule, topic, format string, args ...any) {
	k := rule + "/" + topic
	c.count[k]++
	if c.count[k] > maxPerRule {
		c.v.Dropped++
		return
	}
	c.v.Violations = append(c.v.Violations, Violation{rule, topic, fmt.Sprintf(format, args...)})
}

// Check applies every rule to a run's history, final log and replicas.
func Check(res *Result) *Verdict {
	c := &checker{res: res, v: &Verdict{Porcupine: map[string]porcupine.CheckResult{}}, count: map[string]int{}}
	h := res.History
	byTopic := map[string][]*Op{}
	for _, o := range h.Ops {
		byTopic[o.Topic] = append(byTopic[o.Topic], o)
	}
	c.v.Counts.TermChanges = len(h.Terms)
	topics := make([]string, 0, len(res.Final))
	for t := range res.Final {
		topics = append(topics, t)
	}
	sort.Strings(topics)
	for _, t := range topics {
		c.topic(t, byTopic[t], res.Final[t], res.FinalOK[t])
	}
	c.oneWriter()
	c.replicas()
	c.meta()
	for _, r := range res.Refusals {
		c.add(RuleDiskRefused, "", "%s", r)
	}
	return c.v
}

// writeInfo is what the history says about one payload.
type writeInfo struct {
	op  *Op
	idx int // position in the final log, -1 if absent
}

func (c *checker) topic(topic string, ops []*Op, final []string, finalOK bool) {
	c.v.Counts.Entries += len(final)
	writes := map[string]*writeInfo{}
	for _, o := range ops {
		if o.Kind.IsWrite() {
			writes[o.Payload] = &writeInfo{op: o, idx: -1}
			switch o.Status {
			case StOK:
				c.v.Counts.Acked++
			case StFail:
				c.v.Counts.Failed++
			default:
				c.v.Counts.Unknown++
			}
		}
	}
	// the final log: unique, known, not definitely failed
	for i, p := range final {
		w := writes[p]
		if w == nil {
			c.add(RulePhantom, topic, "offset %d holds %q, which no client wrote", i, p)
			continue
		}
		if w.idx >= 0 {
			c.add(RuleDuplicate, topic, "%q is at offsets %d and %d (%s)", p, w.idx, i, w.op)
			continue
		}
		w.idx = i
		if w.op.Status == StFail {
			c.add(RuleFailedWritten, topic, "%q is at offset %d but its write was answered %q", p, i, w.op.Err)
		}
	}
	for _, o := range ops {
		if !o.Kind.IsWrite() || o.Status != StOK {
			continue
		}
		w := writes[o.Payload]
		switch {
		case w.idx < 0 && finalOK:
			c.add(RuleLostAck, topic, "%q acknowledged at %s (%s) is not in the final log of %d entries", o.Payload,
				fmtDur(o.Return), o, len(final))
		case w.idx >= 0 && o.HasFirst && o.First != uint64(w.idx):
			c.add(RuleOffset, topic, "%q acknowledged at offset %d is at offset %d", o.Payload, o.First, w.idx)
		}
	}
	// reads
	for _, o := range ops {
		switch o.Kind {
		case OpRead:
			c.v.Counts.Reads++
			if o.Status == StEmpty {
				c.v.Counts.ReadEmpty++
				c.staleEmpty(topic, o, final, finalOK, writes)
			}
			if o.Status != StOK {
				continue
			}
			for i, val := range o.Values {
				off := o.First + uint64(i)
				if (off >= uint64(len(final)) && finalOK) || (off < uint64(len(final)) && final[off] != val) {
					c.add(RuleReadMismatch, topic, "%s: offset %d read %q, the final log has %s", o, off, val,
						finalAt(final, off))
				}
				c.readAfterWrite(topic, o, val, writes)
			}
		case OpGet:
			c.v.Counts.Gets++
			switch o.Status {
			case StEmpty:
				c.v.Counts.GetEmpty++
			case StOK:
				c.readAfterWrite(topic, o, o.Values[0], writes)
			default:
				c.v.Counts.GetUnknown++
			}
		}
	}
	c.cursor(topic, ops, final, writes)
	if finalOK {
		// without the whole log, where each write went is not known
		c.linearizable(topic, ops, writes)
	}
}

func finalAt(final []string, off uint64) string {
	if off >= uint64(len(final)) {
		return fmt.Sprintf("only %d entries", len(final))
	}
	return fmt.Sprintf("%q", final[off])
}

// staleEmpty: a READ may answer EMPTY only where nothing acknowledged
// before it was sent lies (EMPTY says "the log ends here"; a node whose
// view lags must find out rather than say so).
func (c *checker) staleEmpty(topic string, o *Op, final []string, finalOK bool, writes map[string]*writeInfo) {
	if !finalOK || o.Offset >= uint64(len(final)) {
		return
	}
	if w := writes[final[o.Offset]]; w != nil && w.op.Status == StOK && w.op.Return < o.Call {
		c.add(RuleStaleEmpty, topic, "%s answered EMPTY; offset %d holds %q, acknowledged at %s (%s)", o, o.Offset,
			final[o.Offset], fmtDur(w.op.Return), w.op)
	}
}

// readAfterWrite: a value read must come from a write invoked before the
// read returned.
func (c *checker) readAfterWrite(topic string, o *Op, val string, writes map[string]*writeInfo) {
	w := writes[val]
	if w == nil {
		c.add(RulePhantom, topic, "%s returned %q, which no client wrote", o, val)
		return
	}
	if w.op.Call > o.Return {
		c.add(RulePhantom, topic, "%s returned %q before its write was sent (%s)", o, val, w.op)
	}
}

// termChangeBetween reports whether raft leadership changed in [a, b]
// (with the monitor's sampling slack).
func (c *checker) termChangeBetween(a, b time.Duration) bool {
	for _, tc := range c.res.History.Terms {
		if tc.At+20*time.Millisecond >= a && tc.At-20*time.Millisecond <= b {
			return true
		}
	}
	return false
}

// cursor checks the shared cursor: each entry served once (a repeat only
// after a raft leadership change: the at-least-once window), in offset
// order, and none skipped beyond what lost replies can explain.
func (c *checker) cursor(topic string, ops []*Op, final []string, writes map[string]*writeInfo) {
	var gets []*Op
	lost := 0
	for _, o := range ops {
		if o.Kind != OpGet {
			continue
		}
		switch o.Status {
		case StOK:
			if w := writes[o.Values[0]]; w != nil && w.idx >= 0 {
				gets = append(gets, o)
			}
		case StUnknown, StFail:
			lost++
		}
	}
	sort.SliceStable(gets, func(i, j int) bool { return gets[i].Call < gets[j].Call })
	idx := func(o *Op) int { return writes[o.Values[0]].idx }
	served := map[int]*Op{}
	for _, o := range gets {
		i := idx(o)
		if prev := served[i]; prev != nil {
			// allowed when raft leadership changed while either GET was
			// in flight or between them (the two may overlap: a deposed
			// owner serves from its buffer until it notices)
			if c.termChangeBetween(min(prev.Call, o.Call), max(prev.Return, o.Return)) {
				c.v.Counts.CursorRedelivered++
			} else {
				c.add(RuleCursorDup, topic, "offset %d served twice with no raft leader change between: %s and %s", i, prev, o)
			}
			continue
		}
		served[i] = o
	}
	for a := 0; a < len(gets); a++ {
		for b := a + 1; b < len(gets); b++ {
			A, B := gets[a], gets[b]
			if A.Return >= B.Call || idx(A) < idx(B) {
				continue
			}
			if !c.termChangeBetween(A.Call, B.Return) {
				c.add(RuleCursorOrder, topic, "%s returned offset %d before %s returned offset %d", A, idx(A), B, idx(B))
			}
		}
	}
	c.cursorEmpty(topic, ops, gets)
	if !c.res.FinalOK[topic] {
		return
	}
	var missing []int
	for i := range final {
		if served[i] == nil {
			missing = append(missing, i)
		}
	}
	if len(missing) > lost {
		c.add(RuleCursorSkip, topic, "%d entries never served by GET (offsets %v), only %d GETs lost their reply",
			len(missing), head(missing, 20), lost)
	}
}

// cursorEmpty: GET answers EMPTY when the shared cursor is at the end of
// what is acknowledged. So an entry acknowledged before an EMPTY GET was
// sent must have been served by then: its first GET may not start after
// the EMPTY one returned (outside the at-least-once window of a raft
// leadership change, when a deposed cursor owner may answer from its own
// view). gets are the topic's served GETs, sorted by call. Entries no GET
// served are cursor-skip's.
func (c *checker) cursorEmpty(topic string, ops, gets []*Op) {
	first := map[string]*Op{} // entry -> the earliest GET that served it
	for _, o := range gets {
		if first[o.Values[0]] == nil {
			first[o.Values[0]] = o
		}
	}
	for _, e := range ops {
		if e.Kind != OpGet || e.Status != StEmpty {
			continue
		}
		for _, w := range ops {
			if !w.Kind.IsWrite() || w.Status != StOK || w.Return >= e.Call {
				continue
			}
			s := first[w.Payload]
			if s == nil || s.Call <= e.Return || c.termChangeBetween(e.Call, s.Return) {
				continue
			}
			c.add(RuleCursorEmpty, topic, "%s answered EMPTY; %q, acknowledged at %s (%s), was first served by %s",
				e, w.Payload, fmtDur(w.Return), w, s)
		}
	}
}

func head(xs []int, n int) []int {
	if len(xs) > n {
		return xs[:n]
	}
	return xs
}

// ---- linearizability (porcupine) ----

// The model: a topic is a log; its state is how many entries have been
// appended. Since the final log fixes where each write went, a write of
// the entry at index i can only take effect when the state is i; a read
// that returned entries up to index j (READ, or GET's one entry) needs the
// state past j. An acknowledged write that is missing can take effect
// nowhere. Writes with unknown outcome return at +infinity; so do writes
// answered with a definite error that are in the log anyway (reported as
// failed-written; modelled as unknown so that one broken rule is not
// reported again as a linearizability failure); writes absent from the log
// with no acknowledgement are left out (they did nothing).
// EMPTY answers are not modelled: reads may lag (see docs/testing.md).
type linInput struct {
	write bool
	idx   int // write: index in the final log (-1 absent); read: entries needed
	want  int // MPUT's acknowledged offset, -1 if none
}

var logModel = porcupine.Model{
	Init: func() interface{} { return 0 },
	Step: func(state, input, output interface{}) (bool, interface{}) {
		n := state.(int)
		in := input.(linInput)
		if in.write {
			if in.idx != n || (in.want >= 0 && in.want != in.idx) {
				return false, n
			}
			return true, n + 1
		}
		return in.idx <= n, n
	},
	DescribeOperation: func(input, output interface{}) string {
		in := input.(linInput)
		if in.write {
			return fmt.Sprintf("append #%d (acked at %d)", in.idx, in.want)
		}
		return fmt.Sprintf("read up to #%d", in.idx-1)
	},
	DescribeState: func(state interface{}) string { return fmt.Sprintf("%d entries", state.(int)) },
}

func (c *checker) linearizable(topic string, ops []*Op, writes map[string]*writeInfo) {
	var hist []porcupine.Operation
	for _, o := range ops {
		ret := int64(o.Return)
		switch {
		case o.Kind.IsWrite():
			w := writes[o.Payload]
			if o.Status != StOK {
				if w.idx < 0 {
					continue
				}
				ret = math.MaxInt64
			}
			want := -1
			if o.Status == StOK && o.HasFirst {
				want = int(o.First)
			}
			hist = append(hist, porcupine.Operation{ClientId: o.Client, Input: linInput{write: true, idx: w.idx, want: want},
				Call: int64(o.Call), Return: ret})
		case o.Kind == OpRead && o.Status == StOK:
			hist = append(hist, porcupine.Operation{ClientId: o.Client,
				Input: linInput{idx: int(o.First) + len(o.Values)}, Call: int64(o.Call), Return: ret})
		case o.Kind == OpGet && o.Status == StOK:
			w := writes[o.Values[0]]
			if w == nil || w.idx < 0 {
				continue
			}
			hist = append(hist, porcupine.Operation{ClientId: o.Client, Input: linInput{idx: w.idx + 1},
				Call: int64(o.Call), Return: ret})
		}
	}
	r, _ := porcupine.CheckOperationsVerbose(logModel, hist, 20*time.Second)
	c.v.Porcupine[topic] = r
	switch r {
	case porcupine.Illegal:
		c.add(RuleLinearizable, topic, "no linearization of %d operations (writes in real-time order must take increasing offsets; reads must not see later writes)", len(hist))
	case porcupine.Unknown:
		c.add(RuleLinearizable, topic, "porcupine timed out on %d operations", len(hist))
	}
}

// ---- one writer per segment epoch ----

func (c *checker) oneWriter() {
	type segEpoch struct {
		topic      string
		seg, epoch uint64
	}
	type segOff struct {
		topic    string
		seg, off uint64
	}
	writers := map[segEpoch]string{}
	values := map[segOff]string{}
	for _, r := range c.res.History.Reps {
		k := segEpoch{r.Topic, r.Segment, r.Epoch}
		if w, ok := writers[k]; ok && w != r.From {
			c.add(RuleOneWriter, r.Topic, "segment %d epoch %d replicated by %s and by %s", r.Segment, r.Epoch, w, r.From)
		} else if !ok {
			writers[k] = r.From
		}
		for i, v := range r.Values {
			ko := segOff{r.Topic, r.Segment, r.First + uint64(i)}
			if old, ok := values[ko]; ok && old != v {
				c.add(RuleOneWriter, r.Topic, "segment %d offset %d replicated as %q and later as %q (by %s, epoch %d)",
					r.Segment, ko.off, old, v, r.From, r.Epoch)
			} else if !ok {
				values[ko] = v
			}
		}
	}
}

// ---- replicas and metadata ----

func (c *checker) replicas() {
	for _, r := range c.res.Replicas {
		if r.Mismatch >= 0 {
			c.add(RuleReplica, r.Topic, "n%d segment %d: %s", r.Node, r.Segment, r.MismatchDetail)
		}
		if r.Held < r.Count {
			c.v.Counts.LaggingReplicas++
		}
	}
}

func (c *checker) meta() {
	st := c.res.Meta
	if st == nil {
		return
	}
	for name, t := range st.Topics {
		final, ok := c.res.Final[name]
		if !ok || !c.res.FinalOK[name] {
			continue
		}
		if sealed := t.SealedTotal(); sealed > uint64(len(final)) {
			c.add(RuleMeta, name, "sealed segments count %d entries, the final log has %d", sealed, len(final))
		}
	}
}

// Summary is a one-line description of a verdict.
func (v *Verdict) Summary() string {
	k := v.Counts
	s := fmt.Sprintf("writes acked=%d unknown=%d failed=%d; gets=%d (empty %d, lost %d, redelivered %d); reads=%d (empty %d); entries=%d; leader changes=%d",
		k.Acked, k.Unknown, k.Failed, k.Gets, k.GetEmpty, k.GetUnknown, k.CursorRedelivered, k.Reads, k.ReadEmpty,
		k.Entries, k.TermChanges)
	if !v.OK() {
		s += "; VIOLATED " + strings.Join(v.Rules(), ",")
	}
	if ids := v.KnownIDs(); len(ids) > 0 {
		s += "; known bugs " + strings.Join(ids, ",")
	}
	return s
}
