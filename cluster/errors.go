package cluster

import (
	"errors"
	"fmt"

	"github.com/coterie-mpc/coterie/protocol"
)

// Errors returned by the FSM, in a proposal's result, and by Propose.
var (
	// ErrBadCommand is returned when a command cannot be decoded or is missing
	// a field it needs.
	ErrBadCommand = errors.New("cluster: malformed command")
	// ErrBadVersion is returned when a command or snapshot has a version this
	// build does not know.
	ErrBadVersion = errors.New("cluster: unknown command version")
	// ErrClaimed is returned when a request is already owned by another node.
	ErrClaimed = errors.New("cluster: request already claimed")
	// ErrNotOwner is returned when a node reserves for, or completes, a
	// request it does not own (for example after it was released).
	ErrNotOwner = errors.New("cluster: node does not own the request")
	// ErrUnknownRequest is returned when a request was never claimed, or was
	// completed so long ago that it is no longer retained.
	ErrUnknownRequest = errors.New("cluster: unknown request")
	// ErrCompleted is returned when a request already has its outcome.
	ErrCompleted = errors.New("cluster: request already completed")
	// ErrPresignatureUsed is returned when a presignature is already reserved
	// or was used by a completed request.
	ErrPresignatureUsed = errors.New("cluster: presignature already reserved or used")
	// ErrPresignatureBurned is returned when a presignature was reserved by a
	// request whose owner was released; it can never be used.
	ErrPresignatureBurned = errors.New("cluster: presignature burned")
	// ErrUnknownPresignature is returned when a presignature is not in the
	// pool of the key.
	ErrUnknownPresignature = errors.New("cluster: unknown presignature")
	// ErrPresignatureExists is returned when an added presignature id is
	// already in the pool of its key.
	ErrPresignatureExists = errors.New("cluster: presignature already added")
	// ErrPresignatureReplayed is returned when an added presignature's
	// origin sequence number is not above its node's high-water mark for
	// the key: the Add was applied before (a replay), or the node's numbers
	// went backwards. Nothing is added.
	ErrPresignatureReplayed = errors.New("cluster: presignature sequence not above the node's high-water mark")
	// ErrPoolEmpty is returned when a Reserve asks the FSM to pick a
	// presignature and the key's pool has none available.
	ErrPoolEmpty = errors.New("cluster: no presignature available")
	// ErrNotInitialized is returned when a command needs the member table
	// and the cluster has none yet (no Init committed).
	ErrNotInitialized = errors.New("cluster: member table not initialized")
	// ErrBadToken is returned when a join token is unknown, expired, used
	// by another node, or cannot be issued.
	ErrBadToken = errors.New("cluster: join token refused")
	// ErrMember is returned when the member table refuses a change: a
	// proposer that is not a member, an id, key or address that belongs to
	// another member, the last member's removal, a second Init.
	ErrMember = errors.New("cluster: member table refuses the change")
	// ErrKeyring is returned when the FSM refuses a keyring rotation,
	// adoption or reseal: a version that is not newer (a replayed or stale
	// rotation), a member without a wrapped copy, a copy for a non-member or
	// wrapped to another identity key, an adoption of a version never
	// rotated in.
	ErrKeyring = errors.New("cluster: keyring change refused")
	// ErrRecordExists is returned when an API user or key record id is
	// already recorded.
	ErrRecordExists = errors.New("cluster: record already exists")
	// ErrNotLeader is returned by operations that only the leader can run
	// when no leader could be reached.
	ErrNotLeader = errors.New("cluster: no leader")
	// ErrUncertain is returned when a proposal may or may not have committed
	// (leadership was lost mid-commit, or the leader stopped answering after
	// receiving it). The caller must read the state to learn the outcome and
	// must not blindly propose the same command again.
	ErrUncertain = errors.New("cluster: proposal outcome unknown")
	// ErrTooLarge is returned when an encoded command or forwarded message is
	// larger than Config.MaxCommandBytes.
	ErrTooLarge = errors.New("cluster: message too large")
	// ErrTimeout is returned when a proposal could not even be queued before
	// its deadline; it did not commit.
	ErrTimeout = errors.New("cluster: proposal timed out")
	// ErrClosed is returned after Close.
	ErrClosed = errors.New("cluster: closed")
	// ErrInternal is returned for a failure on the leader that has no more
	// specific sentinel.
	ErrInternal = errors.New("cluster: internal error")
	// ErrForbidden is returned when a peer is not allowed what it asked:
	// a forwarded command in another node's name, a forwarded request from
	// a peer that is not an authenticated member, a stream refused because
	// this node's key is not a member there, or a server whose identity key
	// is not the member (or the join token's pin) the dialer expects.
	ErrForbidden = errors.New("cluster: peer not allowed")
	// ErrJoinRefused is returned by DialJoin when the member refused the
	// join (its text follows) or serves no joins.
	ErrJoinRefused = errors.New("cluster: join refused")
	// ErrUnknownUser is returned when a command names an API user the
	// cluster has no record of.
	ErrUnknownUser = errors.New("cluster: unknown API user")
	// ErrNoUserCallback is returned when a command clears an API user's
	// own callback handler and the user has none.
	ErrNoUserCallback = errors.New("cluster: the API user has no callback handler of its own")
	// ErrStaleKey is returned when a command was made with a key share
	// that a refresh has replaced since: presignatures made with the old
	// share, or a second refresh started from it.
	ErrStaleKey = errors.New("cluster: the key share was refreshed since")
	// ErrUnknownKey is returned when a command names a key record the
	// cluster does not hold.
	ErrUnknownKey = errors.New("cluster: unknown key record")
	// ErrAudit is returned when an audit truncation names an entry the
	// log no longer retains, or with another hash (a stale or replayed
	// truncation); nothing is dropped.
	ErrAudit = errors.New("cluster: audit truncation refused")
)

