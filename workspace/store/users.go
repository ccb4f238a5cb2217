package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace/request"
	bolt "go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"
)

// ---------------------------------------------------------------- workspaces and vault accounts

// EnsureWorkspace creates workspace id with the named vault accounts (IDs 0,
// 1, ...) unless it exists, and returns it.
func (s *Store) EnsureWorkspace(id, name string, vaults []string) (*protocol.WsWorkspace, error) {
	if !request.ValidID(id) {
		return nil, fmt.Errorf("%w: workspace ID %q", request.ErrInvalid, id)
	}
	var out *protocol.WsWorkspace
	err := s.update(func(t *txn) error {
		b := t.tx.Bucket(bWorkspaces)
		w, ok, err := get(b, []byte(id), &protocol.WsWorkspace{})
		if err != nil || ok {
			out = w
			return err
		}
		w = &protocol.WsWorkspace{Id: id, Name: name, CreatedAt: t.nanos()}
		if err := put(b, []byte(id), w); err != nil {
			return err
		}
		for _, v := range vaults {
			if _, err := t.createVault(id, v); err != nil {
				return err
			}
		}
		out = w
		return t.audit(ActorSystem, "workspace.create", "", "", id)
	})
	return out, err
}

func (t *txn) createVault(workspaceID, name string) (*protocol.WsVaultAccount, error) {
	if t.tx.Bucket(bWorkspaces).Get([]byte(workspaceID)) == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownWorkspace, workspaceID)
	}
	b := t.tx.Bucket(bVaults)
	// Vault IDs count from 0 within a workspace.
	var n uint64
	prefix := append([]byte(workspaceID), 0)
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		n++
	}
	v := &protocol.WsVaultAccount{WorkspaceId: workspaceID, Id: strconv.FormatUint(n, 10), Name: name, CreatedAt: t.nanos()}
	return v, put(b, vaultKey(workspaceID, v.Id), v)
}

func vaultKey(workspaceID, id string) []byte {
	n, _ := strconv.ParseUint(id, 10, 32)
	return append(append([]byte(workspaceID), 0), u64(n)...)
}

// CreateVaultAccount adds a vault account to a workspace.
func (s *Store) CreateVaultAccount(workspaceID, name, actor string) (*protocol.WsVaultAccount, error) {
	var out *protocol.WsVaultAccount
	err := s.update(func(t *txn) error {
		v, err := t.createVault(workspaceID, name)
		if err != nil {
			return err
		}
		out = v
		return t.audit(actor, "vault.create", "", "", workspaceID+"/"+v.Id)
	})
	return out, err
}

// Workspaces returns every workspace.
func (s *Store) Workspaces() ([]*protocol.WsWorkspace, error) {
	var out []*protocol.WsWorkspace
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bWorkspaces).ForEach(func(_, v []byte) error {
			w := &protocol.WsWorkspace{}
			out = append(out, w)
			return unmarshal(v, w)
		})
	})
	return out, err
}

// VaultAccounts returns the vault accounts of a workspace.
func (s *Store) VaultAccounts(workspaceID string) ([]*protocol.WsVaultAccount, error) {
	var out []*protocol.WsVaultAccount
	err := s.view(func(tx *bolt.Tx) error {
		if tx.Bucket(bWorkspaces).Get([]byte(workspaceID)) == nil {
			return fmt.Errorf("%w: %q", ErrUnknownWorkspace, workspaceID)
		}
		prefix := append([]byte(workspaceID), 0)
		c := tx.Bucket(bVaults).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			a := &protocol.WsVaultAccount{}
			if err := unmarshal(v, a); err != nil {
				return err
			}
			out = append(out, a)
		}
		return nil
	})
	return out, err
}

// ---------------------------------------------------------------- users and tokens

// Grant is a pairing token's stored part: its ID (the hash of its secret)
// and its expiry.
type Grant struct {
	TokenID   [32]byte
	ExpiresAt time.Time
}

// CreateUser adds an UNPAIRED API user to a workspace with a pairing token.
func (s *Store) CreateUser(workspaceID, name string, role protocol.WsRole, g Grant, actor string) (*protocol.WsUser, error) {
	if role < protocol.WsRole_WS_ROLE_SIGNER || role > protocol.WsRole_WS_ROLE_BOTH {
		return nil, fmt.Errorf("%w: role %d", request.ErrInvalid, role)
	}
	var out *protocol.WsUser
	err := s.update(func(t *txn) error {
		if t.tx.Bucket(bWorkspaces).Get([]byte(workspaceID)) == nil {
			return fmt.Errorf("%w: %q", ErrUnknownWorkspace, workspaceID)
		}
		meta := t.tx.Bucket(bMeta)
		var n uint64
		if v := meta.Get(mUserSeq); len(v) == 8 {
			n = binary.BigEndian.Uint64(v)
		}
		n++
		if err := meta.Put(mUserSeq, u64(n)); err != nil {
			return err
		}
		u := &protocol.WsUser{
			Id: fmt.Sprintf("u-%04d", n), WorkspaceId: workspaceID, Name: name, Role: role,
			State: protocol.WsUserState_WS_USER_STATE_UNPAIRED, CreatedAt: t.nanos(),
		}
		if err := put(t.tx.Bucket(bUsers), []byte(u.Id), u); err != nil {
			return err
		}
		if err := t.grant(u.Id, g); err != nil {
			return err
		}
		out = u
		return t.audit(actor, "user.create", u.Id, "", fmt.Sprintf("role=%s name=%q", RoleName(role), name))
	})
	return out, err
}

