package actors

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/coterie-mpc/coterie/callback"
	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/workspace/client"
	"google.golang.org/grpc"
)

// Workspace is what the actors need from one API user's connection to the
// workspace. *client.Client implements it (the RPC methods come from the
// embedded protocol.WsCosignerClient, Relay from the client itself).
//
// Every method may be called concurrently from many goroutines and blocks
// until the workspace answers or ctx ends; the actors call them only off
// their mailboxes. Returned messages belong to the caller. Errors are gRPC
// status errors (or, for Relay, client.ErrRelay / client.ErrSessionMismatch
// and the MPC session's own errors); none of them holds secret material.
type Workspace interface {
	// Poll streams the user's open requests with seq > cursor, then every
	// new one; at least once. The stream ends with an error when the
	// connection breaks; the Poller reconnects from its last cursor.
	Poll(ctx context.Context, in *protocol.WsPollRequest, opts ...grpc.CallOption) (grpc.ServerStreamingClient[protocol.WsPollEvent], error)
	// GetRequest returns the workspace's current view of one request.
	GetRequest(ctx context.Context, in *protocol.WsGetRequestRequest, opts ...grpc.CallOption) (*protocol.WsRequest, error)
	// ClaimRequest tells the workspace that the cluster owns a request
	// (informational; the cluster's Claim decides ownership).
	ClaimRequest(ctx context.Context, in *protocol.WsClaimRequest, opts ...grpc.CallOption) (*protocol.WsRequest, error)
	// SubmitSignature records the signature of one digest; a duplicate is
	// answered idempotently.
	SubmitSignature(ctx context.Context, in *protocol.WsSubmitSignatureRequest, opts ...grpc.CallOption) (*protocol.WsSubmitSignatureResponse, error)
	// SubmitApproval records the approval signature of a config change.
	SubmitApproval(ctx context.Context, in *protocol.WsSubmitApprovalRequest, opts ...grpc.CallOption) (*protocol.WsSubmitApprovalResponse, error)
	// RejectRequest records the callback handler's rejection.
	RejectRequest(ctx context.Context, in *protocol.WsRejectRequest, opts ...grpc.CallOption) (*protocol.WsRequest, error)
	// IgnoreRequest records that the callback handler answered IGNORE to
	// a config change: the decision is left to the workspace's other
	// approvers.
	IgnoreRequest(ctx context.Context, in *protocol.WsIgnoreRequest, opts ...grpc.CallOption) (*protocol.WsRequest, error)
	// FailRequest records a failure with its reason.
	FailRequest(ctx context.Context, in *protocol.WsFailRequest, opts ...grpc.CallOption) (*protocol.WsRequest, error)
	// Relay runs one MPC session through the workspace relay; see
	// client.Client.Relay. It runs the machine's Accept on the calling
	// goroutine.
	Relay(ctx context.Context, start *protocol.WsMpcStart, newMachine func() (mpc.Machine, error)) (*protocol.WsMpcResult, error)
}

var _ Workspace = (*client.Client)(nil)

// Cluster is what the actors need from the node's raft cluster.
// *cluster.Cluster implements it.
//
// Every method is safe for concurrent use. The proposing methods block
// until the command commits (and the local FSM applied it) or ctx ends, so
// the actors call them off their mailboxes; they return the cluster's
// sentinel errors (cluster.ErrClaimed, ErrCompleted, ErrNotOwner,
// ErrPoolEmpty, ErrPresignatureUsed, ErrUncertain, ErrNotLeader, ...). ErrUncertain means the command may have committed: the actors then
// read the state instead of proposing it again. The reading methods read the
// local replica and return copies the caller owns.
type Cluster interface {
	// PresignCluster is what each key's cluster.PresignStore uses:
	// NodeID, AddPresignatures, Reserve, ReserveNext and Presignature.
	cluster.PresignCluster
	// IsLeader reports whether this node leads now. Only the leader refills
	// presignature pools, so that one node refills a key at a time.
	IsLeader() bool
	// Claim proposes that this node own request (I2).
	Claim(ctx context.Context, request, apiUser string) error
	// Confirm commits proof that this node still owns request (I6), before
	// it approves a config change.
	Confirm(ctx context.Context, request string) error
	// Decide records the callback handler's decision about request, which
	// this node must own, in the audit log; like Confirm it proves the
	// ownership by committing. A transaction's APPROVE rides on its first
	// Reserve instead (cluster.ContextWithDecision).
	Decide(ctx context.Context, request string, d cluster.Decision) error
	// Members returns the cluster's member table (empty before it has one).
	Members() []cluster.Member
	// Complete records the terminal outcome of a request this node owns.
	Complete(ctx context.Context, request string, outcome cluster.Outcome, reason string) error
	// HandBack returns this node's unfinished requests of apiUser to
	// unclaimed, burning their reserved presignatures: the node lost its
	// way to the user's workspace.
	HandBack(ctx context.Context, apiUser string) error
	// Subscribe returns the events the local FSM applies from now on, and
	// a function that ends the subscription. Events are hints: the
	// channel drops events when full.
	Subscribe(buffer int) (<-chan cluster.Event, func())

	// Request returns the FSM's record of a request.
	Request(id string) (cluster.RequestInfo, bool)
	// Unclaimed returns the requests a Release returned to unclaimed.
	Unclaimed() []cluster.RequestInfo
	// OwnedBy returns the unfinished requests node owns.
	OwnedBy(node string) []string
	// PoolDepth returns how many presignatures of key are available.
	PoolDepth(key string) int
	// KeyRecord returns one key record (sealed MPC share or approval key).
	KeyRecord(id string) (cluster.Record, bool)
}

