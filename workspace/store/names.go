package store

import (
	"fmt"
	"strings"

	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace/request"
)

// RoleName returns a role as the command line spells it: signer, approver
// or both.
func RoleName(r protocol.WsRole) string {
	return strings.ToLower(strings.TrimPrefix(r.String(), "WS_ROLE_"))
}

// ParseRole parses signer, approver or both.
func ParseRole(s string) (protocol.WsRole, error) {
	v, ok := protocol.WsRole_value["WS_ROLE_"+strings.ToUpper(s)]
	if !ok || v == 0 {
		return 0, fmt.Errorf("%w: role %q is not signer, approver or both", request.ErrInvalid, s)
	}
	return protocol.WsRole(v), nil
}

// StateName returns a user state in lower case: unpaired, keygen, active.
func StateName(s protocol.WsUserState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "WS_USER_STATE_"))
}

// RequestStateName returns a request state in lower case: pending,
// delivered, claimed, signed, approved, rejected, failed, expired or
// ignored.
func RequestStateName(s protocol.WsRequestState) string {
	return strings.ToLower(strings.TrimPrefix(s.String(), "WS_REQUEST_STATE_"))
}

// ParseRequestState parses a request state name, in any case.
func ParseRequestState(s string) (protocol.WsRequestState, error) {
	v, ok := protocol.WsRequestState_value["WS_REQUEST_STATE_"+strings.ToUpper(s)]
	if !ok || v == 0 {
		return 0, fmt.Errorf("%w: request state %q is unknown", request.ErrInvalid, s)
	}
	return protocol.WsRequestState(v), nil
}

// Terminal reports whether a request in state s is finished. IGNORED is
// not: the request waits for the workspace's other approvers.
func Terminal(s protocol.WsRequestState) bool {
	switch s {
	case protocol.WsRequestState_WS_REQUEST_STATE_SIGNED, protocol.WsRequestState_WS_REQUEST_STATE_APPROVED,
		protocol.WsRequestState_WS_REQUEST_STATE_REJECTED, protocol.WsRequestState_WS_REQUEST_STATE_FAILED,
		protocol.WsRequestState_WS_REQUEST_STATE_EXPIRED:
		return true
	}
	return false
}

// IgnoredReason is the reason an IGNORED request shows, followed by the
// callback handler's own reason when it gave one.
const IgnoredReason = "ignored by this co-signer"
