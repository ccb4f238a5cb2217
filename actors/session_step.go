package actors

import "fmt"

// stepKind is what a Session is doing, in the order a request passes the
// steps (DESIGN's path of one transaction).
type stepKind int

const (
	// stepLoad reads the request from the workspace and the FSM.
	stepLoad stepKind = iota + 1
	// stepCallback waits for the callback handler's answer.
	stepCallback
	// stepReserve reserves a presignature for a digest through raft.
	stepReserve
	// stepPresign presigns on the spot for a digest (the slow path).
	stepPresign
	// stepSign runs a digest's online round.
	stepSign
	// stepSubmitSignature submits a digest's signature after the relay
	// broke.
	stepSubmitSignature
	// stepApprove signs and submits a config change's approval.
	stepApprove
	// stepReject, stepIgnore and stepFail report the outcome to the
	// workspace.
	stepReject
	stepIgnore
	stepFail
	// stepComplete records the outcome with Complete.
	stepComplete
	// stepDone: the Session is finished.
	stepDone
)

// String returns the step's name.
func (k stepKind) String() string {
	switch k {
	case stepLoad:
		return "load"
	case stepCallback:
		return "callback"
	case stepReserve:
		return "reserve"
	case stepPresign:
		return "presign"
	case stepSign:
		return "sign"
	case stepSubmitSignature:
		return "submit signature"
	case stepApprove:
		return "approve"
	case stepReject:
		return "reject"
	case stepIgnore:
		return "ignore"
	case stepFail:
		return "fail"
	case stepComplete:
		return "complete"
	case stepDone:
		return "done"
	default:
		return fmt.Sprintf("step-%d", int(k))
	}
}

// perDigest says whether the step works on one digest of a transaction.
func (k stepKind) perDigest() bool {
	switch k {
	case stepReserve, stepPresign, stepSign, stepSubmitSignature:
		return true
	default:
		return false
	}
}

// step is a Session's step and, for the per-digest steps, the digest.
type step struct {
	kind   stepKind
	digest uint32
}

// String returns the step as /v1/status shows it: "reserve digest 0".
func (s step) String() string {
	if s.kind.perDigest() {
		return fmt.Sprintf("%s digest %d", s.kind, s.digest)
	}
	return s.kind.String()
}
