package testkit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// Status is how an operation ended, as the client saw it.
type Status uint8

const (
	StOK      Status = iota // success (for GET/READ: entries returned)
	StEmpty                 // GET/READ: EMPTY
	StFail                  // a definite failure: nothing happened
	StUnknown               // no reply, or an error whose outcome is unknown
)

func (s Status) String() string { return [...]string{"ok", "empty", "fail", "unknown"}[s] }

// Op is one client operation in the history. Times are virtual, since the
// start of the run.
type Op struct {
	ID       int
	Client   int // 0: the harness (setup, final reads)
	Kind     OpKind
	Topic    string
	Payload  string
	Offset   uint64
	Max      int
	Wait     time.Duration // GET: a long poll (GETW) of this length; 0: a plain GET
	Node     uint64
	Call     time.Duration
	Return   time.Duration
	Status   Status
	Err      string
	HasFirst bool
	First    uint64   // MPUT: offset of the entry; READ: offset of Values[0]
	Values   []string // GET: the entry; READ: the entries
}

func (o *Op) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "c%d %s %s", o.Client, o.Kind, o.Topic)
	switch o.Kind {
	case OpPut, OpMPut:
		fmt.Fprintf(&b, " %s", o.Payload)
	case OpRead:
		fmt.Fprintf(&b, " %d %d", o.Offset, o.Max)
	case OpGet:
		if o.Wait > 0 {
			fmt.Fprintf(&b, " wait=%v", o.Wait)
		}
	}
	fmt.Fprintf(&b, " @n%d -> %s", o.Node, o.Status)
	if o.HasFirst {
		fmt.Fprintf(&b, " %d", o.First)
	}
	if len(o.Values) > 0 {
		fmt.Fprintf(&b, " %v", o.Values)
	}
	if o.Err != "" {
		fmt.Fprintf(&b, " (%s)", o.Err)
	}
	return b.String()
}

// Event is something the harness did or observed that is not a client op:
// a fault, a restart, a raft leadership change.
type Event struct {
	At   time.Duration
	Src  string // "nemesis", "raft", "harness"
	Text string
	seq  int
}

// TermChange is a raft leadership change seen by the monitor.
type TermChange struct {
	At     time.Duration
	Leader uint64
	Term   uint64
}

// ReplicateObs is a Replicate request a segment leader sent (network tap).
type ReplicateObs struct {
	At      time.Duration
	From    string
	To      string
	Topic   string
	Segment uint64
	Epoch   uint64
	Leader  uint64
	First   uint64
	Values  []string
}

// History is what a run did and saw. Safe for concurrent use while the run
// goes on; read it after.
type History struct {
	mu     sync.Mutex
	start  time.Time
	Ops    []*Op
	Events []Event
	Terms  []TermChange
	Reps   []ReplicateObs
	nextID int
}

// NewHistory starts an empty history whose times count from start (take
// time.Now() inside the bubble, when the cluster starts): NewNemesis
// records its faults in one.
func NewHistory(start time.Time) *History { return &History{start: start} }

func (h *History) now() time.Duration { return time.Since(h.start) }

// begin records an op's invocation.
func (h *History) begin(o *Op) *Op {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.nextID++
	o.ID = h.nextID
	o.Call = h.now()
	h.Ops = append(h.Ops, o)
	return o
}

// lastWriteCall is when the last write (PUT, MPUT) was sent; false when
// none was.
func (h *History) lastWriteCall() (time.Duration, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := len(h.Ops) - 1; i >= 0; i-- {
		if h.Ops[i].Kind.IsWrite() {
			return h.Ops[i].Call, true
		}
	}
	return 0, false
}

// end records an op's completion.
func (h *History) end(o *Op) {
	h.mu.Lock()
	o.Return = h.now()
	h.mu.Unlock()
}

// Eventf records an event.
func (h *History) Eventf(src, format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.Events = append(h.Events, Event{At: h.now(), Src: src, Text: fmt.Sprintf(format, args...), seq: len(h.Events)})
}

func (h *History) term(leader, term uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.Terms = append(h.Terms, TermChange{At: h.now(), Leader: leader, Term: term})
	h.Events = append(h.Events, Event{At: h.now(), Src: "raft", Text: fmt.Sprintf("leader n%d term %d", leader, term),
		seq: len(h.Events)})
}

func (h *History) replicate(r ReplicateObs) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r.At = h.now()
	h.Reps = append(h.Reps, r)
}

