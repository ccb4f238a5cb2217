package node

import (
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace/client"
	"github.com/coterie-mpc/coterie/workspace/request"
	"github.com/coterie-mpc/coterie/workspace/store"
	"github.com/coterie-mpc/coterie/workspace/token"
)

// pairTimeout bounds one pairing: the workspace round trips and the MPC key
// generation (about 9 s of CPU for 3-of-3 on two cores).
const pairTimeout = 5 * time.Minute

// PairRequest is what `coterie node pair` sends to POST /v1/pair.
type PairRequest struct {
	// Token is the pairing token, as the workspace issued it.
	Token string `json:"token"`
	// Role, when set (signer, approver or both), is the role the operator
	// expects the token to be for; a token for another role is refused
	// with ErrRoleMismatch before anything is sent to the workspace.
	Role string `json:"role,omitempty"`
}

// Pair pairs the cluster with the API user that a pairing token names:
// it redeems the token with the workspace (registering a fresh Ed25519
// approval key and the cluster's callback key), runs the MPC key
// generation with the cloud co-signers for signer roles, seals the share,
// the approval key and the workspace credentials under the keyring into the
// cluster through raft, and starts serving the user.
//
// Errors: ErrNotReady, ErrBadToken, ErrRoleMismatch, ErrAlreadyPaired,
// and the workspace's or the cluster's. One pairing runs at a time.
func (n *Node) Pair(ctx context.Context, req PairRequest) (UserInfo, error) {
	if !n.Ready() {
		return UserInfo{}, ErrNotReady
	}
	n.pairMu.Lock()
	defer n.pairMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, pairTimeout)
	defer cancel()

	tok, err := token.Parse(req.Token)
	if err != nil {
		return UserInfo{}, fmt.Errorf("%w: %w", ErrBadToken, err)
	}
	if err := tok.CheckExpiry(n.clock.Now()); err != nil {
		return UserInfo{}, fmt.Errorf("%w: %w", ErrBadToken, err)
	}
	f := tok.Fields
	role := f.GetRole()
	if role == protocol.WsRole_WS_ROLE_UNSPECIFIED || protocol.WsRole_name[int32(role)] == "" {
		return UserInfo{}, fmt.Errorf("%w: the token names no co-signer role (%d)", ErrRoleMismatch, role)
	}
	if req.Role != "" {
		want, err := store.ParseRole(req.Role)
		if err != nil {
			return UserInfo{}, fmt.Errorf("%w: %w", ErrRoleMismatch, err)
		}
		if want != role {
			return UserInfo{}, fmt.Errorf("%w: the token is for an API user with role %s, not %s",
				ErrRoleMismatch, store.RoleName(role), store.RoleName(want))
		}
	}
	if !request.ValidID(f.GetWorkspaceId()) || !request.ValidID(f.GetUserId()) {
		return UserInfo{}, fmt.Errorf("%w: the token names a malformed workspace or user id", ErrBadToken)
	}
	if n.paired(f.GetWorkspaceId(), f.GetUserId()) {
		return UserInfo{}, fmt.Errorf("%w: %s of workspace %s", ErrAlreadyPaired, f.GetUserId(), f.GetWorkspaceId())
	}
	n.mu.Lock()
	cbKey := n.callbackKey
	n.mu.Unlock()

	approvalPub, approvalKey, err := ed25519.GenerateKey(nil)
	if err != nil {
		return UserInfo{}, fmt.Errorf("node: generate approval key: %w", err)
	}
	defer clear(approvalKey)
	log := n.log.With("user", f.GetUserId(), "workspace", f.GetWorkspaceId())
	log.Info("pairing", "role", store.RoleName(role), "address", f.GetAddress())
	creds, resp, err := client.Pair(ctx, client.PairConfig{
		Token: req.Token, ApprovalKey: approvalPub, CallbackKey: &cbKey.PublicKey, Clock: n.clock,
	}, n.cfg.Workspace.dialer(n.cfg.Network.net())...)
	if err != nil {
		return UserInfo{}, fmt.Errorf("node: pair with the workspace: %w", err)
	}
	u := &User{
		Info: UserInfo{
			ID: creds.UserID, WorkspaceID: creds.WorkspaceID, Name: resp.GetUser().GetName(),
			Role: store.RoleName(role), WorkspaceAddress: creds.Address, PairedAt: n.clock.Now().UTC(),
		},
		Credentials: creds,
	}
	sec := userSecrets{approvalKey: approvalKey}
	if store.IsSigner(role) {
		c, err := client.Dial(creds, n.cfg.Workspace.dialer(n.cfg.Network.net())...)
		if err != nil {
			return UserInfo{}, err
		}
		start := time.Now()
		share, key, err := c.Keygen(ctx, n.engine, resp)
		c.Close()
		if err != nil {
			return UserInfo{}, fmt.Errorf("node: key generation: %w", err)
		}
		log.Info("key generated", "public_key", hex.EncodeToString(key.GetPublicKey()),
			"parties", len(key.GetSignerPartyIds()), "seconds", time.Since(start).Seconds())
		sec.share = share
		u.SigningKey = key
		u.Info.PublicKey = hex.EncodeToString(key.GetPublicKey())
		u.Info.ChainCode = hex.EncodeToString(key.GetChainCode())
		u.Info.NodePartyID = key.GetNodePartyId()
		u.Info.CloudPartyIDs = key.GetCloudPartyIds()
		u.Info.SignerPartyIDs = key.GetSignerPartyIds()
		u.Info.Threshold = key.GetThreshold()
	}
	keys, rec, err := userRecords(n.kr, u, sec)
	if err != nil {
		return UserInfo{}, err
	}
	for _, k := range keys {
		if err := n.commitRecord(ctx, k, n.cluster.AddKeyRecord, n.cluster.KeyRecord); err != nil {
			return UserInfo{}, err
		}
	}
	if err := n.commitRecord(ctx, rec, n.cluster.AddAPIUser, n.cluster.APIUser); err != nil {
		return UserInfo{}, err
	}
	if err := n.addUser(u); err != nil {
		return UserInfo{}, err
	}
	log.Info("paired", "role", u.Info.Role)
	return u.Info, nil
}

// paired reports whether the cluster holds user userID of workspace
// workspaceID: under its record id, or under the user id alone when it was
// paired before workspaces were told apart.
func (n *Node) paired(workspaceID, userID string) bool {
	if _, ok := n.cluster.APIUser(userRecordID(workspaceID, userID)); ok {
		return true
	}
	r, ok := n.cluster.APIUser(userID)
	if !ok {
		return false
	}
	info, err := decodeUserInfo(r)
	return err == nil && info.WorkspaceID == workspaceID
}

// commitRecord proposes a record; when the outcome is uncertain it reads
// the state to learn whether this very record committed.
func (n *Node) commitRecord(ctx context.Context, r cluster.Record,
	add func(context.Context, cluster.Record) error, get func(string) (cluster.Record, bool)) error {
	err := add(ctx, r)
	if errors.Is(err, cluster.ErrUncertain) {
		if got, ok := get(r.ID); ok && string(got.Sealed) == string(r.Sealed) {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("node: record %s: %w", r.ID, err)
	}
	return nil
}
