package actors

import (
	"encoding/json"
	"sync/atomic"

	"github.com/walrus-go/walrus/raftfsm"
	"github.com/walrus-go/walrus/wire"
)

// StateJSON is STATE's reply: COMPAT's keys first (raftfsm.CompatState),
// then what only the live segment leader knows.
type StateJSON struct {
	raftfsm.CompatStateJSON
	// HighWaterMark is the topic-global offset below which entries are held
	// by a quorum and readable; null when the leader could not be asked,
	// or had not opened the segment yet (a few milliseconds after a
	// REGISTER or a rollover).
	HighWaterMark *uint64 `json:"high_water_mark"`
	// Groups are the consumer groups' committed positions.
	Groups map[string]uint64 `json:"groups"`
	// Retention is the topic's policy as RETENTION set it (0: no limit).
	Retention raftfsm.Retention `json:"retention"`
}

// stateReply is STATE's reply: raw JSON, no "OK " prefix.
func (n *Node) stateReply(topic string, hwm *uint64) []byte {
	t := n.host.State().Topics[topic]
	if t == nil {
		return wire.AppendReplyError(nil, wire.UnknownTopic(topic).Msg)
	}
	groups := t.Groups
	if groups == nil {
		groups = map[string]uint64{}
	}
	b, err := json.Marshal(StateJSON{CompatStateJSON: raftfsm.CompatState(t), HighWaterMark: hwm, Groups: groups,
		Retention: t.Retention})
	if err != nil {
		return wire.AppendReplyError(nil, err.Error())
	}
	return wire.AppendReplyRaw(nil, b)
}

// publishHWM records the high-water mark of a topic whose active segment
// this node leads (topic-global offset).
func (n *Node) publishHWM(topic string, hwm uint64) {
	v, ok := n.hwms.Load(topic) // on every replication round: no allocation once stored
	if !ok {
		v, _ = n.hwms.LoadOrStore(topic, new(atomic.Uint64))
	}
	v.(*atomic.Uint64).Store(hwm)
}

// localHWM returns the high-water mark if this node leads the topic's
// active segment now.
func (n *Node) localHWM(topic string) (uint64, bool) {
	if _, leading := n.leaders.Load(topic); !leading {
		return 0, false
	}
	v, ok := n.hwms.Load(topic)
	if !ok {
		return 0, false
	}
	return v.(*atomic.Uint64).Load(), true
}

// nodeJSON is one member in NODES' reply.
type nodeJSON struct {
	ID       uint64 `json:"id"`
	Raft     string `json:"raft"`
	Client   string `json:"client"`
	HTTP     string `json:"http,omitempty"`
	Live     bool   `json:"live"`
	Suffrage string `json:"suffrage"` // voter, nonvoter, or none (not in raft's configuration)
}

// nodesReply is NODES' reply: raw JSON, the members in id order.
func (n *Node) nodesReply() []byte {
	st := n.host.State()
	suffrage := n.host.suffrages()
	out := []nodeJSON{}
	for _, id := range st.NodeIDs() {
		ni := st.Nodes[id]
		s, ok := suffrage[uint64(id)]
		if !ok {
			s = "none"
		}
		out = append(out, nodeJSON{ID: uint64(id), Raft: ni.RaftAddr, Client: ni.ClientAddr, HTTP: ni.HTTPAddr, Live: ni.Live, Suffrage: s})
	}
	b, err := json.Marshal(out)
	if err != nil {
		return wire.AppendReplyError(nil, err.Error())
	}
	return wire.AppendReplyRaw(nil, b)
}

// metricsReply is METRICS' reply: raft's view in the reference's shape.
func (n *Node) metricsReply() []byte {
	b, err := json.Marshal(n.host.Metrics())
	if err != nil {
		return wire.AppendReplyError(nil, err.Error())
	}
	return wire.AppendReplyRaw(nil, b)
}
