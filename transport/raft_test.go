package transport

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

func newRaftTransport(t testing.TB, m *testMux) *raft.NetworkTransport {
	t.Helper()
	tr := raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
		Stream:  m.RaftStreamLayer(tcpDial),
		MaxPool: 3,
		Timeout: 5 * time.Second,
		Logger:  hclog.NewNullLogger(),
	})
	t.Cleanup(func() { _ = tr.Close() })
	return tr
}

func TestRaftTransportAppendEntriesOverMux(t *testing.T) {
	checkNoLeaks(t, true)
	m1 := startMux(t, "127.0.0.1:0", echo)
	m2 := startMux(t, "127.0.0.1:0", echo)
	t1, t2 := newRaftTransport(t, m1), newRaftTransport(t, m2)
	if got := t2.LocalAddr(); string(got) != m2.addr {
		t.Fatalf("LocalAddr = %s, want %s", got, m2.addr)
	}

	args := raft.AppendEntriesRequest{
		RPCHeader:         raft.RPCHeader{ID: []byte("node1"), Addr: []byte(t1.LocalAddr())},
		Term:              10,
		PrevLogEntry:      100,
		PrevLogTerm:       4,
		Entries:           []*raft.Log{{Index: 101, Term: 4, Type: raft.LogCommand, Data: []byte("entry")}},
		LeaderCommitIndex: 90,
	}
	served := make(chan error, 1)
	go func() {
		select {
		case rpc := <-t2.Consumer():
			req, ok := rpc.Command.(*raft.AppendEntriesRequest)
			if !ok || req.Term != 10 || len(req.Entries) != 1 || string(req.Entries[0].Data) != "entry" {
				served <- fmt.Errorf("server got %#v", rpc.Command)
				rpc.Respond(nil, errors.New("bad request"))
				return
			}
			rpc.Respond(&raft.AppendEntriesResponse{Term: 10, LastLog: 101, Success: true}, nil)
			served <- nil
		case <-time.After(10 * time.Second):
			served <- errors.New("no RPC within 10s")
		}
	}()
	var resp raft.AppendEntriesResponse
	if err := t1.AppendEntries("node2", t2.LocalAddr(), &args, &resp); err != nil {
		t.Fatalf("AppendEntries: %v", err)
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if !resp.Success || resp.LastLog != 101 || resp.Term != 10 {
		t.Fatalf("response %+v", resp)
	}

	// The same port still serves our RPC.
	c := newClient(t, m2.addr)
	if _, body, err := c.Call(context.Background(), 1, []byte("rpc")); err != nil || string(body) != "rpc" {
		t.Fatalf("RPC next to raft: %q %v", body, err)
	}
}

func TestRaftLayerCloseUnblocksAccept(t *testing.T) {
	checkNoLeaks(t, false)
	m := startMux(t, "127.0.0.1:0", nil)
	l := m.RaftStreamLayer(tcpDial)
	accepted := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		accepted <- err
	}()
	_ = l.Close()
	if err := recv(t, "Accept to return", accepted); !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v, want net.ErrClosed", err)
	}
	// A raft connection arriving now is closed; the Mux keeps serving.
	waitClosedByPeer(t, rawConn(t, m.addr, []byte{RaftByte}))
	m.SetRPCHandler(echo)
	if _, _, err := newClient(t, m.addr).Call(context.Background(), 1, nil); err != nil {
		t.Fatalf("RPC after the raft layer closed: %v", err)
	}
}

func TestRaftConnectionBeforeLayerIsClosed(t *testing.T) {
	checkNoLeaks(t, false)
	m := startMux(t, "127.0.0.1:0", nil)
	waitClosedByPeer(t, rawConn(t, m.addr, []byte{RaftByte}))
}

func TestRaftLayerDialSendsRaftByte(t *testing.T) {
	checkNoLeaks(t, false)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	m := startMux(t, "127.0.0.1:0", nil, WithAdvertiseAddr(&net.TCPAddr{IP: net.IPv4(10, 1, 2, 3), Port: 6001}))
	l := m.RaftStreamLayer(tcpDial)
	if got := l.Addr().String(); got != "10.1.2.3:6001" {
		t.Fatalf("Addr = %s, want the advertised 10.1.2.3:6001", got)
	}
	c, err := l.Dial(raft.ServerAddress(ln.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var b [1]byte
	if _, err := io.ReadFull(s, b[:]); err != nil || b[0] != RaftByte {
		t.Fatalf("first byte %q, %v", b[0], err)
	}
	_ = l.Close() // closes what it dialed
	if _, err := c.Write([]byte("x")); err == nil {
		t.Fatal("dialed connection still open after the layer closed")
	}
}

// countFSM counts applied commands.
type countFSM struct {
	mu      sync.Mutex
	applied []string
}

func (f *countFSM) Apply(l *raft.Log) any {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.applied = append(f.applied, string(l.Data))
	return nil
}

func (f *countFSM) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.applied)
}

func (f *countFSM) Snapshot() (raft.FSMSnapshot, error) { return nil, errors.New("not supported") }
func (f *countFSM) Restore(io.ReadCloser) error         { return errors.New("not supported") }

func TestRaftClusterOverMuxes(t *testing.T) {
	checkNoLeaks(t, true)
	const n = 3
	var (
		muxes  [n]*testMux
		trans  [n]*raft.NetworkTransport
		fsms   [n]*countFSM
		nodes  [n]*raft.Raft
		config raft.Configuration
	)
	for i := range n {
		muxes[i] = startMux(t, "127.0.0.1:0", echo)
		trans[i] = newRaftTransport(t, muxes[i])
		config.Servers = append(config.Servers, raft.Server{
			ID: raft.ServerID(fmt.Sprint(i + 1)), Address: trans[i].LocalAddr(), Suffrage: raft.Voter,
		})
	}
	for i := range n {
		conf := raft.DefaultConfig()
		conf.LocalID = config.Servers[i].ID
		conf.HeartbeatTimeout = 200 * time.Millisecond
		conf.ElectionTimeout = 200 * time.Millisecond
		conf.LeaderLeaseTimeout = 100 * time.Millisecond
		conf.CommitTimeout = 10 * time.Millisecond
		conf.Logger = hclog.NewNullLogger()
		store := raft.NewInmemStore()
		snaps := raft.NewInmemSnapshotStore()
		if err := raft.BootstrapCluster(conf, store, store, snaps, trans[i], config); err != nil {
			t.Fatal(err)
		}
		fsms[i] = &countFSM{}
		r, err := raft.NewRaft(conf, fsms[i], store, store, snaps, trans[i])
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = r
		t.Cleanup(func() {
			if err := r.Shutdown().Error(); err != nil {
				t.Errorf("raft shutdown: %v", err)
			}
		})
	}
	var leader *raft.Raft
	waitFor(t, "a raft leader", func() bool {
		for _, r := range nodes {
			if r.State() == raft.Leader {
				leader = r
				return true
			}
		}
		return false
	})
	for i := range 10 {
		if err := leader.Apply([]byte(fmt.Sprint("cmd", i)), 5*time.Second).Error(); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
	waitFor(t, "every node to apply 10 commands", func() bool {
		for _, f := range fsms {
			if f.count() < 10 {
				return false
			}
		}
		return true
	})
	// RPC works on every node's port while raft runs there.
	for _, m := range muxes {
		c := newClient(t, m.addr)
		if _, _, err := c.Call(context.Background(), 1, []byte("ping")); err != nil {
			t.Fatalf("RPC to %s: %v", m.addr, err)
		}
	}
}
