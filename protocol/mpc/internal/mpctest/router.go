package mpctest

import (
	"context"
	"errors"
	"fmt"
	"sync"

	pb "github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
)

// ErrStalled is a party's outcome when no message is in flight but the
// party has not finished.
var ErrStalled = errors.New("mpctest: session stalled")

// Outcome is what Run reports for one party.
type Outcome struct {
	// Err is the session's terminal error, ErrStalled, or nil on success.
	Err error
	// Rejected holds the *mpc.MessageError values that Accept returned.
	Rejected []error
}

// Options tune Run.
type Options struct {
	// Tamper, if set, sees every envelope before delivery to one recipient
	// and returns what to deliver instead, or nil to drop it. It must not
	// modify env; it may return a modified copy.
	Tamper func(to mpc.PartyID, env *pb.MpcEnvelope) *pb.MpcEnvelope
}

type item struct {
	env []byte
}

type party struct {
	m     mpc.Machine
	mu    sync.Mutex
	queue []item
	wake  chan struct{}
	out   Outcome
}

// Run drives the machines, keyed by party, until every one is done or no
// message is left in flight, and returns each party's outcome. The machines
// must have been created (so their first messages are waiting in Outgoing).
// Run returns early with ctx's error if ctx ends.
func Run(ctx context.Context, machines map[mpc.PartyID]mpc.Machine, opts Options) (map[mpc.PartyID]*Outcome, error) {
	parties := make(map[mpc.PartyID]*party, len(machines))
	for id, m := range machines {
		parties[id] = &party{m: m, wake: make(chan struct{}, 1)}
	}
	var (
		mu       sync.Mutex
		inflight int
		idle     = make(chan struct{})
		closed   bool
		fatal    error
	)
	finishOne := func(n int) {
		mu.Lock()
		defer mu.Unlock()
		inflight += n
		if inflight == 0 && !closed {
			closed = true
			close(idle)
		}
	}
	route := func(from mpc.PartyID, envs []*pb.MpcEnvelope) {
		for _, env := range envs {
			for id, p := range parties {
				if id == from || (!env.GetBroadcast() && mpc.PartyID(env.GetTo()) != id) {
					continue
				}
				e := env
				if opts.Tamper != nil {
					if e = opts.Tamper(id, env); e == nil {
						continue
					}
				}
				b, err := mpc.EncodeEnvelope(e)
				if err != nil {
					mu.Lock()
					fatal = fmt.Errorf("encode envelope: %w", err)
					mu.Unlock()
					continue
				}
				finishOne(1)
				p.mu.Lock()
				p.queue = append(p.queue, item{env: b})
				p.mu.Unlock()
				select {
				case p.wake <- struct{}{}:
				default:
				}
			}
		}
	}

	// Queue the first messages before any party runs, so that inflight
	// cannot reach zero early.
	finishOne(1)
	for id, p := range parties {
		route(id, p.m.Outgoing())
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	for id, p := range parties {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-p.wake:
				}
				for {
					p.mu.Lock()
					if len(p.queue) == 0 {
						p.mu.Unlock()
						break
					}
					it := p.queue[0]
					p.queue = p.queue[1:]
					p.mu.Unlock()
					env, err := mpc.DecodeEnvelope(it.env)
					if err == nil {
						err = p.m.Accept(env)
					}
					var me *mpc.MessageError
					if errors.As(err, &me) || (err != nil && env == nil) {
						p.out.Rejected = append(p.out.Rejected, err)
					}
					route(id, p.m.Outgoing())
					finishOne(-1)
				}
			}
		}()
	}
	finishOne(-1)

	var err error
	select {
	case <-idle:
	case <-ctx.Done():
		err = ctx.Err()
	}
	close(stop)
	wg.Wait()
	out := make(map[mpc.PartyID]*Outcome, len(parties))
	for id, p := range parties {
		o := p.out
		switch {
		case p.m.Done():
			o.Err = p.m.Err()
		default:
			o.Err = ErrStalled
		}
		out[id] = &o
	}
	mu.Lock()
	defer mu.Unlock()
	if err == nil {
		err = fatal
	}
	return out, err
}

// Start creates one machine per party concurrently (constructors do a
// round of heavy work) and returns them keyed by party.
func Start[M mpc.Machine](ids []mpc.PartyID, create func(id mpc.PartyID) (M, error)) (map[mpc.PartyID]M, error) {
	type res struct {
		id  mpc.PartyID
		m   M
		err error
	}
	ch := make(chan res, len(ids))
	for _, id := range ids {
		go func() {
			m, err := create(id)
			ch <- res{id, m, err}
		}()
	}
	out := make(map[mpc.PartyID]M, len(ids))
	var errs []error
	for range ids {
		r := <-ch
		if r.err != nil {
			errs = append(errs, fmt.Errorf("party %s: %w", r.id, r.err))
			continue
		}
		out[r.id] = r.m
	}
	if len(errs) > 0 {
		for _, m := range out {
			m.Close()
		}
		return nil, errors.Join(errs...)
	}
	return out, nil
}

// Machines converts typed sessions to the map Run takes.
func Machines[M mpc.Machine](in map[mpc.PartyID]M) map[mpc.PartyID]mpc.Machine {
	out := make(map[mpc.PartyID]mpc.Machine, len(in))
	for id, m := range in {
		out[id] = m
	}
	return out
}
