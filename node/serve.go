package node

import (
	"context"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// userServer serves the paired API users: the actor system. The node
// starts it in Start, hands it every user (those in the cluster state at
// start, then each new pairing) and stops it first in Close.
type userServer interface {
	// add starts serving u.
	add(u *User) error
	// status returns a JSON-encodable snapshot for /v1/status.
	status() any
	// stages returns a copy of each signing stage's HDR histogram, in
	// microseconds since the server started (actors.Metrics.StageSnapshots).
	stages() map[string]*hdrhistogram.Snapshot
	// halt stops claiming and signing for good, with a reason that
	// /v1/health reports.
	halt(reason string)
	// stop stops claiming and lets the sessions in flight finish until ctx
	// ends, then stops serving; the requests still unfinished stay this
	// node's in the cluster. Calls after the first return at once.
	stop(ctx context.Context) error
}
