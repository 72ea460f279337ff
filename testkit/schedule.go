package testkit

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"time"
)

// OpKind is a client operation.
type OpKind uint8

const (
	OpRegister OpKind = iota
	OpPut             // PUT t payload (reference protocol: no offset in the reply)
	OpMPut            // MPUT t 1 payload (reply carries the offset)
	OpGet             // GET t (shared cursor)
	OpRead            // READ t offset max
)

func (k OpKind) String() string {
	return [...]string{"REGISTER", "PUT", "MPUT", "GET", "READ"}[k]
}

// IsWrite reports whether the op appends.
func (k OpKind) IsWrite() bool { return k == OpPut || k == OpMPut }

// OpPlan is one planned client operation.
type OpPlan struct {
	Kind    OpKind
	Topic   string
	Payload string        // writes: unique in the run
	Offset  uint64        // READ
	Max     int           // READ
	Wait    time.Duration // GET: a long poll (GETW) of this length; 0: a plain GET
	Node    uint64        // node the client prefers for this op
	Think   time.Duration
}

// ClientPlan is what one client does, in order, until the workload ends.
type ClientPlan struct {
	ID  int
	Ops []OpPlan
}

// FaultKind is a nemesis action.
type FaultKind uint8

const (
	FaultCrash      FaultKind = iota // power cut (unsynced lost, maybe torn), restart after Dur
	FaultStop                        // graceful stop, restart after Dur
	FaultPause                       // network held and disk stalled for Dur
	FaultPartition                   // isolate Target from the others for Dur
	FaultSplit                       // random two-sided split for Dur
	FaultResetLink                   // reset every connection between Target and Peer
	FaultSlowLink                    // extra latency Target<->Peer for Dur
	FaultCorrupt                     // power cut, flip a byte of a WAL file, restart after Dur
	FaultDiskFull                    // disk of Target full for Dur
	FaultSyncFail                    // fsyncs of Target fail for Dur, then crash+restart
	FaultFrameChaos                  // drop/duplicate/reorder RPC frames for Dur
	FaultMetaLag                     // Target's actors keep the metadata they have for Dur (its root fans nothing out)
	FaultSlowSync                    // Target's fsyncs wait for Dur (writes go on)
)

func (k FaultKind) String() string {
	return [...]string{"crash", "stop", "pause", "partition", "split", "reset-link", "slow-link", "corrupt",
		"disk-full", "sync-fail", "frame-chaos", "meta-lag", "slow-sync"}[k]
}

// TargetRole picks a fault's node when it fires.
type TargetRole uint8

const (
	RoleNode          TargetRole = iota // the node in Target
	RoleRaftLeader                      // whoever leads raft then
	RoleSegmentLeader                   // the leader of Topic's active segment then
)

func (r TargetRole) String() string {
	return [...]string{"node", "raft-leader", "segment-leader"}[r]
}

// FaultPlan is one planned fault.
type FaultPlan struct {
	At     time.Duration // since the workload began
	Kind   FaultKind
	Role   TargetRole
	Target uint64
	Peer   uint64
	Topic  string
	Dur    time.Duration
	Torn   bool    // crash: keep a random part of unsynced bytes
	Tail   bool    // corrupt: the last bytes of an open file (silent, outside the fault model) instead of a sealed file (detected)
	Pick   float64 // corrupt: which file / byte, in [0,1)
	Side   []uint64
}

func (f FaultPlan) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s", f.Kind)
	switch f.Kind {
	case FaultSplit:
		fmt.Fprintf(&b, " side=%v", f.Side)
	case FaultFrameChaos:
	default:
		if f.Role == RoleNode {
			fmt.Fprintf(&b, " n%d", f.Target)
		} else if f.Role == RoleSegmentLeader {
			fmt.Fprintf(&b, " %s(%s)", f.Role, f.Topic)
		} else {
			fmt.Fprintf(&b, " %s", f.Role)
		}
	}
	if f.Kind == FaultResetLink || f.Kind == FaultSlowLink {
		fmt.Fprintf(&b, " peer=n%d", f.Peer)
	}
	if f.Kind == FaultCrash {
		fmt.Fprintf(&b, " torn=%v", f.Torn)
	}
	if f.Kind == FaultCorrupt {
		fmt.Fprintf(&b, " tail=%v pick=%.3f", f.Tail, f.Pick)
	}
	fmt.Fprintf(&b, " for %v", f.Dur)
	return b.String()
}

