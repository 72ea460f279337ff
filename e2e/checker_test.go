package e2e

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"
)

// The history checker of the failover tests (issue 5). Producers record
// every PUT they send (op); after the faults the test reads the whole topic
// from offset 0 and checkHistory compares the two. It is a plain function
// over plain data, unit-tested below with hand-made histories.

// op is one PUT request as its producer saw it.
type op struct {
	producer string    // who sent it; a producer sends one request at a time
	msg      int       // the producer's logical message number
	attempt  int       // 0, then 1, 2, ... for each retry of msg (a new payload)
	node     int       // the node the request was sent to
	payload  string    // unique in the whole history
	sent     time.Time // just before the request was written
	answered time.Time // just after the reply was read; zero if none came
	reply    string    // the reply body, if one came
	ioErr    string    // why no reply came (connection broken, timeout, stopped)
}

// outcome is what a reply says about whether its write is in the log.
type outcome int

const (
	// acked: "OK". The entry must be in the log exactly once.
	acked outcome = iota
	// maybe: "ERR ... outcome unknown", or no reply (the connection broke
	// or timed out). The entry may be in the log, at most once.
	maybe
	// notWritten: any other ERR (NotLeaderForPartition, unavailable
	// without "outcome unknown", ...): the node answers those only for
	// writes it never assigned an offset to. The entry is never in the log.
	notWritten
	// strange: a reply that is neither OK nor ERR: always a problem.
	strange
)

func (o outcome) String() string {
	return [...]string{"acked", "maybe", "not-written", "strange"}[o]
}

// outcome classifies o's reply (docs/replication.md "What is not
// guaranteed"; docs/protocol.md).
func (o op) outcome() outcome {
	switch {
	case o.ioErr != "" || o.answered.IsZero():
		return maybe
	case o.reply == "OK":
		return acked
	case strings.HasPrefix(o.reply, "ERR ") && strings.Contains(o.reply, "outcome unknown"):
		return maybe
	case strings.HasPrefix(o.reply, "ERR "):
		return notWritten
	}
	return strange
}

func (o op) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%q (%s to node %d, sent %s", o.payload, o.producer, o.node, o.sent.Format("15:04:05.000"))
	switch {
	case o.ioErr != "":
		fmt.Fprintf(&b, ", no reply: %s", o.ioErr)
	case o.answered.IsZero():
		b.WriteString(", no reply")
	default:
		fmt.Fprintf(&b, ", answered %q at %s", quoteShort(o.reply), o.answered.Format("15:04:05.000"))
	}
	b.WriteString(")")
	return b.String()
}

func quoteShort(s string) string {
	if len(s) > 120 {
		return s[:120] + "..."
	}
	return s
}

// checkReport is checkHistory's verdict: problems (empty when the history
// is correct) and counts for the test log.
type checkReport struct {
	problems                                []string
	entries, acked, maybeIn, maybeOut, notW int
}

func (r checkReport) String() string {
	return fmt.Sprintf("%d entries read; %d acknowledged writes, %d in doubt (%d of them in the log), %d refused",
		r.entries, r.acked, r.maybeIn+r.maybeOut, r.maybeIn, r.notW)
}

// err is nil when there are no problems, else all of them (the first 30).
func (r checkReport) err() error {
	if len(r.problems) == 0 {
		return nil
	}
	ps := r.problems
	more := ""
	if len(ps) > 30 {
		more = fmt.Sprintf("\n... and %d more", len(ps)-30)
		ps = ps[:30]
	}
	return fmt.Errorf("%d problems in the history (%s):\n%s%s", len(r.problems), r, strings.Join(ps, "\n"), more)
}

