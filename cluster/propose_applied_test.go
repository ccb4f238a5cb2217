package cluster_test

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/cluster/clustertest"
)

// errLagging is what a lagging replica answers to the entries it refuses.
var errLagging = errors.New("replica made to lag by the test")

// laggingTransport is an in-memory transport whose replica can be made to
// lag: while lag is set, it refuses every AppendEntries that carries
// entries, so the leader commits them with the other voters, and lets the
// heartbeats through, so it starts no election. Its own proposals still
// reach the leader and their answers come back.
type laggingTransport struct {
	*cluster.InmemTransport
	lag      atomic.Bool
	consumer chan raft.RPC
}

// newLaggingTransport wraps t and relays its RPCs until the test ends.
func newLaggingTransport(t *testing.T, in *cluster.InmemTransport) *laggingTransport {
	lt := &laggingTransport{InmemTransport: in, consumer: make(chan raft.RPC)}
	done := make(chan struct{})
	t.Cleanup(func() { close(done) })
	go lt.relay(done)
	return lt
}

// Consumer implements raft.Transport: the RPCs the relay lets through.
func (lt *laggingTransport) Consumer() <-chan raft.RPC { return lt.consumer }

func (lt *laggingTransport) relay(done <-chan struct{}) {
	in := lt.InmemTransport.Consumer()
	for {
		var rpc raft.RPC
		select {
		case rpc = <-in:
		case <-done:
			return
		}
		if req, ok := rpc.Command.(*raft.AppendEntriesRequest); ok && len(req.Entries) > 0 && lt.lag.Load() {
			// raft's in-memory pipeline reads the response even beside an
			// error.
			rpc.Respond(&raft.AppendEntriesResponse{Term: req.Term}, errLagging)
			continue
		}
		select {
		case lt.consumer <- rpc:
		case <-done:
			return
		}
	}
}

// TestProposeOnALaggingReplica: a follower's proposal that commits while
// its own replica lags behind the log does not succeed: it returns
// ErrUncertain, because its caller acts on the local replica at once. A
// Claim is the case that matters: a Session started on a successful Claim
// chooses the user's callback handler from the local replica, and must see
// a handler recorded before the Claim in the log, or it would ask the
// cluster's handler (or approve automatically when there is none) in place
// of the user's own (I5). Once the replica catches up, claiming again
// succeeds and the replica holds everything before the Claim.
func TestProposeOnALaggingReplica(t *testing.T) {
	lagging := map[string]*laggingTransport{}
	h := clustertest.New(t, 3, clustertest.Options{Configure: func(cfg *cluster.Config) {
		lt := newLaggingTransport(t, cfg.Transport.(*cluster.InmemTransport))
		lagging[cfg.NodeID] = lt
		cfg.Transport = lt
	}})
	leader := h.WaitLeader()
	f := h.Follower(leader)
	lead, fol := h.Node(leader), h.Node(f)
	ctx := ctxT(t, 10*time.Second)
	if err := lead.AddAPIUser(ctx, cluster.Record{ID: "ws/u1", Public: []byte("u1"), Sealed: []byte("ct-u1")}); err != nil {
		t.Fatal(err)
	}
	h.WaitApplied(lead.AppliedIndex())

	lagging[fol.NodeID()].lag.Store(true)
	if err := lead.SetUserCallback(ctx, "ws/u1", "https://handler.example", []byte("key")); err != nil {
		t.Fatal(err)
	}
	err := fol.Claim(ctxT(t, 300*time.Millisecond), "r1", "ws/u1")
	_, hasHandler := fol.FSM().UserCallback("ws/u1")
	switch {
	case err == nil && !hasHandler:
		t.Fatal("the Claim succeeded on a replica that has not applied the user's handler recorded before it")
	case !errors.Is(err, cluster.ErrUncertain):
		t.Fatalf("claim on a lagging replica: got %v, want ErrUncertain", err)
	}

	// The caller reads and claims again: a Claim of its own is idempotent.
	lagging[fol.NodeID()].lag.Store(false)
	if err := fol.Claim(ctx, "r1", "ws/u1"); err != nil {
		t.Fatalf("claim again once the replica may catch up: %v", err)
	}
	if _, ok := fol.FSM().UserCallback("ws/u1"); !ok {
		t.Fatal("the Claim succeeded without the user's handler in the replica")
	}
	if owner, _ := fol.Owner("r1"); owner != fol.NodeID() {
		t.Fatalf("owner %q, want %q", owner, fol.NodeID())
	}
}
