package actors

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coterie-mpc/coterie/cluster"
)

// slowPath serves the Sessions that find their key's pool empty. It bounds
// the presigns they run at once (Config.SlowPathWorkers), apart from the
// PresignPools' background refills, so that a Session never queues behind
// a refill job, and it tells waiting Sessions when presignatures enter a
// pool. Safe for concurrent use.
type slowPath struct {
	slots chan struct{}

	mu    sync.Mutex
	added map[string]chan struct{} // by key: closed when presignatures enter its pool
	// reserving counts this node's Reserves in flight per key; unclaimed
	// holds, per key, a channel closed at the next Reserve's return.
	reserving map[string]int
	unclaimed map[string]chan struct{}
}

func newSlowPath(workers int) *slowPath {
	return &slowPath{slots: make(chan struct{}, workers), added: map[string]chan struct{}{}, reserving: map[string]int{},
		unclaimed: map[string]chan struct{}{}}
}

// claim reserves one of key's depth available presignatures for a
// Reserve this node is about to propose, and reports whether one was left:
// the node's Sessions propose no more Reserves than the pool can satisfy,
// so they do not fill the raft log with Reserves that find it empty. The
// caller calls unclaim when the proposal returns.
//
// A Reserve of this node that committed is gone from depth before its
// proposal returns and is unclaimed, so it may count twice for a moment:
// when none is left but some are in flight, claim returns a channel that
// closes at the next unclaim, for the caller to look again, rather than
// send a Session to presign on the spot beside a pool that still holds
// presignatures.
func (p *slowPath) claim(key string, depth int) (ok bool, inFlight <-chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if depth-p.reserving[key] > 0 {
		p.reserving[key]++
		return true, nil
	}
	if p.reserving[key] == 0 {
		return false, nil
	}
	ch, ok := p.unclaimed[key]
	if !ok {
		ch = make(chan struct{})
		p.unclaimed[key] = ch
	}
	return false, ch
}

func (p *slowPath) unclaim(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reserving[key]--; p.reserving[key] <= 0 {
		delete(p.reserving, key)
	}
	if ch, ok := p.unclaimed[key]; ok {
		close(ch)
		delete(p.unclaimed, key)
	}
}

// wait returns a channel that is closed when presignatures next enter key's
// pool (or the state is restored from a snapshot).
func (p *slowPath) wait(key string) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch, ok := p.added[key]
	if !ok {
		ch = make(chan struct{})
		p.added[key] = ch
	}
	return ch
}

// poolGrew wakes the Sessions waiting for key's pool.
func (p *slowPath) poolGrew(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ch, ok := p.added[key]; ok {
		close(ch)
		delete(p.added, key)
	}
}

// restored wakes every waiting Session.
func (p *slowPath) restored() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for key, ch := range p.added {
		close(ch)
		delete(p.added, key)
	}
}

// acquired is what acquire got for one digest of a request.
type acquired struct {
	ref cluster.PresignatureRef
	// took is the time the committed Reserve (or Add-and-reserve) took.
	took time.Duration
	// presigns counts the presignatures made on the spot, presignTook
	// their time.
	presigns    int
	presignTook time.Duration
	// empty says the pool was empty and the presign budget spent.
	empty bool
	err   error
}

// acquire reserves a presignature of u's key for request through raft: the
// pool's oldest while it holds any (the FSM picks it, so the node's
// Sessions never collide); with the pool empty, whichever comes first of a
// presignature entering the pool (a refill's, or one another node made) and
// a slow-path slot, on which it presigns one on the spot (at most budget
// times in a Session's life) and adds and reserves it in one commit. It
// never waits for a refill job. presigning is called when an on-the-spot
// presign starts.
func (s *System) acquire(ctx context.Context, request string, u *userState, budget int, presigning func()) acquired {
	var out acquired
	key := u.ShareRecordID
	for {
		// Take the signal before reading the pool, so that presignatures
		// added in between wake this loop.
		grew := s.slow.wait(key)
		if s.reserveNext(ctx, request, u, &out) {
			return out
		}
		if out.presigns >= budget {
			out.empty = true
			return out
		}
		select {
		case <-grew:
			continue
		case <-ctx.Done():
			out.err = ctx.Err()
			return out
		case s.slow.slots <- struct{}{}:
		}
		// The cluster's events are hints and may be dropped: read the
		// pool once more before presigning.
		if s.reserveNext(ctx, request, u, &out) {
			<-s.slow.slots
			return out
		}
		if presigning != nil {
			presigning()
		}
		out.presigns++
		t0 := s.cfg.Clock.Now()
		made, err := s.presignOne(ctx, u, request)
		<-s.slow.slots
		out.presignTook += s.cfg.Clock.Now().Sub(t0) - made.took
		out.ref, out.took, out.err = made.ref, made.took, lostOwnership(err)
		return out
	}
}

// reserveNext proposes a Reserve of the oldest available presignature of
// u's key for request, unless the local replica shows none left that this
// node's other Sessions are not already reserving. It reports whether it
// is done: a Reserve committed (out.ref) or failed for good (out.err);
// false means the pool is empty.
func (s *System) reserveNext(ctx context.Context, request string, u *userState, out *acquired) bool {
	key := u.ShareRecordID
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	for {
		ok, inFlight := s.slow.claim(key, s.cfg.Cluster.PoolDepth(key))
		if ok {
			break
		}
		if inFlight == nil {
			return false
		}
		select {
		case <-inFlight:
		case <-cctx.Done():
			out.err = cctx.Err()
			return true
		}
	}
	defer s.slow.unclaim(key)
	t0 := s.cfg.Clock.Now()
	ref, err := u.pool.ReserveNext(cctx, request)
	switch {
	case err == nil:
		out.ref, out.took = ref, s.cfg.Clock.Now().Sub(t0)
		return true
	case errors.Is(err, cluster.ErrPoolEmpty):
		return false
	default:
		// ErrUncertain: a presignature may be the request's now; it is
		// never used.
		out.err = lostOwnership(err)
		return true
	}
}

// lostOwnership marks the errors that mean this node no longer owns the
// request with ErrLostOwnership.
func lostOwnership(err error) error {
	if errors.Is(err, cluster.ErrNotOwner) || errors.Is(err, cluster.ErrCompleted) || errors.Is(err, cluster.ErrUnknownRequest) {
		return fmt.Errorf("%w: %w", ErrLostOwnership, err)
	}
	return err
}
