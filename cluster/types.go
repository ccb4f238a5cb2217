package cluster

import (
	"time"

	"github.com/coterie-mpc/coterie/protocol"
)

// Outcome is the terminal outcome of a request.
type Outcome int

// The outcomes a Complete can record.
const (
	OutcomeUnspecified Outcome = iota
	OutcomeSigned
	OutcomeApproved
	OutcomeRejected
	OutcomeFailed
	// OutcomeIgnored: the callback handler answered IGNORE to a config
	// change, leaving the decision to the workspace's other approvers.
	OutcomeIgnored
)

// String returns the outcome's lowercase name.
func (o Outcome) String() string {
	switch o {
	case OutcomeSigned:
		return "signed"
	case OutcomeApproved:
		return "approved"
	case OutcomeRejected:
		return "rejected"
	case OutcomeFailed:
		return "failed"
	case OutcomeIgnored:
		return "ignored"
	default:
		return "unspecified"
	}
}

func (o Outcome) proto() protocol.ClusterOutcome {
	switch o {
	case OutcomeSigned:
		return protocol.ClusterOutcome_CLUSTER_OUTCOME_SIGNED
	case OutcomeApproved:
		return protocol.ClusterOutcome_CLUSTER_OUTCOME_APPROVED
	case OutcomeRejected:
		return protocol.ClusterOutcome_CLUSTER_OUTCOME_REJECTED
	case OutcomeFailed:
		return protocol.ClusterOutcome_CLUSTER_OUTCOME_FAILED
	case OutcomeIgnored:
		return protocol.ClusterOutcome_CLUSTER_OUTCOME_IGNORED
	default:
		return protocol.ClusterOutcome_CLUSTER_OUTCOME_UNSPECIFIED
	}
}

func outcomeFromProto(o protocol.ClusterOutcome) Outcome {
	switch o {
	case protocol.ClusterOutcome_CLUSTER_OUTCOME_SIGNED:
		return OutcomeSigned
	case protocol.ClusterOutcome_CLUSTER_OUTCOME_APPROVED:
		return OutcomeApproved
	case protocol.ClusterOutcome_CLUSTER_OUTCOME_REJECTED:
		return OutcomeRejected
	case protocol.ClusterOutcome_CLUSTER_OUTCOME_FAILED:
		return OutcomeFailed
	case protocol.ClusterOutcome_CLUSTER_OUTCOME_IGNORED:
		return OutcomeIgnored
	default:
		return OutcomeUnspecified
	}
}

// RequestStatus is where a request is in its life.
type RequestStatus int

// The request statuses. A request the FSM has never seen has no status.
const (
	StatusUnknown RequestStatus = iota
	// StatusClaimed means one node owns the request.
	StatusClaimed
	// StatusUnclaimed means the owner was released and any node may claim it.
	StatusUnclaimed
	// StatusCompleted means the request has its outcome.
	StatusCompleted
)

// String returns the status's lowercase name.
func (s RequestStatus) String() string {
	switch s {
	case StatusClaimed:
		return "claimed"
	case StatusUnclaimed:
		return "unclaimed"
	case StatusCompleted:
		return "completed"
	default:
		return "unknown"
	}
}

func statusFromProto(s protocol.ClusterRequestStatus) RequestStatus {
	switch s {
	case protocol.ClusterRequestStatus_CLUSTER_REQUEST_STATUS_CLAIMED:
		return StatusClaimed
	case protocol.ClusterRequestStatus_CLUSTER_REQUEST_STATUS_UNCLAIMED:
		return StatusUnclaimed
	case protocol.ClusterRequestStatus_CLUSTER_REQUEST_STATUS_COMPLETED:
		return StatusCompleted
	default:
		return StatusUnknown
	}
}

// PresignatureStatus is where a presignature is in its life.
type PresignatureStatus int

// The presignature statuses.
const (
	PresignatureUnknown PresignatureStatus = iota
	// PresignatureAvailable means no request has reserved it yet.
	PresignatureAvailable
	// PresignatureReserved means a request owns it; it is used at most by
	// that request's online round.
	PresignatureReserved
	// PresignatureUsed means the request that reserved it completed.
	PresignatureUsed
	// PresignatureBurned means the owner of the reserving request was
	// released before completing; it is never used again.
	PresignatureBurned
)

// String returns the status's lowercase name.
func (s PresignatureStatus) String() string {
	switch s {
	case PresignatureAvailable:
		return "available"
	case PresignatureReserved:
		return "reserved"
	case PresignatureUsed:
		return "used"
	case PresignatureBurned:
		return "burned"
	default:
		return "unknown"
	}
}

func presignatureStatusFromProto(s protocol.ClusterPresignatureStatus) PresignatureStatus {
	switch s {
	case protocol.ClusterPresignatureStatus_CLUSTER_PRESIGNATURE_STATUS_AVAILABLE:
		return PresignatureAvailable
	case protocol.ClusterPresignatureStatus_CLUSTER_PRESIGNATURE_STATUS_RESERVED:
		return PresignatureReserved
	case protocol.ClusterPresignatureStatus_CLUSTER_PRESIGNATURE_STATUS_USED:
		return PresignatureUsed
	case protocol.ClusterPresignatureStatus_CLUSTER_PRESIGNATURE_STATUS_BURNED:
		return PresignatureBurned
	default:
		return PresignatureUnknown
	}
}

// PresignatureRef names one presignature.
type PresignatureRef struct {
	KeyID string
	ID    string
}

// RequestInfo is a copy of the FSM's record of one request.
type RequestInfo struct {
	ID        string
	APIUserID string
	Status    RequestStatus
	// Owner is the owning node while Status is StatusClaimed.
	Owner string
	// LastOwner is the node that owned the request most recently.
	LastOwner string
	// Attempt counts the claims that won the request.
	Attempt   int
	ClaimedAt time.Time
	// Reserved lists the presignatures of the current attempt, in order.
	Reserved []PresignatureRef
	// Burned counts presignatures burned by releases of this request.
	Burned      int
	Outcome     Outcome
	Reason      string
	CompletedAt time.Time
	// Decision is the callback handler's last recorded decision about the
	// request, nil when none was recorded.
	Decision *Decision
}

// PresignatureInfo is a copy of the FSM's record of one presignature.
type PresignatureInfo struct {
	KeyID string
	ID    string
	// Seq orders the key's presignatures by when they were added.
	Seq uint64
	// Origin is the node that added the presignature and OriginSeq its
	// number there; PresignatureRecordID binds both into the sealed share.
	Origin    string
	OriginSeq uint64
	Status    PresignatureStatus
	RequestID string
	// Sealed is the presignature share sealed under the keyring; it is empty
	// once the presignature is used or burned. The caller owns the slice.
	Sealed []byte
}

// Record is a copy of an API user or key record. The caller owns the slices.
type Record struct {
	ID      string
	OwnerID string
	// Public is non-secret metadata.
	Public []byte
	// Sealed is ciphertext under the keyring.
	Sealed  []byte
	AddedAt time.Time
	// Epoch is the epoch of the MPC key share a key record holds
	// (mpc.KeyShare.Epoch, public); empty when not recorded.
	Epoch []byte
	// RefreshedAt is when a refresh last replaced the share; zero if never.
	RefreshedAt time.Time
}

func unixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