// checkHistory checks the log (every entry of the topic, by offset from 0)
// against the PUTs that were sent (ops; payloads unique). allowed lists
// payloads written outside the history (none in these tests, but a test
// may add markers). The rules:
//
//  1. every entry in the log was sent by someone: nothing appears that
//     was never written;
//  2. no payload appears twice (payloads are unique, so a second copy is a
//     write applied twice);
//  3. every acknowledged payload appears (exactly once, by 2);
//  4. a payload answered with a definite error never appears;
//     maybe-written payloads may appear (at most once, by 2);
//  5. per producer, acknowledged payloads appear in the order they were
//     acknowledged (a producer has one request in flight);
//  6. real-time order: if write a was acknowledged before write b was
//     sent, and b is in the log, a's offset is below b's. (b got its
//     offset after it was sent; a held its offset, durably on a quorum,
//     before that; offsets grow with time within a segment, and a segment
//     opens only after its predecessor is sealed with what it held.)
//     Rule 5 is the special case of one producer; it is kept for its
//     clearer message.
//  7. every reply is OK or ERR.
func checkHistory(ops []op, log []string, allowed ...string) checkReport {
	var r checkReport
	r.entries = len(log)
	problem := func(format string, args ...any) { r.problems = append(r.problems, fmt.Sprintf(format, args...)) }

	sentBy := map[string]*op{}
	for i := range ops {
		o := &ops[i]
		if prev, dup := sentBy[o.payload]; dup {
			problem("history: payload %q sent twice: %s and %s", o.payload, prev, o)
		}
		sentBy[o.payload] = o
	}
	isAllowed := map[string]bool{}
	for _, p := range allowed {
		isAllowed[p] = true
	}

	offsets := map[string][]int{}
	for off, p := range log {
		offsets[p] = append(offsets[p], off)
		if sentBy[p] == nil && !isAllowed[p] {
			problem("rule 1: offset %d holds %q, which nobody sent", off, quoteShort(p))
		}
	}
	for p, offs := range offsets {
		if len(offs) > 1 {
			what := "an allowed extra payload"
			if o := sentBy[p]; o != nil {
				what = o.String()
			}
			problem("rule 2: %q appears %d times, at offsets %v; %s", quoteShort(p), len(offs), offs, what)
		}
	}

	for i := range ops {
		o := &ops[i]
		offs := offsets[o.payload]
		switch o.outcome() {
		case acked:
			r.acked++
			if len(offs) == 0 {
				problem("rule 3: acknowledged write lost: %s is not in the log", o)
			}
		case maybe:
			if len(offs) > 0 {
				r.maybeIn++
			} else {
				r.maybeOut++
			}
		case notWritten:
			r.notW++
			if len(offs) > 0 {
				problem("rule 4: %s was refused, but it is in the log at offset %d", o, offs[0])
			}
		case strange:
			problem("rule 7: %s: a PUT reply must be OK or ERR", o)
		}
	}

	// rule 5
	byProducer := map[string][]*op{}
	for i := range ops {
		if o := &ops[i]; o.outcome() == acked && len(offsets[o.payload]) > 0 {
			byProducer[o.producer] = append(byProducer[o.producer], o)
		}
	}
	producers := make([]string, 0, len(byProducer))
	for p := range byProducer {
		producers = append(producers, p)
	}
	slices.Sort(producers)
	for _, p := range producers {
		os := byProducer[p]
		sort.SliceStable(os, func(i, j int) bool { return os[i].answered.Before(os[j].answered) })
		for i := 1; i < len(os); i++ {
			a, b := os[i-1], os[i]
			if oa, ob := offsets[a.payload][0], offsets[b.payload][0]; oa >= ob {
				problem("rule 5: producer %s: %s was acknowledged before %s, but sits at offset %d, not below %d",
					p, a, b, oa, ob)
			}
		}
	}

	// rule 6: sort the acknowledged writes found in the log by answer time;
	// best[i] is the one with the highest offset among the first i+1.
	var done []*op
	for i := range ops {
		if o := &ops[i]; o.outcome() == acked && len(offsets[o.payload]) > 0 {
			done = append(done, o)
		}
	}
	sort.Slice(done, func(i, j int) bool { return done[i].answered.Before(done[j].answered) })
	best := make([]*op, len(done))
	for i, o := range done {
		best[i] = o
		if i > 0 && offsets[best[i-1].payload][0] > offsets[o.payload][0] {
			best[i] = best[i-1]
		}
	}
	for i := range ops {
		b := &ops[i]
		offs := offsets[b.payload]
		if len(offs) == 0 {
			continue
		}
		// how many writes were acknowledged strictly before b was sent
		k := sort.Search(len(done), func(j int) bool { return !done[j].answered.Before(b.sent) })
		if k == 0 {
			continue
		}
		if a := best[k-1]; offsets[a.payload][0] >= offs[0] && a != b {
			problem("rule 6: %s was acknowledged before %s was sent, but sits at offset %d, not below %d",
				a, b, offsets[a.payload][0], offs[0])
		}
	}
	return r
}

