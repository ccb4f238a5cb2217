package console

import "time"

// State is the JSON that GET /v1/console/state answers: everything the
// console page shows, as one node sees it. It names nodes, users and
// requests, never a token, a key share, a presignature or a ciphertext.
// Times are UTC; ages and waits are computed by the node, so that the
// browser's clock does not matter.
type State struct {
	NodeID string    `json:"node_id"`
	Time   time.Time `json:"time"`
	Health Health    `json:"health"`
	// PollSeconds is how often the page asks for the state again.
	PollSeconds float64    `json:"poll_seconds"`
	Cluster     Cluster    `json:"cluster"`
	Users       []User     `json:"users"`
	InFlight    InFlight   `json:"in_flight"`
	Decisions   []Decided  `json:"decisions"`
	Failovers   []Failover `json:"failovers"`
	Latency     Latency    `json:"latency"`
}

// Health is the node's own health, as /v1/health reports it.
type Health struct {
	Status string `json:"status"`
	Reason string `json:"reason"`
	Phase  string `json:"phase"`
}

// Cluster is the member table and raft's view of it from this node.
type Cluster struct {
	ID       string `json:"id"`
	LeaderID string `json:"leader_id"`
	// LivenessKnown is true on the leader, the only node that watches
	// every member's heartbeats.
	LivenessKnown bool     `json:"liveness_known"`
	Members       []Member `json:"members"`
}

// Member is one member of the cluster.
type Member struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Role     string `json:"role"`
	Liveness string `json:"liveness"`
	// Health is the member's /v1/health status: known for this node only.
	Health   string `json:"health,omitempty"`
	Location string `json:"location,omitempty"`
	Enclave  string `json:"enclave"`
	// Term, CommitIndex and AppliedIndex are the member's raft state: this
	// node's own, or as the member last reported it to the leader; Raft
	// says which ("self", "reported", or empty when unknown).
	Raft         string `json:"raft,omitempty"`
	Term         uint64 `json:"term,omitempty"`
	CommitIndex  uint64 `json:"commit_index,omitempty"`
	AppliedIndex uint64 `json:"applied_index,omitempty"`
	// LastContactSeconds is how long ago the member was last heard from:
	// by the leader (a report), or by a follower (its leader's contact).
	LastContactSeconds *float64 `json:"last_contact_seconds,omitempty"`
	// UnreachableSeconds is how long the leader's heartbeats have failed.
	UnreachableSeconds *float64 `json:"unreachable_seconds,omitempty"`
	// RequestsOwned is the unfinished requests the member owns; Sessions
	// and Capacity are known for this node only.
	RequestsOwned int  `json:"requests_owned"`
	Sessions      *int `json:"sessions,omitempty"`
	Capacity      *int `json:"capacity,omitempty"`
}

// User is one paired API user.
type User struct {
	// ID is the user's record id, WORKSPACE/USER.
	ID   string `json:"id"`
	Name string `json:"name,omitempty"`
	Role string `json:"role"`
	// PublicKey is the MPC key (hex, empty for an approver), and
	// ApprovalKey the Ed25519 approval key (hex): the paired keys.
	PublicKey   string `json:"public_key,omitempty"`
	ApprovalKey string `json:"approval_key"`
	Quorum      int    `json:"quorum,omitempty"`
	Parties     int    `json:"parties,omitempty"`
	// Pool is the user's presignature pool; nil for an approver.
	Pool *Pool `json:"pool,omitempty"`
	// Outcomes counts the user's requests by outcome over the last hour,
	// as this node saw them complete.
	Outcomes map[string]int `json:"outcomes"`
}

// Pool is a presignature pool.
type Pool struct {
	Depth int `json:"depth"`
	// Target is the depth this node's forecast refills to; Refilling says
	// whether this node runs presign jobs for it now.
	Target    int  `json:"target"`
	Refilling bool `json:"refilling"`
	// AddedPerMinute is the presignatures the cluster added per minute,
	// over the refill window.
	AddedPerMinute float64 `json:"added_per_minute"`
}

// InFlight lists the unfinished requests, the oldest first.
type InFlight struct {
	Total    int       `json:"total"`
	Requests []Request `json:"requests"`
	// More is how many unfinished requests the list leaves out.
	More int `json:"more"`
}

// Request is one unfinished request.
type Request struct {
	ID   string `json:"id"`
	User string `json:"user"`
	// Owner is empty for a released request that no node claimed yet.
	Owner string `json:"owner,omitempty"`
	// Stage is the Session's step on this node, "claimed" on another,
	// "waiting for a claim" for a released request.
	Stage      string  `json:"stage"`
	Attempt    int     `json:"attempt"`
	AgeSeconds float64 `json:"age_seconds"`
}

// Decided is a request that reached its outcome.
type Decided struct {
	ID      string    `json:"id"`
	User    string    `json:"user"`
	Node    string    `json:"node"`
	Outcome string    `json:"outcome"`
	Reason  string    `json:"reason,omitempty"`
	At      time.Time `json:"at"`
}

// Failover is one release of a node's requests: the leader's release of a
// silent owner, or a node's hand-back.
type Failover struct {
	At   time.Time `json:"at"`
	Node string    `json:"node"`
	// Moved is the requests released; Resumed those claimed again since,
	// To by which node.
	Moved   int            `json:"moved"`
	Resumed int            `json:"resumed"`
	To      map[string]int `json:"to,omitempty"`
	// MeanWaitSeconds and MaxWaitSeconds are how long the resumed
	// requests waited between the release and their new claim.
	MeanWaitSeconds float64 `json:"mean_wait_seconds"`
	MaxWaitSeconds  float64 `json:"max_wait_seconds"`
}

// Latency is each signing stage's latency on this node, one point per
// step over the window.
type Latency struct {
	StepSeconds   float64       `json:"step_seconds"`
	WindowSeconds float64       `json:"window_seconds"`
	Stages        []StageSeries `json:"stages"`
}

// StageSeries is one stage's points, the oldest first.
type StageSeries struct {
	Stage  string  `json:"stage"`
	Points []Point `json:"points"`
}

// Point is what one stage recorded in one step: how many durations, and
// their quantiles in milliseconds (zero when Count is).
type Point struct {
	At    time.Time `json:"at"`
	Count int64     `json:"count"`
	P50   float64   `json:"p50_ms"`
	P90   float64   `json:"p90_ms"`
	P99   float64   `json:"p99_ms"`
	Max   float64   `json:"max_ms"`
}
