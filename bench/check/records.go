package check

import "github.com/coterie-mpc/coterie/cluster"

// Records is everything Check judges, in plain values so that a test can
// doctor them. Every field may be empty; a check with nothing to read finds
// nothing.
type Records struct {
	// Requests are the workspace's requests, with the signatures it
	// recorded.
	Requests []Request
	// Keys maps an API user id to its MPC signing key's public side, which
	// signatures are verified under.
	Keys map[string]SigningKey
	// Ledger is the cloud co-signers' use of presignatures, one entry per
	// use, in the order the workspace recorded them.
	Ledger []LedgerUse
	// Nodes are the nodes' views of the cluster FSM, one per node.
	Nodes []Node
	// Logs are the nodes' committed raft logs, one per node, each read
	// after the node's view in Nodes.
	Logs []NodeLog
	// Callback is the callback handler's decisions; nil when no handler was
	// configured, which turns I5 off.
	Callback *CallbackLog
	// Audits are the nodes' audit logs, one per node.
	Audits []NodeAudit
}

// State is a workspace request's state, by the workspace's names
// ("pending", "signed", ...: store.RequestStateName).
type State string

// The workspace's request states.
const (
	StatePending   State = "pending"
	StateDelivered State = "delivered"
	StateClaimed   State = "claimed"
	StateSigned    State = "signed"
	StateApproved  State = "approved"
	StateRejected  State = "rejected"
	StateFailed    State = "failed"
	StateExpired   State = "expired"
	// StateIgnored is the co-signer's final answer to a config change its
	// handler answered IGNORE: the workspace leaves it open for others.
	StateIgnored State = "ignored"
)

// Request is one request as the workspace recorded it.
type Request struct {
	ID     string
	UserID string
	State  State
	// Reason is the rejection or failure reason.
	Reason string
	// Digests are a transaction's digests, in order; empty for a config
	// change.
	Digests []Digest
	// Signatures are the recorded signatures, in the order recorded.
	Signatures []Signature
	// Approved is true when an approval signature is recorded.
	Approved bool
}

// Digest is one digest to sign and its unhardened BIP-32 path.
type Digest struct {
	Digest []byte
	Path   []uint32
}

// Signature is one recorded digest signature.
type Signature struct {
	Index uint32
	// Sig is r||s, 64 bytes.
	Sig []byte
	// PresignID is the presignature the cloud co-signers used (hex), empty
	// when the workspace did not record one.
	PresignID string
	// PublicKey is the derived key the workspace recorded, empty when it
	// recorded none.
	PublicKey []byte
}

// SigningKey is an MPC key's public side.
type SigningKey struct {
	// PublicKey is the compressed secp256k1 master key, ChainCode its
	// BIP-32 chain code.
	PublicKey []byte
	ChainCode []byte
}

// LedgerUse is one use of a presignature by the cloud co-signers.
type LedgerUse struct {
	PresignID   string
	RequestID   string
	DigestIndex uint32
}

// Node is one node's view of the cluster FSM.
type Node struct {
	ID            string
	Requests      []NodeRequest
	Presignatures []NodePresignature
}

// The FSM's request statuses (cluster.RequestStatus names).
const (
	StatusUnclaimed = "unclaimed"
	StatusClaimed   = "claimed"
	StatusCompleted = "completed"
)

// NodeRequest is a node's FSM record of one request.
type NodeRequest struct {
	ID     string
	Status string
	// Owner is the owning node while Status is claimed.
	Owner string
	// Attempt counts the claims that won the request: two views of the same
	// attempt must name the same owner.
	Attempt int
	// Reserved are the presignature ids of the current attempt.
	Reserved []string
	Outcome  string
}

// PresignatureAvailable is the status (cluster.PresignatureStatus name) of
// a presignature that no request has reserved.
const PresignatureAvailable = "available"

// NodePresignature is a node's FSM record of one presignature.
type NodePresignature struct {
	KeyID string
	ID    string
	// Status is available, reserved, used or burned.
	Status string
	// RequestID is the request that reserved it, if any.
	RequestID string
}

// CallbackLog is the callback handler's decisions.
type CallbackLog struct {
	Decisions []Decision
}

// Decision is one answer of the callback handler.
type Decision struct {
	RequestID string
	// Action is APPROVE, REJECT, RETRY or IGNORE.
	Action string
}

// NodeLog is one node's committed raft log, as far as it still holds it.
type NodeLog struct {
	ID string
	// First is the lowest index the node's log held: the entries below it
	// were compacted into a snapshot. 0 when it held none.
	First uint64
	// Entries are in index order, up to the node's applied index.
	Entries []LogEntry
}

// LogEntry is one raft log entry without its secrets; Kind and Type take
// the cluster package's names (cluster.KindClaim, cluster.LogTypeCommand,
// ...).
type LogEntry = cluster.LogEntry
