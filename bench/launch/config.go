package launch

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/coterie-mpc/coterie/clock"
)

// Sentinel errors.
var (
	// ErrConfig is returned by Config.Validate and Start for a config
	// that cannot start a cluster; the error lists every problem.
	ErrConfig = errors.New("launch: bad config")
	// ErrTimeout is returned when a wait did not see its condition within
	// its bound; the error says what it waited for.
	ErrTimeout = errors.New("launch: timed out")
	// ErrExited is returned when a process the cluster waits on has
	// exited; the error holds the end of its log.
	ErrExited = errors.New("launch: process exited")
	// ErrNoNode is returned for a node index out of range.
	ErrNoNode = errors.New("launch: no such node")
)

// Config describes a local cluster.
type Config struct {
	// Binary is the coterie executable the processes run.
	Binary string
	// Dir holds every config, data directory and process log; the caller
	// creates and removes it.
	Dir string
	// Nodes is how many `coterie node run` processes to start.
	Nodes int
	// Cosigners is the workspace's cloud co-signers, 1 or 2.
	Cosigners int
	// Quorum is how many parties sign, the cluster included: 2 to
	// Cosigners+1 (2-of-2, 2-of-3 or 3-of-3).
	Quorum int
	// PresignTarget is the pool depth a node keeps per key; WaitWarm waits
	// for it.
	PresignTarget int
	// CallbackPolicy, when set, is the reference callback handler's policy
	// (callback.Policy, YAML): Start runs `coterie callback serve` with it
	// and points every node at it. Empty runs no handler, and the nodes
	// approve every request.
	CallbackPolicy string
	// OwnerTimeout is the nodes' owner_timeout: how long a silent owner
	// keeps its requests.
	OwnerTimeout time.Duration
	// StartTimeout bounds the wait for one process to serve, and for the
	// cluster to reach a state (members, users, a warm pool).
	StartTimeout time.Duration
	// StopTimeout bounds a node's drain after SIGTERM before it is killed.
	StopTimeout time.Duration
	// CallTimeout bounds one admin API call.
	CallTimeout time.Duration
	// Logger receives the launcher's own events; nil discards them.
	Logger *slog.Logger
	// Clock paces the polls of the waits.
	Clock clock.Clock
}

// DefaultConfig returns a three-node 2-of-2 cluster's config; the caller
// sets Binary and Dir.
func DefaultConfig() Config {
	return Config{
		Nodes:         3,
		Cosigners:     1,
		Quorum:        2,
		PresignTarget: 2,
		OwnerTimeout:  time.Second,
		StartTimeout:  90 * time.Second,
		StopTimeout:   20 * time.Second,
		CallTimeout:   5 * time.Second,
		Clock:         clock.Real(),
	}
}

// Validate reports every problem of c at once, wrapped in ErrConfig.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.Binary == "" {
		bad("Binary is empty")
	}
	if c.Dir == "" {
		bad("Dir is empty")
	}
	if c.Nodes < 1 {
		bad("Nodes is %d, want at least 1", c.Nodes)
	}
	if c.Cosigners < 1 || c.Cosigners > 2 {
		bad("Cosigners is %d, want 1 or 2", c.Cosigners)
	}
	if c.Quorum < 2 || c.Quorum > c.Cosigners+1 {
		bad("Quorum is %d, want 2 to Cosigners+1 (%d)", c.Quorum, c.Cosigners+1)
	}
	if c.PresignTarget < 1 {
		bad("PresignTarget is %d, want at least 1", c.PresignTarget)
	}
	// A node refuses an owner_timeout under one second.
	if c.OwnerTimeout < time.Second {
		bad("OwnerTimeout is %s, want at least 1s", c.OwnerTimeout)
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"StartTimeout", c.StartTimeout}, {"StopTimeout", c.StopTimeout}, {"CallTimeout", c.CallTimeout}} {
		if d.v <= 0 {
			bad("%s is %s, want more than 0", d.name, d.v)
		}
	}
	if c.Clock == nil {
		bad("Clock is nil")
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
}
