package node

import (
	"context"
	"time"

	"github.com/coterie-mpc/coterie/clock"
)

// startLeaderLoop calls step every interval on the node's clock, while
// this node leads, until Close. Each next tick is armed before step runs,
// so the pace is one step per interval whatever a step takes, and a step
// that outlasts the interval is followed by the next at once rather than
// by two at the same time. step's context ends when the node closes; Close
// waits for a step in flight, before the cluster closes.
func (n *Node) startLeaderLoop(every time.Duration, step func(ctx context.Context)) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	tick, t := clock.After(n.clock, every)
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-tick:
			}
			tick, t = clock.After(n.clock, every)
			if n.cluster.IsLeader() {
				step(ctx)
			}
		}
	}()
	n.closeFn = append(n.closeFn, func() error { cancel(); <-done; return nil })
}