// checkExLeader checks what a deposed leader acknowledged after the
// metadata sealed its segment, whose entries are log[first:end]. The
// writes in question are those sent to node victim and answered OK after
// sealedAt. Each must be in the log (checkHistory says so too; this names
// the culprit): either in the sealed segment (an entry a quorum held
// before recovery fenced it, acknowledged late) or in a later segment
// (the node caught up and forwarded the write to the new leader). The
// argument that this proves the ex-leader "acknowledged nothing after its
// segment was sealed" is at sealOutLeader (failover_test.go). It returns
// the problems and how many late OKs fell in the sealed segment and after
// it.
func checkExLeader(ops []op, log []string, victim int, sealedAt time.Time, first, end int) (problems []string, inSeg, after int) {
	at := map[string]int{}
	for off, p := range log {
		at[p] = off
	}
	for _, o := range ops {
		if o.node != victim || o.outcome() != acked || !o.answered.After(sealedAt) {
			continue
		}
		off, ok := at[o.payload]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("ex-leader node %d acknowledged %s after its segment was sealed at %s, and the entry is not in the log",
				victim, o, sealedAt.Format("15:04:05.000")))
		case off < first:
			problems = append(problems, fmt.Sprintf("ex-leader node %d acknowledged %s after its segment was sealed at %s; it is at offset %d, before the segment's first (%d)",
				victim, o, sealedAt.Format("15:04:05.000"), off, first))
		case off < end:
			inSeg++
		default:
			after++
		}
	}
	return problems, inSeg, after
}

// ---- unit tests of the checker ----

// hist builds a history from compact lines "producer payload reply
// sent answered" (times in ms from an epoch; reply "-" = no reply,
// spaces in replies as '_').
func hist(t *testing.T, lines ...string) []op {
	t.Helper()
	t0 := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var ops []op
	for _, l := range lines {
		var o op
		var reply string
		var sent, answered int
		if _, err := fmt.Sscan(l, &o.producer, &o.payload, &reply, &sent, &answered); err != nil {
			t.Fatalf("bad history line %q: %v", l, err)
		}
		o.node = 1
		o.sent = t0.Add(time.Duration(sent) * time.Millisecond)
		if reply == "-" {
			o.ioErr = "connection reset"
		} else {
			o.reply = strings.ReplaceAll(reply, "_", " ")
			o.answered = t0.Add(time.Duration(answered) * time.Millisecond)
		}
		ops = append(ops, o)
	}
	return ops
}

func TestCheckerClassifiesReplies(t *testing.T) {
	for _, tc := range []struct {
		o    op
		want outcome
	}{
		{op{reply: "OK", answered: time.Now()}, acked},
		{op{reply: "ERR unavailable: peer 2: connection reset (outcome unknown)", answered: time.Now()}, maybe},
		{op{reply: "ERR segment fenced for recovery: outcome unknown", answered: time.Now()}, maybe},
		{op{reply: "ERR write timed out (outcome unknown)", answered: time.Now()}, maybe},
		{op{ioErr: "EOF"}, maybe},
		{op{}, maybe}, // never answered (the test stopped first)
		{op{reply: "ERR NotLeaderForPartition: t/1", answered: time.Now()}, notWritten},
		{op{reply: "ERR NotLeaderForPartition: t/1 (lease expired)", answered: time.Now()}, notWritten},
		{op{reply: "ERR unavailable: no raft leader", answered: time.Now()}, notWritten},
		{op{reply: "EMPTY", answered: time.Now()}, strange},
	} {
		if got := tc.o.outcome(); got != tc.want {
			t.Errorf("reply %q, ioErr %q: outcome %v, want %v", tc.o.reply, tc.o.ioErr, got, tc.want)
		}
	}
}

func TestCheckerAcceptsCorrectHistories(t *testing.T) {
	ops := hist(t,
		"p1 p1-0-0 OK 0 10",
		"p2 p2-0-0 OK 1 12",
		"p1 p1-1-0 ERR_x_(outcome_unknown) 11 30", // in the log
		"p2 p2-1-0 - 13 0",                        // broken connection, not in the log
		"p2 p2-1-1 ERR_NotLeaderForPartition:_t/1 14 40",
		"p2 p2-1-2 OK 41 50",
		"p1 p1-1-1 OK 31 60",
	)
	// p2's first two writes were concurrent with p1's: either order is fine
	for _, log := range [][]string{
		{"p2-0-0", "p1-0-0", "p1-1-0", "p2-1-2", "p1-1-1"},
		{"p1-0-0", "p2-0-0", "p2-1-2", "p1-1-0", "p1-1-1"},
		{"p1-0-0", "p2-0-0", "p2-1-2", "p1-1-1"},
	} {
		r := checkHistory(ops, log)
		if err := r.err(); err != nil {
			t.Errorf("log %v: %v", log, err)
		}
	}
	r := checkHistory(ops, []string{"p1-0-0", "p2-0-0", "p2-1-2", "p1-1-0", "p1-1-1"})
	if r.acked != 4 || r.maybeIn != 1 || r.maybeOut != 1 || r.notW != 1 || r.entries != 5 {
		t.Errorf("counts: %s", r)
	}
	if got := checkHistory(nil, nil).err(); got != nil {
		t.Errorf("empty history: %v", got)
	}
	if got := checkHistory(nil, []string{"marker"}, "marker").err(); got != nil {
		t.Errorf("allowed extra payload: %v", got)
	}
}

