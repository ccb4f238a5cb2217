package harness

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Fault is a kind of fault a drill round injects.
type Fault string

// The faults. A kill is undone by restarting the node once its requests
// moved; the others are undone after Config.Hold.
const (
	// KillLeader is kill -9 of the leader.
	KillLeader Fault = "kill-leader"
	// KillOwner is kill -9 of a follower that owns requests (of any owner
	// when only the leader owns some; of a follower when none does).
	KillOwner Fault = "kill-owner"
	// KillRandom is kill -9 of a node drawn at random.
	KillRandom Fault = "kill-random"
	// SigStop freezes an owning follower (SIGSTOP) for Hold, then lets it
	// go on (SIGCONT).
	SigStop Fault = "sigstop"
	// Partition cuts an owning follower off from its peers for Hold: every
	// byte to its cluster port is dropped, no connection refused, so it
	// looks hung rather than gone.
	Partition Fault = "partition"
	// PartitionLeader cuts the leader off from its followers, likewise.
	PartitionLeader Fault = "partition-leader"
	// PartitionWorkspace cuts an owning follower off from the workspace
	// for Hold, likewise; it stays in touch with its peers, so only its own
	// watch of the workspace (owner_timeout) hands its requests back.
	PartitionWorkspace Fault = "partition-workspace"
	// Latency adds 100 ms (plus or minus 20 ms) to every node's cluster
	// traffic and workspace traffic, for Hold.
	Latency Fault = "latency"
	// Bandwidth limits every node's cluster traffic and workspace traffic
	// to 256 KB/s, for Hold.
	Bandwidth Fault = "bandwidth"
	// RestartAll stops every node (SIGTERM, drain) and starts them again.
	RestartAll Fault = "restart-all"
)

// faults lists every Fault, in DefaultSchedule's order.
var faults = []Fault{KillOwner, KillLeader, SigStop, Partition, KillRandom, PartitionLeader, PartitionWorkspace, Latency, Bandwidth, RestartAll}

// DefaultSchedule mixes every fault.
func DefaultSchedule() []Fault { return append([]Fault(nil), faults...) }

// kills reports whether f kills a node, which then loses its requests.
func (f Fault) kills() bool { return f == KillLeader || f == KillOwner || f == KillRandom }

// Validate reports whether f is a known fault that a cluster of nodes
// nodes survives: the faults that take a node away need a quorum without
// it.
func (f Fault) Validate(nodes int) error {
	known := false
	for _, k := range faults {
		known = known || k == f
	}
	switch {
	case !known:
		return fmt.Errorf("fault %q is unknown; the faults are %s", string(f), faultNames())
	case nodes < 3 && f != Latency && f != Bandwidth && f != RestartAll:
		return fmt.Errorf("fault %s takes a node away: it needs 3 nodes or more, not %d", f, nodes)
	}
	return nil
}

func faultNames() string {
	var names []string
	for _, f := range faults {
		names = append(names, string(f))
	}
	return strings.Join(names, ", ")
}

// maxScheduleLines bounds a schedule file.
const maxScheduleLines = 10000

// ParseSchedule reads a schedule: one fault per line, in order; blank
// lines and everything after a '#' are ignored. It checks each fault
// against a cluster of nodes nodes.
func ParseSchedule(r io.Reader, nodes int) ([]Fault, error) {
	var out []Fault
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		if n > maxScheduleLines {
			return nil, fmt.Errorf("%w: schedule: more than %d lines", ErrConfig, maxScheduleLines)
		}
		line, _, _ := strings.Cut(sc.Text(), "#")
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		f := Fault(line)
		if err := f.Validate(nodes); err != nil {
			return nil, fmt.Errorf("%w: schedule line %d: %w", ErrConfig, n, err)
		}
		out = append(out, f)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: schedule: %w", ErrConfig, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: schedule: no fault", ErrConfig)
	}
	return out, nil
}
