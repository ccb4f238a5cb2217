package node

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/clock"
)

// TestFileSaver: changes asked for while a save runs are taken by one
// later save; a failed save is tried again after keeperRetry on the
// node's clock; close ends the saver.
func TestFileSaver(t *testing.T) {
	clk := clock.NewFake(time.Unix(1_700_000_000, 0))
	calls := make(chan chan error)
	s := newFileSaver(func(context.Context) error {
		answer := make(chan error)
		calls <- answer
		return <-answer
	}, clk, slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	next := func() chan error {
		select {
		case c := <-calls:
			return c
		case <-ctx.Done():
			t.Fatal("no save")
			return nil
		}
	}

	s.changed()
	first := next()
	s.changed() // while the first save runs
	s.changed() // coalesced with the one before
	first <- nil
	next() <- errors.New("parent unreachable")
	// The retry waits keeperRetry on the clock, and no save runs before.
	if err := clk.WaitForTimerAt(ctx, keeperRetry); err != nil {
		t.Fatal(err)
	}
	select {
	case <-calls:
		t.Fatal("a save ran before the retry delay")
	default:
	}
	clk.Advance(keeperRetry)
	next() <- nil
	select {
	case <-calls:
		t.Fatal("a save ran with no change asked for")
	case <-time.After(50 * time.Millisecond):
	}
	if err := s.close(); err != nil {
		t.Fatal(err)
	}
}
