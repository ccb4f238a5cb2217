package clock

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Fake is a Clock for tests: its time moves only when Advance is called,
// and Advance fires the timers that come due. It is safe for concurrent
// use. It is test-only: nothing in production may use it.
type Fake struct {
	mu      sync.Mutex
	now     time.Time
	timers  []*fakeTimer
	changed chan struct{} // closed and replaced whenever timers changes
}

var _ Clock = (*Fake)(nil)

// NewFake returns a Fake that reads start until advanced.
func NewFake(start time.Time) *Fake {
	return &Fake{now: start, changed: make(chan struct{})}
}

type fakeTimer struct {
	c  *Fake
	at time.Time
	f  func()
}

// Now returns the fake time.
func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f at Now()+d. Advance runs it, in the goroutine that
// calls Advance, once the fake time reaches that point; d <= 0 runs f at
// once in a new goroutine, as time.AfterFunc does.
func (c *Fake) AfterFunc(d time.Duration, f func()) Timer {
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

func (c *Fake) notifyLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// Advance moves the fake time forward by d and runs, in deadline order,
// every timer that comes due. The timers' functions run without the
// clock's lock held, so they may use the clock.
func (c *Fake) Advance(d time.Duration) {
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
func (c *Fake) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

// WaitForTimer blocks until a pending timer is due at least atLeast after
// the fake now, and returns nil; or until ctx is done, and returns its
// cause. Tests use it to know that code under test has started waiting,
// e.g. a backoff of minutes as opposed to a per-attempt timeout of seconds.
func (c *Fake) WaitForTimer(ctx context.Context, atLeast time.Duration) error {
	return c.waitFor(ctx, func(d time.Duration) bool { return d >= atLeast })
}

// WaitForTimerAt is WaitForTimer for a timer due exactly d after the fake
// now, for tests that must tell one wait from the others pending.
func (c *Fake) WaitForTimerAt(ctx context.Context, d time.Duration) error {
	return c.waitFor(ctx, func(due time.Duration) bool { return due == d })
}

// waitFor blocks until a pending timer's time left satisfies match.
func (c *Fake) waitFor(ctx context.Context, match func(time.Duration) bool) error {
	for {
		c.mu.Lock()
		for _, t := range c.timers {
			if match(t.at.Sub(c.now)) {
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