var _ Cluster = (*cluster.Cluster)(nil)

// Cipher opens and seals the cluster's records under the keyring, binding
// each ciphertext to its record id. *keyring.Keyring implements it.
// Implementations are safe for concurrent use and never put plaintext in
// their errors.
type Cipher = cluster.Cipher

// Decider asks one API user's callback handler about a request.
// *callback.Client implements it.
//
// Ask makes exactly one attempt and returns within the client's own timeout
// or when ctx ends; it is safe for concurrent use. A RETRY answer comes back
// as a Decision with a nil error. Every failure comes back as a zero
// Decision and an error wrapping a callback sentinel; callback.Retryable
// tells whether asking again may help. A Decider never returns an approving
// Decision with an error (I5).
type Decider interface {
	Ask(ctx context.Context, req callback.Request) (callback.Decision, error)
}

var _ Decider = (*callback.Client)(nil)

// Stage is a point in a Session's life at which the fault hook runs.
type Stage int

// The stages at which Config.FaultHook is called, in the order a request
// passes them.
const (
	// StageLoaded: the Session read the request from the FSM and the
	// workspace and is about to act on it.
	StageLoaded Stage = iota + 1
	// StageApproved: the callback handler approved.
	StageApproved
	// StageReserved: a Reserve committed, the online round has not started.
	StageReserved
	// StageSigned: the workspace recorded the signature of a digest.
	StageSigned
	// StageSubmitted: the approval or rejection is recorded in the
	// workspace, Complete has not been proposed.
	StageSubmitted
)

// String returns the stage's lowercase name.
func (s Stage) String() string {
	switch s {
	case StageLoaded:
		return "loaded"
	case StageApproved:
		return "approved"
	case StageReserved:
		return "reserved"
	case StageSigned:
		return "signed"
	case StageSubmitted:
		return "submitted"
	default:
		return fmt.Sprintf("stage-%d", int(s))
	}
}

// User is one paired API user that this node serves. The node builds it
// from the cluster's API-user and key records and its connection to the
// workspace.
type User struct {
	// ID is the API user's id, as in the workspace's requests.
	ID string
	// Key names the user on this node and in the FSM's claims. It must be
	// unique among the node's users: users of several workspaces may share
	// an ID. Empty means ID.
	Key string
	// Workspace is the user's connection to the workspace.
	Workspace Workspace
	// Decider asks the user's callback handler (a callback.Client, which
	// approves by itself when no handler is configured).
	Decider Decider
	// Retry is the callback retry budget (the callback.Config.Retry the
	// Decider was built with). The zero value means callback.DefaultBackoff().
	Retry callback.Backoff
	// SigningKey is the public side of the user's MPC key, for signer
	// roles; nil for an approver only.
	SigningKey *protocol.WsSigningKey
	// ShareRecordID is the id of the key record that holds the node's MPC
	// key share: Cipher.Decrypt(ShareRecordID, record.Sealed) gives
	// mpc.KeyShare.MarshalBinary's bytes. It is also the id of the key's
	// presignature pool in the FSM. Required with SigningKey.
	ShareRecordID string
	// ApprovalRecordID is the id of the key record that holds the user's
	// Ed25519 approval key: Cipher.Decrypt(ApprovalRecordID, record.Sealed)
	// gives the 32-byte seed (or the 64-byte private key). Required for
	// approver roles; empty for a signer only.
	ApprovalRecordID string
}

// key returns the user's name on this node: Key, or ID.
func (u User) key() string {
	if u.Key != "" {
		return u.Key
	}
	return u.ID
}

// Validate reports every problem with u at once.
func (u User) Validate() error {
	var errs []error
	if u.ID == "" {
		errs = append(errs, errors.New("user: ID is required"))
	}
	if u.Workspace == nil {
		errs = append(errs, errors.New("user: Workspace is required"))
	}
	if u.Decider == nil {
		errs = append(errs, errors.New("user: Decider is required"))
	}
	if u.SigningKey != nil && u.ShareRecordID == "" {
		errs = append(errs, errors.New("user: ShareRecordID is required with SigningKey"))
	}
	if u.SigningKey == nil && u.ShareRecordID != "" {
		errs = append(errs, errors.New("user: SigningKey is required with ShareRecordID"))
	}
	if u.SigningKey == nil && u.ApprovalRecordID == "" {
		errs = append(errs, errors.New("user: neither a signing key nor an approval key"))
	}
	if u.Retry != (callback.Backoff{}) {
		if err := u.Retry.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("user: Retry: %w", err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return nil
}

// approvalKey turns a decrypted approval record into a private key.
func approvalKey(plain []byte) (ed25519.PrivateKey, error) {
	switch len(plain) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(plain), nil
	case ed25519.PrivateKeySize:
		return ed25519.PrivateKey(append([]byte(nil), plain...)), nil
	default:
		return nil, fmt.Errorf("%w: approval key record holds %d bytes", ErrKeyRecord, len(plain))
	}
}
