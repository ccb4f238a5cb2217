package cluster

import (
	"context"
	"fmt"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/coterie-mpc/coterie/protocol"
)

// InmemNetwork connects InmemTransports in one process, and can cut and
// heal the links between them. It is for tests.
type InmemNetwork struct {
	mu    sync.Mutex
	nodes map[raft.ServerAddress]*InmemTransport
	// cut holds the directed links that are down.
	cut map[[2]raft.ServerAddress]bool
}

// NewInmemNetwork returns an empty network.
func NewInmemNetwork() *InmemNetwork {
	return &InmemNetwork{nodes: map[raft.ServerAddress]*InmemTransport{}, cut: map[[2]raft.ServerAddress]bool{}}
}

// InmemTransport is a Transport on an InmemNetwork, for tests. It has no
// TLS: the requests it forwards carry its node's id as their Peer, which
// the network vouches for.
type InmemTransport struct {
	*raft.InmemTransport
	id        string
	net       *InmemNetwork
	forwardCh chan *ForwardRPC
	closed    chan struct{}
	closeOnce sync.Once
}

var (
	_ Transport    = (*InmemTransport)(nil)
	_ goneReporter = (*InmemTransport)(nil)
)

// NewTransport returns the transport of node id at addr, linked both ways
// to every transport on the network except across cut links. A transport at
// an address already in use replaces the old one (a restarted node).
func (n *InmemNetwork) NewTransport(id, addr string) *InmemTransport {
	_, rt := raft.NewInmemTransport(raft.ServerAddress(addr))
	t := &InmemTransport{InmemTransport: rt, id: id, net: n, forwardCh: make(chan *ForwardRPC), closed: make(chan struct{})}
	n.mu.Lock()
	defer n.mu.Unlock()
	a := raft.ServerAddress(addr)
	n.nodes[a] = t
	for b, other := range n.nodes {
		if b == a {
			continue
		}
		if !n.cut[[2]raft.ServerAddress{a, b}] {
			t.Connect(b, other.InmemTransport)
		}
		if !n.cut[[2]raft.ServerAddress{b, a}] {
			other.Connect(a, rt)
		}
	}
	return t
}

// Partition cuts every link between the given addresses and the rest of
// the network, both ways. Links within each side stay up.
func (n *InmemNetwork) Partition(addrs ...string) {
	side := map[raft.ServerAddress]bool{}
	for _, a := range addrs {
		side[raft.ServerAddress(a)] = true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for a, ta := range n.nodes {
		for b := range n.nodes {
			if a != b && side[a] != side[b] {
				n.cut[[2]raft.ServerAddress{a, b}] = true
				ta.Disconnect(b)
			}
		}
	}
}

// Heal restores every link.
func (n *InmemNetwork) Heal() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut = map[[2]raft.ServerAddress]bool{}
	for a, ta := range n.nodes {
		for b, tb := range n.nodes {
			if a != b {
				ta.Connect(b, tb.InmemTransport)
			}
		}
	}
}

// peer returns the live transport at target, if the link from → target is
// up.
func (n *InmemNetwork) peer(from, target raft.ServerAddress) (*InmemTransport, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	t, ok := n.nodes[target]
	if !ok || n.cut[[2]raft.ServerAddress{from, target}] || n.cut[[2]raft.ServerAddress{target, from}] {
		return nil, false
	}
	return t, true
}

// Forward implements Transport.
func (t *InmemTransport) Forward(ctx context.Context, target raft.ServerAddress, req *protocol.ClusterForwardRequest) (*protocol.ClusterForwardResponse, error) {
	select {
	case <-t.closed:
		return nil, fmt.Errorf("%w: %w", errUnsent, ErrClosed)
	default:
	}
	peer, ok := t.net.peer(t.LocalAddr(), target)
	if !ok {
		return nil, fmt.Errorf("%w: no link to %s", errUnsent, target)
	}
	rpc := newForwardRPC(req)
	rpc.Peer = t.id
	select {
	case peer.forwardCh <- rpc:
	case <-peer.closed:
		return nil, fmt.Errorf("%w: %s is closed", errUnsent, target)
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", errUnsent, ctx.Err())
	}
	return rpc.wait(ctx, peer.closed)
}

// Gone reports whether no transport is open at addr: its node was
// stopped, not cut off.
func (t *InmemTransport) Gone(addr raft.ServerAddress) bool {
	t.net.mu.Lock()
	defer t.net.mu.Unlock()
	_, ok := t.net.nodes[addr]
	return !ok
}

// ForwardConsumer implements Transport.
func (t *InmemTransport) ForwardConsumer() <-chan *ForwardRPC { return t.forwardCh }

// Close implements Transport: the address becomes unreachable until a new
// transport takes it.
func (t *InmemTransport) Close() error {
	t.closeOnce.Do(func() {
		close(t.closed)
		a := t.LocalAddr()
		t.net.mu.Lock()
		if t.net.nodes[a] == t {
			delete(t.net.nodes, a)
		}
		for _, other := range t.net.nodes {
			other.Disconnect(a)
		}
		t.net.mu.Unlock()
		t.DisconnectAll()
	})
	return nil
}
