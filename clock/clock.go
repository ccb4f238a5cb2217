package clock

import (
	"context"
	"time"
)

// Clock tells the time and runs functions later.
//
// Implementations are safe for concurrent use.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f once d has elapsed, unless the returned Timer is
	// stopped first. A d <= 0 fires at once, on another goroutine. f must
	// not block: Real runs it in its own goroutine, Fake inside Advance.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending call made by Clock.AfterFunc.
type Timer interface {
	// Stop prevents the call if it has not started yet, and reports
	// whether it did so. It does not wait for a started call to finish.
	// It is safe for concurrent use.
	Stop() bool
}

// Real returns the operating system's clock: time.Now and time.AfterFunc.
func Real() Clock { return realClock{} }

type realClock struct{}

var _ Clock = realClock{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// After returns a channel that receives c's time once d has elapsed on c,
// and the Timer that cancels it. The channel has a buffer of one, so the
// send never blocks; a caller that stops waiting should Stop the Timer so
// that it does not stay pending.
func After(c Clock, d time.Duration) (<-chan time.Time, Timer) {
	ch := make(chan time.Time, 1)
	t := c.AfterFunc(d, func() { ch <- c.Now() })
	return ch, t
}

// Sleep waits for d on c, or until ctx is done, whichever is first; it
// returns ctx's cause in the second case, and then leaves no timer pending.
func Sleep(ctx context.Context, c Clock, d time.Duration) error {
	done := make(chan struct{})
	t := c.AfterFunc(d, func() { close(done) })
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		t.Stop()
		return context.Cause(ctx)
	}
}
