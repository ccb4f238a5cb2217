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
// a refill job; it tells waiting Sessions when presignatures enter a pool;
// and it holds the presignatures a Session made on the spot until that
// Session has tried to reserve them, so that the node's other Sessions
// leave them to it. Safe for concurrent use.
type slowPath struct {
	slots chan struct{}

	mu    sync.Mutex
	added map[string]chan struct{} // by key: closed when presignatures enter its pool
	held  map[cluster.PresignatureRef]bool
}

func newSlowPath(workers int) *slowPath {
	return &slowPath{slots: make(chan struct{}, workers), added: map[string]chan struct{}{},
		held: map[cluster.PresignatureRef]bool{}}
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

// hold keeps ref for the Session that made it; release gives it to all.
func (p *slowPath) hold(ref cluster.PresignatureRef) {
	p.mu.Lock()
	p.held[ref] = true
	p.mu.Unlock()
}

func (p *slowPath) release(ref cluster.PresignatureRef) {
	p.mu.Lock()
	delete(p.held, ref)
	p.mu.Unlock()
}

func (p *slowPath) isHeld(ref cluster.PresignatureRef) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.held[ref]
}

// acquired is what acquire got for one digest of a request.
type acquired struct {
	ref cluster.PresignatureRef
	// took is the time the committed Reserve took.
	took time.Duration
	// presigns counts the presignatures made on the spot, presignTook
	// their time.
	presigns    int
	presignTook time.Duration
	// empty says the pool was empty and the presign budget spent.
	empty bool
	err   error
}

// acquire reserves a presignature of u's key for request through raft: one
// from the pool while it holds any; with the pool empty, whichever comes
// first of a presignature entering the pool (a refill's, or one another
// node made) and a slow-path slot, on which it presigns one on the spot
// (at most budget times) and reserves that one. It never waits for a
// refill job. presigning is called when an on-the-spot presign starts.
func (s *System) acquire(ctx context.Context, request string, u *userState, budget int, presigning func()) acquired {
	var out acquired
	key := u.ShareRecordID
	for {
		// Take the signal before reading the pool, so that presignatures
		// added in between wake this loop.
		grew := s.slow.wait(key)
		if s.reserveAny(ctx, request, key, &out) {
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
		if s.reserveAny(ctx, request, key, &out) {
			<-s.slow.slots
			return out
		}
		if presigning != nil {
			presigning()
		}
		out.presigns++
		t0 := s.cfg.Clock.Now()
		id, err := s.presignOne(ctx, u, true)
		<-s.slow.slots
		out.presignTook += s.cfg.Clock.Now().Sub(t0)
		if err != nil {
			out.err = err
			return out
		}
		ref := cluster.PresignatureRef{KeyID: key, ID: id}
		done := s.reserveOne(ctx, request, ref, &out)
		s.slow.release(ref)
		if done {
			return out
		}
		// Another node's Session reserved it first; that request needed
		// it as much. Try again.
	}
}

// maxReserveTries bounds the presignatures one reserveAny tries (others
// may win some of them).
const maxReserveTries = 16

// reserveAny tries to Reserve one of the available presignatures of key
// that no Session of this node holds, oldest first. It reports whether it
// is done: a Reserve committed (out.ref) or failed for good (out.err).
func (s *System) reserveAny(ctx context.Context, request, key string, out *acquired) bool {
	tries := 0
	for _, id := range s.cfg.Cluster.Available(key) {
		ref := cluster.PresignatureRef{KeyID: key, ID: id}
		if s.slow.isHeld(ref) {
			continue
		}
		if tries++; tries > maxReserveTries {
			break
		}
		if s.reserveOne(ctx, request, ref, out) {
			return true
		}
	}
	return false
}

// reserveOne proposes Reserve{request, ref}. It reports whether it is done:
// the Reserve committed (out.ref) or failed for good (out.err); false means
// another request won ref.
func (s *System) reserveOne(ctx context.Context, request string, ref cluster.PresignatureRef, out *acquired) bool {
	cctx, cancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer cancel()
	t0 := s.cfg.Clock.Now()
	err := s.cfg.Cluster.Reserve(cctx, request, ref)
	switch {
	case err == nil:
		out.ref, out.took = ref, s.cfg.Clock.Now().Sub(t0)
		return true
	case errors.Is(err, cluster.ErrPresignatureUsed), errors.Is(err, cluster.ErrPresignatureBurned),
		errors.Is(err, cluster.ErrUnknownPresignature):
		return false // another request won it
	case errors.Is(err, cluster.ErrNotOwner), errors.Is(err, cluster.ErrCompleted):
		out.err = fmt.Errorf("%w: %w", ErrLostOwnership, err)
		return true
	default:
		// Possibly committed (ErrUncertain): that presignature stays the
		// request's, unused, and is never taken again.
		out.err = err
		return true
	}
}