// Schedule is everything a run does, drawn from its seed before the run
// starts: it does not depend on what the cluster answers.
type Schedule struct {
	Seed              int64
	Nodes             int
	Topics            []string
	Clients           []ClientPlan
	Faults            []FaultPlan
	Workload          time.Duration // clients stop issuing after this
	MinLat, MaxLat    time.Duration
	MaxSegmentEntries uint64
	DropFrame         float64
	DupFrame          float64
	ReorderFrame      float64
}

// Profile bounds what a generated schedule may contain.
type Profile struct {
	Nodes      int
	Clients    int
	Topics     int
	Workload   time.Duration
	MeanThink  time.Duration
	MeanFaults time.Duration // mean time between faults (0: no faults)
	// Kinds restricts the fault kinds (nil: all).
	Kinds []FaultKind
}

// DefaultProfile is what the CI batch runs.
func DefaultProfile() Profile {
	return Profile{Nodes: 3, Clients: 4, Topics: 2, Workload: 12 * time.Second, MeanThink: 40 * time.Millisecond,
		MeanFaults: 1500 * time.Millisecond}
}

// longPollSalt seeds the source of GETs' long polls, metaLagSalt that of
// the metadata lags, slowSyncSalt that of the slow fsyncs (Generate).
const (
	longPollSalt = 0x6c6f6e67706f6c6c
	metaLagSalt  = 0x6d6574616c6167
	slowSyncSalt = 0x736c6f7773796e63
)

// Generate draws a schedule from seed.
func Generate(seed int64, p Profile) *Schedule {
	rng := rand.New(rand.NewSource(seed))
	s := &Schedule{Seed: seed, Nodes: p.Nodes, Workload: p.Workload}
	for i := 0; i < p.Topics; i++ {
		s.Topics = append(s.Topics, fmt.Sprintf("t%d", i))
	}
	s.MinLat = time.Duration(100+rng.Intn(400)) * time.Microsecond
	s.MaxLat = s.MinLat + time.Duration(rng.Intn(5000))*time.Microsecond
	s.MaxSegmentEntries = uint64(4 + rng.Intn(20))
	nodes := uint64(p.Nodes)
	node := func() uint64 { return 1 + uint64(rng.Intn(p.Nodes)) }
	exp := func(mean time.Duration) time.Duration {
		return time.Duration(rng.ExpFloat64() * float64(mean))
	}

	// clients: enough ops to outlast the workload at the mean think time
	nops := int(p.Workload/max(p.MeanThink, time.Millisecond)) + 20
	// long polls are drawn from a source of their own, so that adding
	// them left every other draw of a seed as it was
	polls := rand.New(rand.NewSource(seed ^ longPollSalt))
	written := 0
	for c := 0; c < p.Clients; c++ {
		cp := ClientPlan{ID: c + 1}
		pref := 1 + uint64(c)%nodes
		for i := 0; i < nops; i++ {
			if rng.Float64() < 0.1 {
				pref = node()
			}
			op := OpPlan{Topic: s.Topics[rng.Intn(len(s.Topics))], Node: pref, Think: exp(p.MeanThink)}
			switch r := rng.Float64(); {
			case r < 0.02:
				op.Kind = OpRegister
			case r < 0.15:
				op.Kind = OpPut
			case r < 0.55:
				op.Kind = OpMPut
			case r < 0.78:
				op.Kind = OpGet
				if polls.Float64() < 0.25 {
					op.Wait = time.Duration(10+polls.Intn(290)) * time.Millisecond
				}
			default:
				op.Kind = OpRead
				op.Offset = uint64(rng.Intn(written/len(s.Topics) + 2))
				op.Max = 1 + rng.Intn(8)
			}
			if op.Kind.IsWrite() {
				op.Payload = fmt.Sprintf("c%d.%d", cp.ID, i)
				written++
			}
			cp.Ops = append(cp.Ops, op)
		}
		s.Clients = append(s.Clients, cp)
	}

	if p.MeanFaults <= 0 {
		return s
	}
	kinds := p.Kinds
	if kinds == nil {
		kinds = []FaultKind{FaultCrash, FaultCrash, FaultCrash, FaultStop, FaultPause, FaultPartition, FaultPartition,
			FaultSplit, FaultResetLink, FaultSlowLink, FaultCorrupt, FaultDiskFull, FaultSyncFail, FaultFrameChaos}
	}
	destructive := false // at most one fault per run may destroy synced data
	for at := exp(p.MeanFaults) + 500*time.Millisecond; at < p.Workload; at += exp(p.MeanFaults) + 200*time.Millisecond {
		f := FaultPlan{At: at, Kind: kinds[rng.Intn(len(kinds))], Target: node(),
			Topic: s.Topics[rng.Intn(len(s.Topics))], Dur: 200*time.Millisecond + exp(1500*time.Millisecond),
			Pick: rng.Float64()}
		switch r := rng.Float64(); {
		case r < 0.3:
			f.Role = RoleSegmentLeader
		case r < 0.5:
			f.Role = RoleRaftLeader
		}
		f.Peer = f.Target%nodes + 1
		switch f.Kind {
		case FaultCrash:
			f.Torn = rng.Intn(2) == 0
		case FaultCorrupt:
			if destructive {
				f.Kind = FaultCrash
			}
			destructive = true
			_ = rng.Intn(3) // (was: tail or not) keeps later draws stable
		case FaultPartition:
			// the design's hard case: a segment leader cut off from the
			// other nodes (its clients still reach it) for longer than
			// the failure timeout, so the segment fails over under it
			if rng.Float64() < 0.6 {
				f.Role = RoleSegmentLeader
				f.Dur = 800*time.Millisecond + exp(2*time.Second)
			}
		case FaultSplit:
			f.Role = RoleNode
			for id := uint64(1); id <= nodes; id++ {
				if rng.Intn(2) == 0 {
					f.Side = append(f.Side, id)
				}
			}
		case FaultResetLink, FaultSlowLink:
			f.Role = RoleNode
		case FaultFrameChaos:
			f.Role = RoleNode
			s.DropFrame = 0.02 + 0.05*rng.Float64()
			s.DupFrame = 0.02 + 0.05*rng.Float64()
			s.ReorderFrame = 0.02 + 0.1*rng.Float64()
		}
		s.Faults = append(s.Faults, f)
	}
	if p.Kinds == nil {
		// Metadata lags (up to two; half at the raft leader, the cursor
		// owner) and, in half the runs, a slow disk (half at a segment
		// leader), each drawn from a source of its own so that adding them
		// left every other draw of a seed as it was.
		lags := rand.New(rand.NewSource(seed ^ metaLagSalt))
		for range lags.Intn(3) {
			s.Faults = append(s.Faults, extraFault(lags, p, FaultMetaLag, RoleRaftLeader, "", 20*time.Millisecond, 300*time.Millisecond))
		}
		slow := rand.New(rand.NewSource(seed ^ slowSyncSalt))
		if slow.Intn(2) == 0 {
			topic := s.Topics[slow.Intn(len(s.Topics))]
			s.Faults = append(s.Faults, extraFault(slow, p, FaultSlowSync, RoleSegmentLeader, topic, 50*time.Millisecond, 800*time.Millisecond))
		}
		sort.SliceStable(s.Faults, func(i, j int) bool { return s.Faults[i].At < s.Faults[j].At })
	}
	return s
}