// Trace renders the history as lines ordered by virtual time (ties broken
// by source and sequence, so the order does not depend on which goroutine
// recorded first).
func (h *History) Trace() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	type line struct {
		at  time.Duration
		key string
		seq int
		s   string
	}
	var ls []line
	for _, o := range h.Ops {
		ls = append(ls, line{o.Return, fmt.Sprintf("c%03d", o.Client), o.ID,
			fmt.Sprintf("%s [%s..]", o.String(), fmtDur(o.Call))})
	}
	for _, e := range h.Events {
		ls = append(ls, line{e.At, e.Src, e.seq, e.Src + ": " + e.Text})
	}
	sort.SliceStable(ls, func(i, j int) bool {
		if ls[i].at != ls[j].at {
			return ls[i].at < ls[j].at
		}
		if ls[i].key != ls[j].key {
			return ls[i].key < ls[j].key
		}
		return ls[i].seq < ls[j].seq
	})
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = fmtDur(l.at) + " " + l.s
	}
	return out
}

// Outcomes renders what each client saw, in its own order, without times
// or error texts: "c1 12 MPUT t0 c1.12 -> ok 33". Two runs with equal
// outcomes answered every request the same way, however their timing
// differed.
func (h *History) Outcomes() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	byClient := map[int][]*Op{}
	var clients []int
	for _, o := range h.Ops {
		if _, ok := byClient[o.Client]; !ok {
			clients = append(clients, o.Client)
		}
		byClient[o.Client] = append(byClient[o.Client], o)
	}
	sort.Ints(clients)
	var out []string
	for _, c := range clients {
		for i, o := range byClient[c] {
			s := fmt.Sprintf("c%d %d %s %s %s %d -> %s", c, i, o.Kind, o.Topic, o.Payload, o.Offset, o.Status)
			if o.HasFirst {
				s += fmt.Sprintf(" %d", o.First)
			}
			if len(o.Values) > 0 {
				s += fmt.Sprintf(" %v", o.Values)
			}
			out = append(out, s)
		}
	}
	return out
}

// OutcomeAgreement is the share of two outcome lists' lines that agree,
// client by client, up to each client's first difference.
func OutcomeAgreement(a, b []string) float64 {
	client := func(l string) string { return l[:strings.IndexByte(l, ' ')] }
	ia, ib := 0, 0
	same, total := 0, max(len(a), len(b))
	for ia < len(a) && ib < len(b) {
		ca, cb := client(a[ia]), client(b[ib])
		switch {
		case ca < cb:
			ia++
		case cb < ca:
			ib++
		default:
			diverged := false
			for ia < len(a) && ib < len(b) && client(a[ia]) == ca && client(b[ib]) == ca {
				if !diverged && a[ia] == b[ib] {
					same++
				} else {
					diverged = true
				}
				ia++
				ib++
			}
			for ia < len(a) && client(a[ia]) == ca {
				ia++
			}
			for ib < len(b) && client(b[ib]) == ca {
				ib++
			}
		}
	}
	if total == 0 {
		return 1
	}
	return float64(same) / float64(total)
}

func fmtDur(d time.Duration) string { return fmt.Sprintf("%9.6fs", d.Seconds()) }

// HashLines hashes trace lines.
func HashLines(lines []string) string {
	h := sha256.New()
	for _, l := range lines {
		h.Write([]byte(l))
		h.Write([]byte{'\n'})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// Divergence describes where two traces of one seed part ways.
type Divergence struct {
	Identical bool
	Line      int           // first differing line (0-based)
	At        time.Duration // its virtual time
	Lines     int           // lines in the shorter trace
	Fraction  float64       // At / the run's length (1 if identical)
}

func (d Divergence) String() string {
	if d.Identical {
		return "identical"
	}
	return fmt.Sprintf("identical for the first %d of %d lines, diverging at %s (%.1f%% of the run)", d.Line, d.Lines,
		fmtDur(d.At), 100*d.Fraction)
}

// Diverge compares two traces line by line.
func Diverge(a, b []string) Divergence {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			at := min(lineTime(a[i]), lineTime(b[i]))
			end := max(lineTime(a[len(a)-1]), lineTime(b[len(b)-1]))
			f := 0.0
			if end > 0 {
				f = float64(at) / float64(end)
			}
			return Divergence{Line: i, At: at, Lines: n, Fraction: f}
		}
	}
	if len(a) != len(b) {
		at := lineTime(a[n-1])
		end := max(lineTime(a[len(a)-1]), lineTime(b[len(b)-1]))
		return Divergence{Line: n, At: at, Lines: n, Fraction: float64(at) / float64(max(end, 1))}
	}
	return Divergence{Identical: true, Lines: n, Fraction: 1}
}

// lineTime reads the virtual time at the start of a trace line.
func lineTime(l string) time.Duration {
	var sec float64
	if _, err := fmt.Sscanf(strings.TrimSpace(l), "%fs", &sec); err != nil {
		return 0
	}
	return time.Duration(sec * float64(time.Second))
}
