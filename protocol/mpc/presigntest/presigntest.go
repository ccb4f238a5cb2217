package presigntest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/protocol/mpc/internal/synthetic"
)

// Presignatures returns n distinct synthetic presignatures, each the share of
// party "a" in a 2-of-2 presignature of its own random key. They are test
// material only.
func Presignatures(t testing.TB, n int) []*mpc.Presignature {
	t.Helper()
	out := make([]*mpc.Presignature, 0, n)
	for range n {
		recs, err := synthetic.Presignature(rand.Reader, []string{"a", "b"})
		if err != nil {
			t.Fatalf("synthetic presignature: %v", err)
		}
		p, err := mpc.UnmarshalPresignature(recs["a"])
		if err != nil {
			t.Fatalf("decode synthetic presignature: %v", err)
		}
		out = append(out, p)
	}
	return out
}

// Run runs the PresignStore contract against stores that newStore makes.
// newStore is called once per subtest and must return an empty store.
func Run(t *testing.T, newStore func(t *testing.T) mpc.PresignStore) {
	ctx := context.Background()

	t.Run("TakeReturnsWhatPutStored", func(t *testing.T) {
		s := newStore(t)
		ps := Presignatures(t, 3)
		for _, p := range ps {
			mustPut(t, s, p)
		}
		for _, p := range ps {
			got, err := s.Take(ctx, p.ID())
			if err != nil {
				t.Fatalf("Take(%s): %v", p.ID(), err)
			}
			assertSame(t, p, got)
		}
	})

	t.Run("SecondTakeIsUsed", func(t *testing.T) {
		s := newStore(t)
		p := Presignatures(t, 1)[0]
		mustPut(t, s, p)
		if _, err := s.Take(ctx, p.ID()); err != nil {
			t.Fatalf("first Take: %v", err)
		}
		for i := range 3 {
			if _, err := s.Take(ctx, p.ID()); !errors.Is(err, mpc.ErrPresignatureUsed) {
				t.Fatalf("Take #%d after use: got %v, want ErrPresignatureUsed", i+2, err)
			}
		}
	})

	t.Run("TakeUnknownIsNotFound", func(t *testing.T) {
		s := newStore(t)
		mustPut(t, s, Presignatures(t, 1)[0])
		var id mpc.PresignatureID
		id[0] = 1
		if _, err := s.Take(ctx, id); !errors.Is(err, mpc.ErrPresignatureNotFound) {
			t.Fatalf("Take of unknown ID: got %v, want ErrPresignatureNotFound", err)
		}
	})

	t.Run("PutExistingIsRefused", func(t *testing.T) {
		s := newStore(t)
		p := Presignatures(t, 1)[0]
		mustPut(t, s, p)
		if err := s.Put(ctx, p); !errors.Is(err, mpc.ErrPresignatureExists) {
			t.Fatalf("second Put: got %v, want ErrPresignatureExists", err)
		}
		got, err := s.Take(ctx, p.ID())
		if err != nil {
			t.Fatalf("Take after refused Put: %v", err)
		}
		assertSame(t, p, got)
	})

	t.Run("PutAfterTakeIsUsed", func(t *testing.T) {
		s := newStore(t)
		p := Presignatures(t, 1)[0]
		mustPut(t, s, p)
		if _, err := s.Take(ctx, p.ID()); err != nil {
			t.Fatalf("Take: %v", err)
		}
		if err := s.Put(ctx, p); !errors.Is(err, mpc.ErrPresignatureUsed) {
			t.Fatalf("Put after Take: got %v, want ErrPresignatureUsed", err)
		}
		if _, err := s.Take(ctx, p.ID()); !errors.Is(err, mpc.ErrPresignatureUsed) {
			t.Fatalf("Take after refused re-Put: got %v, want ErrPresignatureUsed", err)
		}
	})

	t.Run("TakeLeavesOthers", func(t *testing.T) {
		s := newStore(t)
		ps := Presignatures(t, 2)
		mustPut(t, s, ps[0])
		mustPut(t, s, ps[1])
		if _, err := s.Take(ctx, ps[0].ID()); err != nil {
			t.Fatalf("Take first: %v", err)
		}
		got, err := s.Take(ctx, ps[1].ID())
		if err != nil {
			t.Fatalf("Take second: %v", err)
		}
		assertSame(t, ps[1], got)
	})

	t.Run("ConcurrentTakesHaveOneWinner", func(t *testing.T) {
		s := newStore(t)
		const ids, takers = 4, 8
		ps := Presignatures(t, ids)
		for _, p := range ps {
			mustPut(t, s, p)
		}
		var wg sync.WaitGroup
		wins := make([]int, ids)
		errs := make(chan error, ids*takers)
		var mu sync.Mutex
		for i, p := range ps {
			for range takers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					got, err := s.Take(ctx, p.ID())
					switch {
					case err == nil:
						if got.ID() != p.ID() {
							errs <- fmt.Errorf("Take(%s) returned %s", p.ID(), got.ID())
						}
						mu.Lock()
						wins[i]++
						mu.Unlock()
					case !errors.Is(err, mpc.ErrPresignatureUsed):
						errs <- fmt.Errorf("losing Take(%s): got %v, want ErrPresignatureUsed", p.ID(), err)
					}
				}()
			}
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		for i, n := range wins {
			if n != 1 {
				t.Errorf("presignature %d taken %d times, want exactly once", i, n)
			}
		}
	})

	t.Run("ConcurrentPutsOfOneIDHaveOneWinner", func(t *testing.T) {
		s := newStore(t)
		p := Presignatures(t, 1)[0]
		const putters = 8
		var wg sync.WaitGroup
		results := make(chan error, putters)
		for range putters {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results <- s.Put(ctx, p)
			}()
		}
		wg.Wait()
		close(results)
		ok := 0
		for err := range results {
			switch {
			case err == nil:
				ok++
			case !errors.Is(err, mpc.ErrPresignatureExists):
				t.Errorf("losing Put: got %v, want ErrPresignatureExists", err)
			}
		}
		if ok != 1 {
			t.Fatalf("%d Puts succeeded, want exactly 1", ok)
		}
		if _, err := s.Take(ctx, p.ID()); err != nil {
			t.Fatalf("Take: %v", err)
		}
		if _, err := s.Take(ctx, p.ID()); !errors.Is(err, mpc.ErrPresignatureUsed) {
			t.Fatalf("second Take: got %v, want ErrPresignatureUsed", err)
		}
	})
}

func mustPut(t *testing.T, s mpc.PresignStore, p *mpc.Presignature) {
	t.Helper()
	if err := s.Put(context.Background(), p); err != nil {
		t.Fatalf("Put(%s): %v", p.ID(), err)
	}
}

func assertSame(t *testing.T, want, got *mpc.Presignature) {
	t.Helper()
	if got == nil {
		t.Fatal("Take returned a nil presignature")
	}
	wb, err := want.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	gb, err := got.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(wb, gb) {
		t.Fatalf("Take(%s) returned a presignature that differs from the one stored", want.ID())
	}
}