// extraFault draws a fault of kind from rng: at a uniform time past the
// first 500 ms of the workload, lasting min plus an exponential of mean,
// targeting role or (half of the time) a random node.
func extraFault(rng *rand.Rand, p Profile, kind FaultKind, role TargetRole, topic string, min, mean time.Duration) FaultPlan {
	f := FaultPlan{Kind: kind, Role: role, Topic: topic,
		At:     500*time.Millisecond + time.Duration(rng.Int63n(int64(max(p.Workload-500*time.Millisecond, 1)))),
		Target: 1 + uint64(rng.Intn(p.Nodes)), Dur: min + time.Duration(rng.ExpFloat64()*float64(mean))}
	if rng.Intn(2) == 0 {
		f.Role = RoleNode
	}
	return f
}

// String describes the schedule, one line per client op and fault.
func (s *Schedule) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "seed %d nodes %d topics %v workload %v latency %v..%v segment-entries %d frames drop=%.3f dup=%.3f reorder=%.3f\n",
		s.Seed, s.Nodes, s.Topics, s.Workload, s.MinLat, s.MaxLat, s.MaxSegmentEntries, s.DropFrame, s.DupFrame, s.ReorderFrame)
	for _, f := range s.Faults {
		fmt.Fprintf(&b, "fault at %v: %s\n", f.At, f)
	}
	for _, c := range s.Clients {
		for i, op := range c.Ops {
			wait := ""
			if op.Wait > 0 {
				wait = fmt.Sprintf(" wait=%v", op.Wait)
			}
			fmt.Fprintf(&b, "c%d op %d: %s %s %q off=%d max=%d%s node=%d think=%v\n", c.ID, i, op.Kind, op.Topic, op.Payload,
				op.Offset, op.Max, wait, op.Node, op.Think)
		}
	}
	return b.String()
}

// Hash is a short hash of String.
func (s *Schedule) Hash() string {
	h := sha256.Sum256([]byte(s.String()))
	return hex.EncodeToString(h[:8])
}
