package cluster

import "time"

// Clock is the time source of the cluster's own logic: proposer timestamps
// and the leader's owner-timeout watcher. Raft's internal timers use real
// time, and so do the waits for raft (such as retrying while a leader is
// elected). Implementations must be safe for concurrent use.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives the time once d has passed.
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the Clock of the operating system.
type SystemClock struct{}

var _ Clock = SystemClock{}

// Now implements Clock.
func (SystemClock) Now() time.Time { return time.Now() }

// After implements Clock.
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
