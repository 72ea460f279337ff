package actors

import (
	"fmt"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/walrus-go/walrus/messages"
	"github.com/walrus-go/walrus/raftfsm"
	"github.com/walrus-go/walrus/transport"
)

// peerSet holds one pipelined, reconnecting RPC client per remote node.
//
// The design sketches a peer actor per node; transport.Client already is
// that actor in effect (a writer loop owning the connection, a reader loop
// completing calls, reconnects with backoff), so wrapping it in a mailbox
// would only add a hop on the hot path. Callers get the client and use its
// asynchronous Go with callbacks that Send results to their own actor.
// Lock: mu guards clients; never held while calling into a client.
type peerSet struct {
	n       *Node
	mu      sync.Mutex
	clients map[uint64]*peerClient
}

type peerClient struct {
	addr string
	c    *transport.Client
}

func newPeerSet(n *Node) *peerSet { return &peerSet{n: n, clients: map[uint64]*peerClient{}} }

// addrOf finds a node's internal address: the metadata first, then raft's
// configuration (a member that has not announced itself yet).
func (p *peerSet) addrOf(id uint64) string {
	if p.n.host != nil {
		if ni, ok := p.n.host.State().Nodes[raftfsm.NodeID(id)]; ok && ni.RaftAddr != "" {
			return ni.RaftAddr
		}
		if cf := p.n.host.r.GetConfiguration(); cf.Error() == nil {
			for _, s := range cf.Configuration().Servers {
				if s.ID == serverID(id) {
					return string(s.Address)
				}
			}
		}
		if lid, addr := p.n.host.Leader(); lid == id {
			return addr
		}
	}
	return ""
}

func (p *peerSet) get(id uint64) (*transport.Client, error) {
	addr := p.addrOf(id)
	if addr == "" {
		return nil, &messages.Err{Code: messages.CodeUnavailable, Msg: fmt.Sprintf("no address known for node %d", id)}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if pc, ok := p.clients[id]; ok {
		if pc.addr == addr {
			return pc.c, nil
		}
		pc.c.Close()
	}
	c := transport.NewClient(addr, p.n.cfg.Network.Dial, p.n.log.With("peer", id))
	p.clients[id] = &peerClient{addr: addr, c: c}
	return c, nil
}

func (p *peerSet) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, pc := range p.clients {
		pc.c.Close()
		delete(p.clients, id)
	}
}

var _ = raft.ServerAddress("")
