package callback

import (
	"fmt"
	"strings"
)

// Action is a handler's answer to one request.
type Action uint8

// The four actions of protocol v2. The zero Action is invalid.
const (
	// ActionApprove lets the co-signer sign or approve the request.
	ActionApprove Action = iota + 1
	// ActionReject is final: the request is rejected with the handler's
	// reason.
	ActionReject
	// ActionRetry asks the co-signer to ask again later.
	ActionRetry
	// ActionIgnore, for config changes only, tells the co-signer neither
	// to approve nor to reject, leaving the decision to other approvers.
	ActionIgnore
)

var actionNames = [...]string{
	ActionApprove: "APPROVE",
	ActionReject:  "REJECT",
	ActionRetry:   "RETRY",
	ActionIgnore:  "IGNORE",
}

// String returns the protocol name of the action, such as "APPROVE".
func (a Action) String() string {
	if a >= ActionApprove && a <= ActionIgnore {
		return actionNames[a]
	}
	return fmt.Sprintf("Action(%d)", uint8(a))
}

// ParseAction parses a protocol name. It is case-sensitive and wraps
// ErrBadAction.
func ParseAction(s string) (Action, error) {
	for a := ActionApprove; a <= ActionIgnore; a++ {
		if actionNames[a] == s {
			return a, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown action %q", ErrBadAction, truncate(s, 32))
}

// parseActionFold parses an action name in any letter case, for policy
// files.
func parseActionFold(s string) (Action, error) {
	return ParseAction(strings.ToUpper(strings.TrimSpace(s)))
}

// AllowedFor reports whether a handler may answer a with a request of kind
// k: IGNORE is allowed for config changes only.
func (a Action) AllowedFor(k Kind) bool {
	switch a {
	case ActionApprove, ActionReject, ActionRetry:
		return k == KindTransaction || k == KindConfigChange
	case ActionIgnore:
		return k == KindConfigChange
	default:
		return false
	}
}

// Final reports whether a ends the conversation about a request: every
// action but RETRY.
func (a Action) Final() bool {
	return a == ActionApprove || a == ActionReject || a == ActionIgnore
}

// maxReasonLen bounds a rejectionReason kept from a handler, in runes.
const maxReasonLen = 512

// Decision is a handler's answer to one request, as verified by
// DecodeResponse or made by an auto-approving Client.
type Decision struct {
	// Action is what the handler answered.
	Action Action
	// RequestID is the requestId the answer is about; DecodeResponse has
	// checked that it equals the request's.
	RequestID string
	// RejectionReason is the handler's reason, for REJECT (and sometimes
	// RETRY). Control characters are replaced and it is cut to 512 runes.
	RejectionReason string
	// RequestTokenHash is the answer's requestTokenHash claim, which
	// DecodeResponse has checked is the hash of the request token it
	// answers (see RequestTokenHash); empty when the handler sends none.
	// EncodeResponse encodes it when set.
	RequestTokenHash string
	// Auto is true when no handler is configured and the Client approved
	// by itself, as the seed product does.
	Auto bool
	// KeyID names the key that verified the answer, as the audit log
	// records it (audit.KeyID of the handler key), or audit.AutoKeyID for
	// an automatic APPROVE. The Client sets it; it is not encoded.
	KeyID string
}

// Approved reports whether the decision lets the co-signer sign or
// approve.
func (d Decision) Approved() bool { return d.Action == ActionApprove }

// String describes the decision for logs and errors.
func (d Decision) String() string {
	switch {
	case d.Auto:
		return fmt.Sprintf("%s (automatic: no callback handler configured)", d.Action)
	case d.RejectionReason != "":
		return fmt.Sprintf("%s (%s)", d.Action, d.RejectionReason)
	default:
		return d.Action.String()
	}
}
