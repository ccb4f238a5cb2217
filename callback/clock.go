package callback

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Clock is the time source of the Client and the Server. Tests inject a
// FakeClock; production code uses SystemClock.
//
// Implementations are safe for concurrent use.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc calls f once d has elapsed, unless the returned Timer is
	// stopped first. A d <= 0 fires at once. f must not block: the system
	// clock runs it in its own goroutine, a FakeClock inside Advance.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending call made by Clock.AfterFunc.
type Timer interface {
	// Stop prevents the call if it has not started yet, and reports
	// whether it did so. It does not wait for a started call to finish.
	Stop() bool
}

// SystemClock returns the wall clock: time.Now and time.AfterFunc.
func SystemClock() Clock { return systemClock{} }

type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// sleep waits for d on clk, or until ctx is done, whichever is first; it
// returns ctx's error in the second case.
func sleep(ctx context.Context, clk Clock, d time.Duration) error {
	done := make(chan struct{})
	t := clk.AfterFunc(d, func() { close(done) })
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		t.Stop()
		return context.Cause(ctx)
	}
}

// FakeClock is a Clock for tests: its time moves only when Advance is
// called, and Advance fires the timers that come due. It is safe for
// concurrent use. It is not for production.
type FakeClock struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer
	changed chan struct{} // closed and replaced whenever timers changes
}

var (
	_ Clock = (*FakeClock)(nil)
	_ Clock = systemClock{}
)

// NewFakeClock returns a FakeClock that reads start until advanced.
func NewFakeClock(start time.Time) *FakeClock {
	return &FakeClock{now: start, changed: make(chan struct{})}
}

type fakeTimer struct {
	c  *FakeClock
	at time.Time
	f  func()
}

// Now returns the fake time.
func (c *FakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f at Now()+d. Advance runs it, in the goroutine that
// calls Advance, once the fake time reaches that point; d <= 0 runs f at
// once in a new goroutine, as time.AfterFunc does.
func (c *FakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	if d <= 0 {
		go f()
		return t
	}
	c.timers = append(c.timers, t)
	c.notifyLocked()
	return t
}

// Stop removes the timer if it is still pending.
func (t *fakeTimer) Stop() bool {
	c := t.c
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, x := range c.timers {
		if x == t {
			c.timers = append(c.timers[:i], c.timers[i+1:]...)
			c.notifyLocked()
			return true
		}
	}
	return false
}

func (c *FakeClock) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Advance moves the fake time forward by d and runs, in deadline order,
// every timer that comes due. The timers' functions run without the
// clock's lock held, so they may use the clock.
func (c *FakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due, keep []*fakeTimer
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			due = append(due, t)
		} else {
			keep = append(keep, t)
		}
	}
	c.timers = keep
	if len(due) > 0 {
		c.notifyLocked()
	}
	c.mu.Unlock()
	sort.SliceStable(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
	for _, t := range due {
		t.f()
	}
}

// Pending returns how many timers are waiting to fire.
func (c *FakeClock) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// WaitForTimer blocks until a pending timer is due at least atLeast after the
// fake now, and returns nil; or until ctx is done, and returns its error.
// Tests use it to know that code under test has started waiting, e.g. a
// backoff of minutes as opposed to a per-attempt timeout of seconds.
func (c *FakeClock) WaitForTimer(ctx context.Context, atLeast time.Duration) error {
	for {
		c.mu.Lock()
		for _, t := range c.timers {
			if t.at.Sub(c.now) >= atLeast {
				c.mu.Unlock()
				return nil
			}
		}
		changed := c.changed
		c.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}
