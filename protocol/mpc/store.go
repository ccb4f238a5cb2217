package mpc

import (
	"context"
	"sync"
)

// PresignStore holds presignature shares until they are used. It is the
// guard of DESIGN invariant I1: a presignature is used in at most one online
// signing. Engine.PresignOnline takes the presignature out of the store
// itself, so nothing can sign with a presignature without taking it.
//
// Contract (checked by the presigntest package's Run):
//   - Take removes the presignature and returns it, atomically: of any number
//     of concurrent or repeated Takes of one ID, exactly one succeeds. Every
//     other Take of that ID, forever after, returns ErrPresignatureUsed.
//   - Take of an ID that the store never held returns ErrPresignatureNotFound.
//   - Put of an ID that the store holds returns ErrPresignatureExists; Put of
//     an ID that was taken returns ErrPresignatureUsed. Neither changes the
//     store.
//   - A successful Take returns a presignature equal to the one Put stored.
//   - All methods are safe for concurrent use. The store does not retain or
//     modify the caller's values beyond what the call documents.
//   - Implementations that persist the presignature must do so encrypted;
//     a raft-backed store must make Take a committed log entry, so that a
//     presignature taken on one node is taken on all of them and stays taken
//     across restarts.
type PresignStore interface {
	// Put adds p to the store.
	Put(ctx context.Context, p *Presignature) error
	// Take removes the presignature with the given ID and returns it.
	Take(ctx context.Context, id PresignatureID) (*Presignature, error)
}

// MemPresignStore is an in-memory PresignStore. It remembers taken IDs for
// its lifetime, but a restart forgets everything, so only a process whose
// presignatures die with it (such as the workspace simulator's cloud
// co-signers, or tests) may use it. The zero value is ready to use.
type MemPresignStore struct {
	mu    sync.Mutex
	avail map[PresignatureID]*Presignature
	used  map[PresignatureID]struct{}
}

var _ PresignStore = (*MemPresignStore)(nil)

// NewMemPresignStore returns an empty store.
func NewMemPresignStore() *MemPresignStore { return &MemPresignStore{} }

// Put implements PresignStore.
func (s *MemPresignStore) Put(ctx context.Context, p *Presignature) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.used[p.id]; ok {
		return ErrPresignatureUsed
	}
	if _, ok := s.avail[p.id]; ok {
		return ErrPresignatureExists
	}
	if s.avail == nil {
		s.avail = make(map[PresignatureID]*Presignature)
	}
	s.avail[p.id] = p
	return nil
}

// Take implements PresignStore.
func (s *MemPresignStore) Take(ctx context.Context, id PresignatureID) (*Presignature, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.used[id]; ok {
		return nil, ErrPresignatureUsed
	}
	p, ok := s.avail[id]
	if !ok {
		return nil, ErrPresignatureNotFound
	}
	delete(s.avail, id)
	if s.used == nil {
		s.used = make(map[PresignatureID]struct{})
	}
	s.used[id] = struct{}{}
	return p, nil
}

// Len returns the number of presignatures available to Take.
func (s *MemPresignStore) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.avail)
}

// OneUse returns a store that holds only p, for Engine.PresignOnline to take
// once. It is for a presignature its caller has already taken out of its
// durable store (a raft reservation, a co-signer's used mark), which is
// what keeps it from being used twice.
func OneUse(p *Presignature) PresignStore {
	return &MemPresignStore{avail: map[PresignatureID]*Presignature{p.id: p}}
}