// IssueToken issues a new pairing token for a user that is not ACTIVE (for
// example when the first token expired or keygen never finished), revoking
// the user's older tokens. Redeeming it replaces the client certificate.
func (s *Store) IssueToken(userID string, g Grant, actor string) (*protocol.WsUser, error) {
	var out *protocol.WsUser
	err := s.update(func(t *txn) error {
		u, err := t.user(userID)
		if err != nil {
			return err
		}
		if u.State == protocol.WsUserState_WS_USER_STATE_ACTIVE {
			return fmt.Errorf("%w: user %s is already paired and active", ErrUserState, userID)
		}
		if err := t.grant(userID, g); err != nil {
			return err
		}
		out = u
		return t.audit(actor, "token.issue", userID, "", "")
	})
	return out, err
}

// grant stores a token for user and revokes the user's other unused tokens.
func (t *txn) grant(userID string, g Grant) error {
	b := t.tx.Bucket(bTokens)
	var revoke [][]byte
	err := b.ForEach(func(k, v []byte) error {
		r := &protocol.WsTokenRecord{}
		if err := unmarshal(v, r); err != nil {
			return err
		}
		if r.UserId == userID && r.UsedAt == 0 && r.RevokedAt == 0 {
			revoke = append(revoke, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range revoke {
		r, _, err := get(b, k, &protocol.WsTokenRecord{})
		if err != nil {
			return err
		}
		r.RevokedAt = t.nanos()
		if err := put(b, k, r); err != nil {
			return err
		}
	}
	if b.Get(g.TokenID[:]) != nil {
		return fmt.Errorf("%w: token ID collision", ErrTokenUsed)
	}
	return put(b, g.TokenID[:], &protocol.WsTokenRecord{UserId: userID, IssuedAt: t.nanos(), ExpiresAt: g.ExpiresAt.UnixNano()})
}

// Pairing is what a redeemed token registers.
type Pairing struct {
	TokenID    [32]byte
	UserID     string
	CertSHA256 [32]byte
	// ApprovalKey is the Ed25519 approval public key (approver roles).
	ApprovalKey []byte
	// CallbackKey is the callback JWT public key, PKIX DER.
	CallbackKey []byte
}

// Pair redeems a pairing token: it checks that the token is this user's,
// unused, unrevoked and unexpired, marks it used, and records the client
// certificate and the keys. A signer moves to KEYGEN, an approver to ACTIVE.
func (s *Store) Pair(p Pairing) (*protocol.WsUser, error) {
	var out *protocol.WsUser
	err := s.update(func(t *txn) error {
		b := t.tx.Bucket(bTokens)
		rec, ok, err := get(b, p.TokenID[:], &protocol.WsTokenRecord{})
		if err != nil {
			return err
		}
		switch {
		case !ok || rec.UserId != p.UserID:
			return ErrUnknownToken
		case rec.UsedAt != 0:
			return fmt.Errorf("%w (at %s)", ErrTokenUsed, time.Unix(0, rec.UsedAt).UTC().Format(time.RFC3339))
		case rec.RevokedAt != 0:
			return ErrTokenRevoked
		case t.nanos() >= rec.ExpiresAt:
			return fmt.Errorf("%w (at %s)", ErrTokenExpired, time.Unix(0, rec.ExpiresAt).UTC().Format(time.RFC3339))
		}
		u, err := t.user(p.UserID)
		if err != nil {
			return err
		}
		if u.State == protocol.WsUserState_WS_USER_STATE_ACTIVE {
			return fmt.Errorf("%w: user %s is already paired", ErrUserState, u.Id)
		}
		rec.UsedAt = t.nanos()
		if err := put(b, p.TokenID[:], rec); err != nil {
			return err
		}
		u.PairedAt = t.nanos()
		u.ClientCertSha256 = p.CertSHA256[:]
		u.ApprovalPublicKey = append([]byte(nil), p.ApprovalKey...)
		u.CallbackPublicKey = append([]byte(nil), p.CallbackKey...)
		u.State = protocol.WsUserState_WS_USER_STATE_ACTIVE
		if IsSigner(u.Role) {
			u.State = protocol.WsUserState_WS_USER_STATE_KEYGEN
		}
		if err := put(t.tx.Bucket(bUsers), []byte(u.Id), u); err != nil {
			return err
		}
		out = u
		return t.audit(ActorUser(u.Id), "user.pair", u.Id, "", "state="+u.State.String())
	})
	return out, err
}

// CompleteKeygen records a signer's new MPC key and the cloud co-signers'
// encrypted key shares (party ID -> ciphertext), and makes the user ACTIVE.
func (s *Store) CompleteKeygen(userID string, key *protocol.WsSigningKey, shares map[string][]byte) (*protocol.WsUser, error) {
	key = proto.Clone(key).(*protocol.WsSigningKey)
	var out *protocol.WsUser
	err := s.update(func(t *txn) error {
		u, err := t.user(userID)
		if err != nil {
			return err
		}
		if u.State != protocol.WsUserState_WS_USER_STATE_KEYGEN {
			return fmt.Errorf("%w: user %s is %s, not waiting for key generation", ErrUserState, userID, StateName(u.State))
		}
		key.CreatedAt = t.nanos()
		u.SigningKey = key
		u.State = protocol.WsUserState_WS_USER_STATE_ACTIVE
		if err := t.dropPending(userID); err != nil {
			return err
		}
		if err := t.putShares(userID, shares); err != nil {
			return err
		}
		if err := put(t.tx.Bucket(bUsers), []byte(u.Id), u); err != nil {
			return err
		}
		out = u
		return t.audit(ActorUser(userID), "key.generate", userID, "", fmt.Sprintf("public_key=%x", key.PublicKey))
	})
	return out, err
}

// MaxPendingRefreshes bounds the refreshes of one user that await
// activation. Staging another is refused, unless the oldest was staged more
// than PendingRefreshTTL ago: a staged refresh may be one the node has
// committed, and dropping it would leave the node with shares the cloud
// co-signers no longer hold; the node activates a committed one at its next
// session, within seconds.
const (
	MaxPendingRefreshes = 4
	PendingRefreshTTL   = 7 * 24 * time.Hour
)

// StageRefresh keeps the cloud co-signers' shares from a completed CMP
// refresh, under the shares' epoch, beside the active ones, which go on
// signing: the node has not committed its own new share yet, and until it
// does the old shares must stay usable (a refresh interrupted half way
// changes nothing). The public key and chain code must not change.
// ActivateRefresh switches to them.
func (s *Store) StageRefresh(userID string, key *protocol.WsSigningKey, epoch []byte, shares map[string][]byte) error {
	return s.update(func(t *txn) error {
		u, err := t.user(userID)
		if err != nil {
			return err
		}
		if u.State != protocol.WsUserState_WS_USER_STATE_ACTIVE || u.SigningKey == nil {
			return fmt.Errorf("%w: user %s has no key to refresh", ErrUserState, userID)
		}
		if !bytes.Equal(u.SigningKey.PublicKey, key.GetPublicKey()) || !bytes.Equal(u.SigningKey.ChainCode, key.GetChainCode()) {
			return ErrKeyChanged
		}
		b := t.tx.Bucket(bPending)
		keys, pending, err := pendingOf(b, userID)
		if err != nil {
			return err
		}
		for len(keys) >= MaxPendingRefreshes {
			if t.now.Sub(time.Unix(0, pending[0].GetStagedAt())) < PendingRefreshTTL {
				return fmt.Errorf("%w: user %s has %d refreshes awaiting the node's first session with new shares",
					ErrTooManyRefreshes, userID, len(keys))
			}
			if err := b.Delete(keys[0]); err != nil {
				return err
			}
			keys, pending = keys[1:], pending[1:]
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		k := userKey(userID, u64(seq))
		return put(b, k, &protocol.WsPendingRefresh{Epoch: epoch, Shares: shares, StagedAt: t.nanos()})
	})
}

// ActivateRefresh makes the staged refresh of epoch the user's shares, in
// one transaction: the shares replace the active ones, every unused
// presignature of the user is burned (it belongs to the old shares), and
// every other staged refresh is dropped. ErrUnknownEpoch when none of that
// epoch is staged.
func (s *Store) ActivateRefresh(userID string, epoch []byte) error {
	return s.update(func(t *txn) error {
		_, pending, err := pendingOf(t.tx.Bucket(bPending), userID)
		if err != nil {
			return err
		}
		i := slices.IndexFunc(pending, func(p *protocol.WsPendingRefresh) bool { return bytes.Equal(p.GetEpoch(), epoch) })
		if i < 0 {
			return fmt.Errorf("%w: user %s", ErrUnknownEpoch, userID)
		}
		if err := t.putShares(userID, pending[i].GetShares()); err != nil {
			return err
		}
		if err := t.dropPending(userID); err != nil {
			return err
		}
		burned, err := t.burnPresignatures(userID, "key refreshed")
		if err != nil {
			return err
		}
		return t.audit(ActorUser(userID), "key.refresh", userID, "", fmt.Sprintf("burned_presignatures=%d", burned))
	})
}

// dropPending drops every staged refresh of a user.
func (t *txn) dropPending(userID string) error {
	b := t.tx.Bucket(bPending)
	keys, _, err := pendingOf(b, userID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return nil
}

// pendingOf returns the staged refreshes of a user, oldest first.
func pendingOf(b *bolt.Bucket, userID string) ([][]byte, []*protocol.WsPendingRefresh, error) {
	var keys [][]byte
	var out []*protocol.WsPendingRefresh
	prefix := userKey(userID, nil)
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		p := &protocol.WsPendingRefresh{}
		if err := unmarshal(v, p); err != nil {
			return nil, nil, err
		}
		keys = append(keys, slices.Clone(k))
		out = append(out, p)
	}
	return keys, out, nil
}

func (t *txn) putShares(userID string, shares map[string][]byte) error {
	b := t.tx.Bucket(bCloudKeys)
	for party, ct := range shares {
		if err := b.Put(userKey(userID, []byte(party)), append([]byte(nil), ct...)); err != nil {
			return err
		}
	}
	return nil
}

// CloudKeyShare returns a cloud co-signer's encrypted key share for a user.
func (s *Store) CloudKeyShare(userID, party string) ([]byte, error) {
	var out []byte
	err := s.view(func(tx *bolt.Tx) error {
		v := tx.Bucket(bCloudKeys).Get(userKey(userID, []byte(party)))
		if v == nil {
			return fmt.Errorf("%w: no key share of %s for user %s", ErrUserState, party, userID)
		}
		out = append([]byte(nil), v...)
		return nil
	})
	return out, err
}

func (t *txn) user(id string) (*protocol.WsUser, error) {
	u, ok, err := get(t.tx.Bucket(bUsers), []byte(id), &protocol.WsUser{})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownUser, id)
	}
	return u, nil
}

// User returns a user, with its latest last-seen time.
func (s *Store) User(id string) (*protocol.WsUser, error) {
	var out *protocol.WsUser
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, err = (&txn{tx: tx}).user(id)
		return err
	})
	if err != nil {
		return nil, err
	}
	s.overlaySeen(out)
	return out, nil
}

// Users returns every user, ordered by ID.
func (s *Store) Users() ([]*protocol.WsUser, error) {
	var out []*protocol.WsUser
	err := s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bUsers).ForEach(func(_, v []byte) error {
			u := &protocol.WsUser{}
			out = append(out, u)
			return unmarshal(v, u)
		})
	})
	for _, u := range out {
		s.overlaySeen(u)
	}
	return out, err
}

