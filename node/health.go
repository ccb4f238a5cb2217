package node

import (
	"fmt"
	"net/http"
)

// Phase is where a node is between New and Close. /v1/health and
// /v1/status report it.
type Phase int32

// The phases, in the order a node goes through them.
const (
	// PhaseStarting: New has opened the store, raft and the admin API;
	// Start has not yet seen a raft leader.
	PhaseStarting Phase = iota
	// PhaseCatchingUp: Start knows a leader and brings the node into its
	// cluster (catch-up, the member table, promotion to voter), then
	// starts the actors.
	PhaseCatchingUp
	// PhaseServing: Start has finished; the node claims and signs.
	PhaseServing
	// PhaseDraining: a planned restart (Drain) is under way.
	PhaseDraining
	// PhaseLeaving: a planned departure for good (Leave) is under way.
	PhaseLeaving
	// PhaseStopped: Close has begun.
	PhaseStopped
)

// String returns the phase as /v1/health and /v1/status show it.
func (p Phase) String() string {
	switch p {
	case PhaseStarting:
		return "starting"
	case PhaseCatchingUp:
		return "catching-up"
	case PhaseServing:
		return "serving"
	case PhaseDraining:
		return "draining"
	case PhaseLeaving:
		return "leaving"
	case PhaseStopped:
		return "stopped"
	default:
		return fmt.Sprintf("phase(%d)", int32(p))
	}
}

// Phase returns the node's phase.
func (n *Node) Phase() Phase { return Phase(n.phase.Load()) }

func (n *Node) setPhase(p Phase) { n.phase.Store(int32(p)) }

// The HTTP status codes of GET /v1/health, in Vault's style, so that load
// balancers and scripts can tell the states apart without reading the
// body.
const (
	// HealthServing: a member of an initialised cluster, a leader known,
	// caught up, signing.
	HealthServing = http.StatusOK
	// HealthStandby: a planned departure (draining, leaving) or a stop is
	// under way: the node claims nothing new.
	HealthStandby = http.StatusTooManyRequests
	// HealthCatchingUp: the node is starting, or catching up with the
	// leader after a join or a restart, and serves nothing yet.
	HealthCatchingUp = 473
	// HealthNotJoined: the cluster has no member table, or this node is
	// not in it (it was removed).
	HealthNotJoined = http.StatusNotImplemented
	// HealthUnavailable: no raft leader is known (no quorum, or this node
	// is cut off from it), or signing stopped (a broken invariant, or a
	// callback handler that is not the cluster's).
	HealthUnavailable = http.StatusServiceUnavailable
)

// Health is the JSON body of GET /v1/health: the state its status code
// gives, and why.
type Health struct {
	// Status names the state: serving, standby, catching_up,
	// not_initialized, not_member, no_quorum or signing_stopped.
	Status string `json:"status"`
	// Reason says why, in a sentence for people.
	Reason   string `json:"reason"`
	NodeID   string `json:"node_id"`
	Phase    string `json:"phase"`
	LeaderID string `json:"leader_id,omitempty"`
}

// healthFacts are what a node's health is decided from.
type healthFacts struct {
	node      string
	phase     Phase
	halted    string // why signing stopped; empty while it runs
	leader    string // the raft leader this node knows of
	clusterID string // empty before the member table exists
	member    bool   // this node is in the member table
}

// decideHealth returns the status code and body for facts. The order
// matters: a broken invariant outranks everything; a planned departure
// outranks the cluster's state, which the node is leaving behind; before
// the node serves, only quorum and catch-up are meaningful (its replica may
// not hold the member table yet); once it serves, its membership is checked
// before its leader, since a removed node soon loses its leader too.
func decideHealth(f healthFacts) (int, Health) {
	h := Health{NodeID: f.node, Phase: f.phase.String(), LeaderID: f.leader}
	set := func(code int, status, format string, args ...any) (int, Health) {
		h.Status, h.Reason = status, fmt.Sprintf(format, args...)
		return code, h
	}
	noLeader := "no raft leader known: the cluster has no quorum, or this node cannot reach it"
	switch {
	case f.halted != "":
		return set(HealthUnavailable, "signing_stopped", "signing stopped: %s", f.halted)
	case f.phase == PhaseDraining:
		return set(HealthStandby, "standby", "draining for a restart: claiming nothing new, finishing the requests in flight")
	case f.phase == PhaseLeaving:
		return set(HealthStandby, "standby", "leaving the cluster: claiming nothing new, finishing the requests in flight")
	case f.phase == PhaseStopped:
		return set(HealthStandby, "standby", "stopping")
	case f.phase != PhaseServing && f.leader == "":
		return set(HealthUnavailable, "no_quorum", "%s", noLeader)
	case f.phase != PhaseServing:
		return set(HealthCatchingUp, "catching_up", "catching up with the leader (%s)", f.phase)
	case f.clusterID == "":
		return set(HealthNotJoined, "not_initialized", "the cluster has no member table")
	case !f.member:
		return set(HealthNotJoined, "not_member", "%s is not in the member table of cluster %s: it was removed", f.node, f.clusterID)
	case f.leader == "":
		return set(HealthUnavailable, "no_quorum", "%s", noLeader)
	}
	return set(HealthServing, "serving", "serving")
}

// Health returns the node's health: the status code GET /v1/health
// answers with, and its body.
func (n *Node) Health() (int, Health) {
	f := healthFacts{node: n.cfg.NodeID, phase: n.Phase(), clusterID: n.cluster.ClusterID()}
	if why := n.halted.Load(); why != nil {
		f.halted = *why
	}
	f.leader, _ = n.cluster.Leader()
	_, f.member = n.cluster.FSM().MemberByID(n.cfg.NodeID)
	return decideHealth(f)
}

// stopSigning records that a safety invariant broke on this node, so that
// /v1/health answers 503 with the reason until the node restarts. The
// first reason is kept. It is for the actors' wiring: the part that
// detects the break stops the signing itself.
func (n *Node) stopSigning(reason string) {
	if n.halted.CompareAndSwap(nil, &reason) {
		n.log.Error("signing stopped", "reason", reason)
	}
}

func (a *adminServer) health(w http.ResponseWriter, _ *http.Request) {
	code, h := a.n.Health()
	writeJSON(w, code, h)
}