// codes maps each sentinel to the code that carries it across the
// forwarding path.
var codes = []struct {
	err  error
	code protocol.ClusterErrorCode
}{
	{ErrInternal, protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_INTERNAL},
	{ErrNotLeader, protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_NOT_LEADER},
	{ErrBadCommand, protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_BAD_COMMAND},
	{ErrBadVersion, protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_BAD_VERSION},
	{ErrClaimed, protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_CLAIMED},
	{ErrNotOwner, protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_NOT_OWNER},
	{ErrUnknownRequest, protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_UNKNOWN_REQUEST},
	{ErrCompleted, protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_COMPLETED},
	{ErrPresignatureUsed, protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_PRESIGNATURE_USED},
	{ErrPresignatureBurned, protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_PRESIGNATURE_BURNED},
	{ErrUnknownPresignature, protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_UNKNOWN_PRESIGNATURE},
	{ErrPresignatureExists, protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_PRESIGNATURE_EXISTS},
	{ErrPresignatureReplayed, protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_REPLAYED},
	{ErrPoolEmpty, protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_POOL_EMPTY},
	{ErrNotInitialized, protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_NOT_INITIALIZED},
	{ErrBadToken, protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_BAD_TOKEN},
	{ErrMember, protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_MEMBER},
	{ErrKeyring, protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_KEYRING},
	{ErrRecordExists, protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_RECORD_EXISTS},
	{ErrUncertain, protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_UNCERTAIN},
	{ErrTooLarge, protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_TOO_LARGE},
	{ErrTimeout, protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_TIMEOUT},
	{ErrClosed, protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_CLOSED},
	{ErrForbidden, protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_FORBIDDEN},
	{ErrUnknownUser, protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_UNKNOWN_USER},
	{ErrNoUserCallback, protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_NO_USER_CALLBACK},
	{ErrStaleKey, protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_STALE_KEY},
	{ErrUnknownKey, protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_UNKNOWN_KEY},
	{ErrAudit, protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_AUDIT},
}

// errorCode returns the wire code of err; errors with no sentinel map to
// INTERNAL.
func errorCode(err error) protocol.ClusterErrorCode {
	if err == nil {
		return protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_NONE
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_INTERNAL
}

// remoteError is an error that came back from the leader. It matches its
// sentinel with errors.Is and keeps the leader's text.
type remoteError struct {
	sentinel error
	msg      string
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.sentinel }

// codeError rebuilds the error a leader sent. An unknown code becomes
// ErrInternal so that a newer leader cannot make an older follower panic.
func codeError(code protocol.ClusterErrorCode, msg string) error {
	if code == protocol.ClusterErrorCode_CLUSTER_ERROR_CODE_NONE {
		return nil
	}
	sentinel := ErrInternal
	for _, c := range codes {
		if c.code == code {
			sentinel = c.err
			break
		}
	}
	if msg == "" {
		msg = sentinel.Error()
	}
	return &remoteError{sentinel: sentinel, msg: msg}
}

// errorf wraps a sentinel with detail. Details name ids only, never secrets.
func errorf(sentinel error, format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)
}