// Touch records that a user was seen now. It is cheap: the time is kept in
// memory and written by FlushLastSeen.
func (s *Store) Touch(userID string) {
	now := s.clock.Now().UnixNano()
	s.seenMu.Lock()
	s.seen[userID] = now
	s.seenMu.Unlock()
}

func (s *Store) overlaySeen(u *protocol.WsUser) {
	s.seenMu.Lock()
	if t, ok := s.seen[u.Id]; ok && t > u.LastSeenAt {
		u.LastSeenAt = t
	}
	s.seenMu.Unlock()
}

// FlushLastSeen writes the last-seen times recorded by Touch.
func (s *Store) FlushLastSeen() error {
	s.seenMu.Lock()
	pending := s.seen
	s.seen = make(map[string]int64)
	s.seenMu.Unlock()
	if len(pending) == 0 {
		return nil
	}
	return s.update(func(t *txn) error {
		b := t.tx.Bucket(bUsers)
		for id, at := range pending {
			u, ok, err := get(b, []byte(id), &protocol.WsUser{})
			if err != nil {
				return err
			}
			if !ok || u.LastSeenAt >= at {
				continue
			}
			u.LastSeenAt = at
			if err := put(b, []byte(id), u); err != nil {
				return err
			}
		}
		return nil
	})
}

// IsSigner reports whether role signs transactions.
func IsSigner(r protocol.WsRole) bool {
	return r == protocol.WsRole_WS_ROLE_SIGNER || r == protocol.WsRole_WS_ROLE_BOTH
}

// IsApprover reports whether role approves config changes.
func IsApprover(r protocol.WsRole) bool {
	return r == protocol.WsRole_WS_ROLE_APPROVER || r == protocol.WsRole_WS_ROLE_BOTH
}
