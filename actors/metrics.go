package actors

import (
	"encoding/json"
	"sync/atomic"

	"github.com/walrus-go/walrus/raftfsm"
	"github.com/walrus-go/walrus/wire"
)

// nodeMetrics are the node's own counters (exported on /metrics).
type nodeMetrics struct {
	putEntries  atomic.Uint64
	getEntries  atomic.Uint64
	rollovers   atomic.Uint64
	recoveries  atomic.Uint64
	walErrors   atomic.Uint64
	connections atomic.Int64
}

func newNodeMetrics() *nodeMetrics { return &nodeMetrics{} }

// stateReply is STATE's reply: the topic's COMPAT JSON (no "OK " prefix).
func (n *Node) stateReply(topic string) []byte {
	t := n.host.State().Topics[topic]
	if t == nil {
		return wire.AppendReplyError(nil, wire.UnknownTopic(topic).Msg)
	}
	b, err := json.Marshal(raftfsm.CompatState(t))
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