func TestCheckerFindsEachViolation(t *testing.T) {
	ops := hist(t,
		"p1 a0 OK 0 10",
		"p1 a1 OK 11 20",
		"p2 b0 ERR_NotLeaderForPartition:_t/1 0 30",
		"p2 b1 ERR_unavailable_(outcome_unknown) 31 40",
		"p2 b2 OK 41 50",
	)
	for _, tc := range []struct {
		name  string
		extra []string // history lines added for this case
		log   []string
		want  string // a rule number the problem must cite
	}{
		{"phantom entry", nil, []string{"a0", "a1", "zz", "b2"}, "rule 1:"},
		{"acknowledged write twice", nil, []string{"a0", "a1", "a1", "b2"}, "rule 2:"},
		{"maybe-written twice", nil, []string{"a0", "b1", "a1", "b1", "b2"}, "rule 2:"},
		{"acknowledged write lost", nil, []string{"a0", "b2"}, "rule 3:"},
		{"refused write appears", nil, []string{"a0", "b0", "a1", "b2"}, "rule 4:"},
		{"one producer's acks out of order", nil, []string{"a1", "a0", "b2"}, "rule 5:"},
		{"acked before sent, but later offset", nil, []string{"b2", "a0", "a1"}, "rule 6:"},
		{"strange reply", []string{"p3 c0 EMPTY 0 5"}, []string{"a0", "a1", "b2"}, "rule 7:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			all := append(slices.Clone(ops), hist(t, tc.extra...)...)
			if err := checkHistory(all, []string{"a0", "a1", "b2"}).err(); tc.extra == nil && err != nil {
				t.Fatalf("the history without the fault: %v", err)
			}
			err := checkHistory(all, tc.log).err()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("log %v: got %v, want a %s problem", tc.log, err, strings.TrimSuffix(tc.want, ":"))
			}
			t.Log(err)
		})
	}
	// the same payload sent twice is a bug in the test's producers
	dup := hist(t, "p1 a0 OK 0 1", "p2 a0 OK 0 2")
	if err := checkHistory(dup, []string{"a0"}).err(); err == nil || !strings.Contains(err.Error(), "sent twice") {
		t.Fatalf("payload sent twice: got %v", err)
	}
}

func TestCheckerExLeader(t *testing.T) {
	ops := hist(t,
		"v v0 OK 0 10",
		"v v1 OK 11 500", // answered after the seal at 100: a late ack
		"v v2 OK 501 600",
		"w w0 OK 0 700", // another node: not the ex-leader's ack
	)
	for i := range ops {
		if ops[i].producer == "w" {
			ops[i].node = 2
		}
	}
	sealedAt := ops[0].sent.Add(100 * time.Millisecond)
	// the victim's segment holds offsets [0, 2); w0 is in the next one
	if ps, in, after := checkExLeader(ops, []string{"v0", "v1", "w0", "v2"}, 1, sealedAt, 0, 2); len(ps) != 0 || in != 1 || after != 1 {
		t.Fatalf("late acks in the log: problems %v, %d in the segment, %d after (want none, 1, 1)", ps, in, after)
	}
	ps, _, _ := checkExLeader(ops, []string{"v0", "w0", "v2"}, 1, sealedAt, 0, 1)
	if len(ps) != 1 || !strings.Contains(ps[0], `"v1"`) {
		t.Fatalf("a late ack of an entry the seal cut off: problems %v", ps)
	}
	t.Log(ps[0])
	if ps, _, _ := checkExLeader(ops, []string{"v0", "v1", "w0", "v2"}, 1, sealedAt, 3, 4); len(ps) != 1 || !strings.Contains(ps[0], "before the segment") {
		t.Fatalf("a late ack of an entry in an earlier segment: problems %v", ps)
	}
	if ps, _, _ := checkExLeader(ops, nil, 2, sealedAt, 0, 0); len(ps) != 1 || !strings.Contains(ps[0], `"w0"`) {
		t.Fatalf("victim node 2: problems %v", ps)
	}
}
