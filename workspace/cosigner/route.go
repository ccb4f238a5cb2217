package cosigner

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"google.golang.org/protobuf/proto"
)

// inboxSize bounds the envelopes queued for one cloud party. A session has
// at most a few rounds of a few parties' messages in flight.
const inboxSize = 256

// router is one session's message routing between the cloud parties and
// the node.
type router struct {
	ctx    context.Context
	cancel context.CancelCauseFunc
	node   mpc.PartyID
	inbox  map[mpc.PartyID]chan *protocol.MpcEnvelope

	sendMu sync.Mutex
	send   func(*protocol.MpcEnvelope) error
}

// drive runs the cloud parties' machines until all are done, one fails, the
// node misbehaves or leaves, or ctx ends. It returns nil only when every
// machine finished without error.
func (c *Cosigners) drive(ctx context.Context, node mpc.PartyID, ms map[mpc.PartyID]mpc.Machine, in <-chan *protocol.MpcEnvelope, send func(*protocol.MpcEnvelope) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	r := &router{ctx: ctx, cancel: cancel, node: node, send: send, inbox: make(map[mpc.PartyID]chan *protocol.MpcEnvelope, len(ms))}
	for id := range ms {
		r.inbox[id] = make(chan *protocol.MpcEnvelope, inboxSize)
	}
	// The constructors queued the first round; route it before any party
	// runs.
	for id, m := range ms {
		if err := r.route(id, m.Outgoing()); err != nil {
			return err
		}
	}
	var wg sync.WaitGroup
	for id, m := range ms {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.run(id, m)
		}()
	}
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		r.readNode(in)
	}()
	wg.Wait()
	cancel(nil) // stops the reader when every party finished first
	<-readerDone

	for _, m := range ms {
		if err := m.Err(); err != nil {
			return err
		}
	}
	for _, m := range ms {
		if !m.Done() {
			if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
				return cause
			}
			return fmt.Errorf("cosigner: session stopped: %w", ctx.Err())
		}
	}
	return nil
}

// run feeds one cloud party its envelopes until its session is done.
func (r *router) run(id mpc.PartyID, m mpc.Machine) {
	for !m.Done() {
		select {
		case env := <-r.inbox[id]:
			err := m.Accept(env)
			var rejected *mpc.MessageError
			if errors.As(err, &rejected) {
				if mpc.PartyID(env.GetFrom()) == r.node {
					r.cancel(fmt.Errorf("%w: %v", ErrNodeMessage, err))
				} else {
					r.cancel(fmt.Errorf("cosigner: %s rejected a cloud co-signer's message: %w", id, err))
				}
				return
			}
			// Abort notices go out too, so the others stop at once.
			if err := r.route(id, m.Outgoing()); err != nil {
				r.cancel(err)
				return
			}
		case <-r.ctx.Done():
			return
		}
	}
	if err := m.Err(); err != nil {
		r.cancel(err)
	}
}

// readNode routes the node's envelopes until in closes or the session ends.
// A closed in means the node sends nothing more: the cloud parties go on
// with what they have, and a session that needed more ends at its timeout
// (the relay's caller cancels ctx when the node disconnects).
func (r *router) readNode(in <-chan *protocol.MpcEnvelope) {
	for {
		select {
		case env, ok := <-in:
			if !ok {
				return
			}
			if mpc.PartyID(env.GetFrom()) != r.node {
				r.cancel(fmt.Errorf("%w: envelope claims to come from %q", ErrNodeMessage, env.GetFrom()))
				return
			}
			if err := r.route(r.node, []*protocol.MpcEnvelope{env}); err != nil {
				r.cancel(err)
				return
			}
		case <-r.ctx.Done():
			return
		}
	}
}

// route delivers envelopes from one party: a broadcast to every other
// party, anything else to its recipient.
func (r *router) route(from mpc.PartyID, envs []*protocol.MpcEnvelope) error {
	for _, env := range envs {
		to := mpc.PartyID(env.GetTo())
		if to == "" {
			for id, ch := range r.inbox {
				if id != from {
					r.deliver(ch, env)
				}
			}
			if from != r.node {
				if err := r.toNode(env); err != nil {
					return err
				}
			}
			continue
		}
		switch ch, ok := r.inbox[to]; {
		case to == r.node && from != r.node:
			if err := r.toNode(env); err != nil {
				return err
			}
		case ok && to != from:
			r.deliver(ch, env)
		case from == r.node:
			return fmt.Errorf("%w: envelope for unknown party %q", ErrNodeMessage, to)
		default:
			return fmt.Errorf("cosigner: %s sent an envelope to %q", from, to)
		}
	}
	return nil
}

// deliver queues a copy of env (each party owns what it accepts).
func (r *router) deliver(ch chan<- *protocol.MpcEnvelope, env *protocol.MpcEnvelope) {
	select {
	case ch <- proto.Clone(env).(*protocol.MpcEnvelope):
	case <-r.ctx.Done():
	}
}

// toNode sends env to the node. A node that stops reading holds a send
// (the stream's flow control) for as long as it keeps the stream open, out
// of reach of the session's timeout; so the send runs on its own goroutine
// and is given up when the session ends. It returns once the relay's caller
// ends the stream, and no send starts after the session has ended.
func (r *router) toNode(env *protocol.MpcEnvelope) error {
	r.sendMu.Lock()
	defer r.sendMu.Unlock()
	if r.ctx.Err() != nil {
		return context.Cause(r.ctx)
	}
	sent := make(chan error, 1)
	go func() { sent <- r.send(env) }()
	select {
	case err := <-sent:
		if err != nil {
			return fmt.Errorf("%w: %v", ErrNodeGone, err)
		}
		return nil
	case <-r.ctx.Done():
		return context.Cause(r.ctx)
	}
}
