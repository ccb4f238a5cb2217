package cluster

import (
	"context"
	"errors"

	"github.com/hashicorp/raft"

	"github.com/coterie-mpc/coterie/protocol"
)

// Transport carries raft's RPCs and the proposals that followers forward to
// the leader. The mutual-TLS transport that New opens serves both (and the
// join handshake) on one port; the InmemTransport does both in process, for
// tests.
//
// A Cluster owns its Transport and closes it on Close.
type Transport interface {
	raft.Transport
	// Forward sends req to the node at target and returns that node's
	// response. It may be called concurrently. It returns an error that
	// matches errUnsent when req certainly never reached target (nothing was
	// sent), so the caller may retry; any other error leaves the outcome
	// unknown.
	Forward(ctx context.Context, target raft.ServerAddress, req *protocol.ClusterForwardRequest) (*protocol.ClusterForwardResponse, error)
	// ForwardConsumer returns the channel on which requests forwarded to
	// this node arrive, each with the member id of the peer that sent it.
	// Exactly one goroutine (the Cluster's) consumes it and answers each
	// request once.
	ForwardConsumer() <-chan *ForwardRPC
	// Close releases the transport. Forward fails after Close.
	Close() error
}

// goneReporter is implemented by a Transport that can tell a peer whose
// process is gone from one that is slow or cut off. The owner watch
// releases a gone owner's requests as soon as a heartbeat to it fails,
// instead of after OwnerTimeout.
type goneReporter interface {
	// Gone reports whether the node at addr is certainly not running: the
	// last attempt to connect to it was refused (its host answered that
	// nothing listens on the cluster port), or, in process, its transport
	// is closed.
	Gone(addr raft.ServerAddress) bool
}

// ForwardRPC is one forwarded request waiting for its answer.
type ForwardRPC struct {
	Request *protocol.ClusterForwardRequest
	// Peer is the member id of the node that sent Request, as its
	// transport authenticated it: the TLS transport maps the peer's
	// identity key through Config.Members; the in-memory one names the
	// sending transport's node. The leader runs only commands stamped with
	// this id; empty means unauthenticated, and nothing runs.
	Peer   string
	respCh chan *protocol.ClusterForwardResponse
}

func newForwardRPC(req *protocol.ClusterForwardRequest) *ForwardRPC {
	return &ForwardRPC{Request: req, respCh: make(chan *protocol.ClusterForwardResponse, 1)}
}

// Respond answers the request. It never blocks; only the first answer
// counts.
func (r *ForwardRPC) Respond(resp *protocol.ClusterForwardResponse) {
	select {
	case r.respCh <- resp:
	default:
	}
}

// wait returns the answer, or an error when ctx ends or stop closes first.
func (r *ForwardRPC) wait(ctx context.Context, stop <-chan struct{}) (*protocol.ClusterForwardResponse, error) {
	select {
	case resp := <-r.respCh:
		return resp, nil
	case <-ctx.Done():
		return nil, errorf(ErrUncertain, "waiting for the leader: %v", ctx.Err())
	case <-stop:
		return nil, errorf(ErrUncertain, "transport closed while waiting for the leader")
	}
}

// errUnsent marks a forwarding failure where nothing reached the target, so
// the proposal certainly did not commit through it.
var errUnsent = errors.New("cluster: forward not sent")
