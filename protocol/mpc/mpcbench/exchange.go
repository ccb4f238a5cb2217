package mpcbench

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	pb "github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
)

// maxPasses bounds the passes of exchange. An honest run needs one pass per
// message round of its protocol, at most six (presign), and one more to
// see that nothing is left.
const maxPasses = 32

// session is what exchange drives: an *mpc.Session[T].
type session[T any] interface {
	mpc.Machine
	Result() (T, error)
}

// run starts one session per party with create, every party on its own
// goroutine (a constructor does a round of heavy work), exchanges their
// messages until every one is done, and returns each party's result. The
// sessions are closed when run returns.
func run[T any](ctx context.Context, parties []mpc.PartyID, create func(mpc.PartyID) (*mpc.Session[T], error)) (map[mpc.PartyID]T, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ss := make(map[mpc.PartyID]session[T], len(parties))
	errs := make([]error, len(parties))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, p := range parties {
		wg.Go(func() {
			s, err := create(p)
			if err != nil {
				errs[i] = fmt.Errorf("party %s: %w", p, err)
				return
			}
			mu.Lock()
			ss[p] = s
			mu.Unlock()
		})
	}
	wg.Wait()
	defer func() {
		for _, s := range ss {
			s.Close()
		}
	}()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return exchange(ctx, ss)
}

// exchange delivers the sessions' outgoing envelopes to one another until
// none is left, and returns each party's result. It works in passes: a
// pass collects what every session wants sent, then every recipient
// accepts its envelopes on its own goroutine, the way separate processes
// would. It checks ctx before each pass and each envelope, so it returns
// ctx's error within one Accept of ctx ending.
func exchange[T any](ctx context.Context, ss map[mpc.PartyID]session[T]) (map[mpc.PartyID]T, error) {
	parties := slices.Sorted(maps.Keys(ss))
	for range maxPasses {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		inbox := make(map[mpc.PartyID][]*pb.MpcEnvelope)
		for _, from := range parties {
			for _, env := range ss[from].Outgoing() {
				for _, to := range parties {
					if to != from && (env.GetTo() == "" || mpc.PartyID(env.GetTo()) == to) {
						inbox[to] = append(inbox[to], env)
					}
				}
			}
		}
		if len(inbox) == 0 {
			return results(ss)
		}
		errs := make([]error, len(parties))
		var wg sync.WaitGroup
		for i, to := range parties {
			wg.Go(func() {
				for _, env := range inbox[to] {
					if err := ctx.Err(); err != nil {
						errs[i] = err
						return
					}
					if err := ss[to].Accept(env); err != nil {
						errs[i] = fmt.Errorf("party %s: %w", to, err)
						return
					}
				}
			})
		}
		wg.Wait()
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := errors.Join(errs...); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%w: still sending after %d passes", ErrStalled, maxPasses)
}

// results returns every session's result, or an error if one is not done
// or failed.
func results[T any](ss map[mpc.PartyID]session[T]) (map[mpc.PartyID]T, error) {
	out := make(map[mpc.PartyID]T, len(ss))
	for p, s := range ss {
		if !s.Done() {
			return nil, fmt.Errorf("%w: party %s is waiting for messages", ErrStalled, p)
		}
		r, err := s.Result()
		if err != nil {
			return nil, fmt.Errorf("party %s: %w", p, err)
		}
		out[p] = r
	}
	return out, nil
}
