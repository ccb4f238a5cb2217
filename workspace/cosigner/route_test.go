package cosigner

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
)

// fakeMachine is a one-round protocol: it broadcasts once at start (and
// sends one direct message to each peer in direct), and is done after it
// has one envelope from every peer. A peer's envelope whose payload is
// "bad" is rejected as a *mpc.MessageError.
type fakeMachine struct {
	mu    sync.Mutex
	self  mpc.PartyID
	peers []mpc.PartyID
	out   []*protocol.MpcEnvelope
	got   map[string]int
}

func newFake(self mpc.PartyID, peers []mpc.PartyID, direct ...mpc.PartyID) *fakeMachine {
	m := &fakeMachine{self: self, peers: peers, got: map[string]int{}}
	m.out = append(m.out, &protocol.MpcEnvelope{From: string(self), Broadcast: true, Payload: []byte("hello")})
	for _, to := range direct {
		m.out = append(m.out, &protocol.MpcEnvelope{From: string(self), To: string(to), Payload: []byte("direct")})
	}
	return m
}

func (m *fakeMachine) Accept(env *protocol.MpcEnvelope) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if string(env.Payload) == "bad" {
		return &mpc.MessageError{Party: mpc.PartyID(env.From), Err: mpc.ErrMalformed}
	}
	m.got[env.From+"/"+string(env.Payload)]++
	return nil
}

func (m *fakeMachine) Outgoing() []*protocol.MpcEnvelope {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := m.out
	m.out = nil
	return out
}

func (m *fakeMachine) Done() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.peers {
		if m.got[string(p)+"/hello"] == 0 {
			return false
		}
	}
	return true
}

func (m *fakeMachine) Err() error { return nil }
func (m *fakeMachine) Close()     {}

func (m *fakeMachine) count(key string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.got[key]
}

var _ mpc.Machine = (*fakeMachine)(nil)

// nodeSide collects what the router sends to the node.
type nodeSide struct {
	mu   sync.Mutex
	got  []*protocol.MpcEnvelope
	fail error
}

func (n *nodeSide) send(env *protocol.MpcEnvelope) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.got = append(n.got, env)
	return n.fail
}

// stuckNode is a node that keeps the stream open but reads nothing: every
// send blocks until the stream ends.
type stuckNode struct{ ended chan struct{} }

func (n *stuckNode) send(*protocol.MpcEnvelope) error {
	<-n.ended
	return errors.New("stream ended")
}

func TestRouting(t *testing.T) {
	const node = mpc.PartyID("cosigner")
	all := []mpc.PartyID{node, "cloud-1", "cloud-2"}
	peersOf := func(self mpc.PartyID) []mpc.PartyID {
		var out []mpc.PartyID
		for _, p := range all {
			if p != self {
				out = append(out, p)
			}
		}
		return out
	}
	c := &Cosigners{}
	cases := []struct {
		name     string
		fromNode []*protocol.MpcEnvelope
		close    bool
		stuck    bool
		timeout  time.Duration
		want     error
	}{
		{name: "complete", fromNode: []*protocol.MpcEnvelope{{From: string(node), Broadcast: true, Payload: []byte("hello")}}},
		{name: "spoofed sender", fromNode: []*protocol.MpcEnvelope{{From: "cloud-2", Broadcast: true, Payload: []byte("hello")}}, want: ErrNodeMessage},
		{name: "unknown recipient", fromNode: []*protocol.MpcEnvelope{{From: string(node), To: "cloud-9", Payload: []byte("hello")}}, want: ErrNodeMessage},
		{name: "rejected envelope", fromNode: []*protocol.MpcEnvelope{{From: string(node), To: "cloud-1", Payload: []byte("bad")}}, want: ErrNodeMessage},
		{name: "node silent", close: true, timeout: 50 * time.Millisecond, want: context.DeadlineExceeded},
		{name: "node not reading", stuck: true, timeout: 50 * time.Millisecond, want: context.DeadlineExceeded},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ms := map[mpc.PartyID]mpc.Machine{
				"cloud-1": newFake("cloud-1", peersOf("cloud-1"), "cloud-2"),
				"cloud-2": newFake("cloud-2", peersOf("cloud-2")),
			}
			in := make(chan *protocol.MpcEnvelope, len(tc.fromNode))
			for _, env := range tc.fromNode {
				in <- env
			}
			if tc.close {
				close(in)
			}
			timeout := tc.timeout
			if timeout == 0 {
				timeout = 10 * time.Second
			}
			ctx, cancel := context.WithTimeout(context.Background(), timeout)
			defer cancel()
			ns := &nodeSide{}
			send := ns.send
			if tc.stuck {
				stuck := &stuckNode{ended: make(chan struct{})}
				defer close(stuck.ended) // the relay's caller ends the stream
				send = stuck.send
			}
			err := c.drive(ctx, node, ms, in, send)
			if !errors.Is(err, tc.want) && !(tc.want == nil && err == nil) {
				t.Fatalf("drive = %v, want %v", err, tc.want)
			}
			if tc.want != nil {
				return
			}
			// Each cloud party's broadcast reached the node; the direct
			// cloud-to-cloud message did not.
			if len(ns.got) != 2 {
				t.Fatalf("node received %d envelopes, want 2", len(ns.got))
			}
			for _, env := range ns.got {
				if !env.Broadcast {
					t.Fatalf("node received a direct message %v", env)
				}
			}
			if ms["cloud-2"].(*fakeMachine).count("cloud-1/direct") != 1 {
				t.Fatal("cloud-to-cloud message not delivered")
			}
		})
	}
}
