package node

import (
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/coterie-mpc/coterie/callback"
	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/workspace/client"
)

// Record ids. An API user's record id is its workspace's id and its user
// id (userRecordID); its keys' records are named after that and the key's
// public part, so that pairing the same user again after an interrupted
// attempt never collides.
const (
	// callbackKeyRecord is the cluster-wide callback JWT key.
	callbackKeyRecord = "cluster/callback-key"
	// clusterOwner owns the cluster-wide key records.
	clusterOwner = "cluster"
	// maxPublicBytes bounds a record's public part that the node decodes.
	maxPublicBytes = 64 << 10
)

// A key record's sealed part is bound to its record id (the keyring's
// associated data), as the actors expect; an API-user record's to
// apiUserSealID, so that the two kinds never share an id.
func apiUserSealID(id string) string { return "apiuser/" + id }

// userRecordID is the record id of user userID of workspace workspaceID. A
// node serves API users of several workspaces, whose user ids may be the
// same; neither id holds a "/" (Pair checks). A user paired before
// workspaces were told apart has its user id alone as its record id.
func userRecordID(workspaceID, userID string) string { return workspaceID + "/" + userID }

// UserInfo is the public part of a paired API user: what `coterie node
// users` lists and the API-user record holds in the clear. It holds no
// secret.
type UserInfo struct {
	ID               string `json:"id"`
	WorkspaceID      string `json:"workspace_id"`
	Name             string `json:"name,omitempty"`
	Role             string `json:"role"`
	WorkspaceAddress string `json:"workspace_address"`
	// PublicKey and ChainCode are the user's MPC key, hex; empty for an
	// approver-only user.
	PublicKey string `json:"public_key,omitempty"`
	ChainCode string `json:"chain_code,omitempty"`
	// NodePartyID, CloudPartyIDs, SignerPartyIDs and Threshold describe the
	// key's parties.
	NodePartyID    string   `json:"node_party_id,omitempty"`
	CloudPartyIDs  []string `json:"cloud_party_ids,omitempty"`
	SignerPartyIDs []string `json:"signer_party_ids,omitempty"`
	Threshold      uint32   `json:"threshold,omitempty"`
	// ApprovalPublicKey is the Ed25519 approval key, hex.
	ApprovalPublicKey string `json:"approval_public_key"`
	// ShareRecord and ApprovalRecord name the key records that hold the
	// sealed MPC share and approval key.
	ShareRecord    string    `json:"share_record,omitempty"`
	ApprovalRecord string    `json:"approval_record"`
	PairedAt       time.Time `json:"paired_at"`
}

// Signer reports whether the user holds an MPC key.
func (u UserInfo) Signer() bool { return u.PublicKey != "" }

// SigningKey returns the user's MPC key as the workspace describes it, or
// nil for an approver-only user.
func (u UserInfo) SigningKey() (*protocol.WsSigningKey, error) {
	if !u.Signer() {
		return nil, nil
	}
	pub, err1 := hex.DecodeString(u.PublicKey)
	cc, err2 := hex.DecodeString(u.ChainCode)
	if err1 != nil || err2 != nil || len(pub) != 33 || len(cc) != 32 {
		return nil, fmt.Errorf("%w: user %q signing key", ErrBadRecord, u.ID)
	}
	return &protocol.WsSigningKey{
		PublicKey: pub, ChainCode: cc, NodePartyId: u.NodePartyID,
		CloudPartyIds: u.CloudPartyIDs, SignerPartyIds: u.SignerPartyIDs, Threshold: u.Threshold,
	}, nil
}

// User is a paired API user as the node serves it: its public part, the
// credentials that authenticate the node to the workspace (they hold the
// client key, so a User lives in memory only) and its public MPC key. The
// actors open the sealed key share and approval key from the key records
// themselves.
type User struct {
	Info UserInfo
	// RecordID is the id of the user's API-user record, unique on the node
	// across workspaces (see userRecordID). The actors name the user by it.
	RecordID string
	// Credentials authenticate the node to the workspace.
	Credentials *client.Credentials
	// SigningKey is the public MPC key, nil for an approver-only user.
	SigningKey *protocol.WsSigningKey
}

// userSecrets are the secrets pairing creates for a user, before they are
// sealed into the cluster.
type userSecrets struct {
	share       *mpc.KeyShare // nil for an approver only
	approvalKey ed25519.PrivateKey
}

// userRecords builds the cluster records of a newly paired user: its key
// records (approval key, then MPC share) and the API-user record that names
// them, all sealed under c. It fills in u.RecordID and u.Info's key fields.
func userRecords(c cluster.Cipher, u *User, sec userSecrets) (keys []cluster.Record, rec cluster.Record, err error) {
	u.RecordID = userRecordID(u.Info.WorkspaceID, u.Info.ID)
	approvalPub := sec.approvalKey.Public().(ed25519.PublicKey)
	u.Info.ApprovalPublicKey = hex.EncodeToString(approvalPub)
	h := sha256.Sum256(approvalPub)
	u.Info.ApprovalRecord = "user/" + u.RecordID + "/approval/" + hex.EncodeToString(h[:8])
	sealedApproval, err := c.Encrypt(u.Info.ApprovalRecord, sec.approvalKey.Seed())
	if err != nil {
		return nil, cluster.Record{}, err
	}
	keys = append(keys, cluster.Record{ID: u.Info.ApprovalRecord, OwnerID: u.RecordID,
		Public: []byte(u.Info.ApprovalPublicKey), Sealed: sealedApproval})
	if sec.share != nil {
		h := sha256.Sum256(u.SigningKey.GetPublicKey())
		u.Info.ShareRecord = "user/" + u.RecordID + "/share/" + hex.EncodeToString(h[:8])
		raw, err := sec.share.MarshalBinary()
		if err != nil {
			return nil, cluster.Record{}, err
		}
		sealed, err := c.Encrypt(u.Info.ShareRecord, raw)
		clear(raw)
		if err != nil {
			return nil, cluster.Record{}, err
		}
		keys = append(keys, cluster.Record{ID: u.Info.ShareRecord, OwnerID: u.RecordID,
			Public: []byte(hex.EncodeToString(u.SigningKey.GetPublicKey())), Sealed: sealed, Epoch: sec.share.Epoch()})
	}
	pub, err := json.Marshal(u.Info)
	if err != nil {
		return nil, cluster.Record{}, err
	}
	creds, err := u.Credentials.MarshalBinary()
	if err != nil {
		return nil, cluster.Record{}, err
	}
	sealedCreds, err := c.Encrypt(apiUserSealID(u.RecordID), creds)
	clear(creds)
	if err != nil {
		return nil, cluster.Record{}, err
	}
	return keys, cluster.Record{ID: u.RecordID, Public: pub, Sealed: sealedCreds}, nil
}

// decodeUserInfo decodes an API-user record's public part, which must name
// the user the record id names.
func decodeUserInfo(r cluster.Record) (UserInfo, error) {
	var u UserInfo
	if len(r.Public) > maxPublicBytes || json.Unmarshal(r.Public, &u) != nil || (r.ID != userRecordID(u.WorkspaceID, u.ID) && r.ID != u.ID) {
		return UserInfo{}, fmt.Errorf("%w: API user %q public part", ErrBadRecord, r.ID)
	}
	return u, nil
}

// openUser opens an API-user record, and checks that its key records open
// and match its public part, so that a damaged record fails the start
// rather than a request.
func openUser(c cluster.Cipher, rd cluster.Reader, r cluster.Record) (*User, error) {
	info, err := decodeUserInfo(r)
	if err != nil {
		return nil, err
	}
	u := &User{Info: info, RecordID: r.ID}
	raw, err := c.Decrypt(apiUserSealID(r.ID), r.Sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: API user %q credentials: %w", ErrBadRecord, r.ID, err)
	}
	u.Credentials, err = client.UnmarshalCredentials(raw)
	clear(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: API user %q credentials: %w", ErrBadRecord, r.ID, err)
	}
	seed, err := openKey(c, rd, info.ApprovalRecord, r.ID)
	if err != nil {
		return nil, err
	}
	if len(seed) != ed25519.SeedSize {
		clear(seed)
		return nil, fmt.Errorf("%w: API user %q approval key", ErrBadRecord, r.ID)
	}
	approval := ed25519.NewKeyFromSeed(seed)
	clear(seed)
	match := hex.EncodeToString(approval.Public().(ed25519.PublicKey)) == info.ApprovalPublicKey
	clear(approval)
	if !match {
		return nil, fmt.Errorf("%w: API user %q approval key does not match its public key", ErrBadRecord, r.ID)
	}
	if info.Signer() {
		if u.SigningKey, err = info.SigningKey(); err != nil {
			return nil, err
		}
		raw, err := openKey(c, rd, info.ShareRecord, r.ID)
		if err != nil {
			return nil, err
		}
		share, err := mpc.UnmarshalKeyShare(raw)
		clear(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: API user %q key share: %w", ErrBadRecord, r.ID, err)
		}
		if hex.EncodeToString(share.PublicKey()) != info.PublicKey {
			return nil, fmt.Errorf("%w: API user %q key share does not match its public key", ErrBadRecord, r.ID)
		}
	}
	return u, nil
}

func openKey(c cluster.Cipher, rd cluster.Reader, id, owner string) ([]byte, error) {
	kr, ok := rd.KeyRecord(id)
	if !ok || kr.OwnerID != owner {
		return nil, fmt.Errorf("%w: API user %q has no key record %q", ErrBadRecord, owner, id)
	}
	pt, err := c.Decrypt(id, kr.Sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: key record %q: %w", ErrBadRecord, id, err)
	}
	return pt, nil
}

// callbackKeyRecordFor seals the cluster's callback key.
func callbackKeyRecordFor(c cluster.Cipher, key *rsa.PrivateKey) (cluster.Record, error) {
	pem, err := callback.MarshalPublicKeyPEM(&key.PublicKey)
	if err != nil {
		return cluster.Record{}, err
	}
	der := x509.MarshalPKCS1PrivateKey(key)
	sealed, err := c.Encrypt(callbackKeyRecord, der)
	clear(der)
	if err != nil {
		return cluster.Record{}, err
	}
	return cluster.Record{ID: callbackKeyRecord, OwnerID: clusterOwner, Public: pem, Sealed: sealed}, nil
}

// openCallbackKey opens the cluster's callback key record.
func openCallbackKey(c cluster.Cipher, r cluster.Record) (*rsa.PrivateKey, error) {
	der, err := c.Decrypt(callbackKeyRecord, r.Sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: callback key: %w", ErrBadRecord, err)
	}
	key, err := x509.ParsePKCS1PrivateKey(der)
	clear(der)
	if err != nil {
		return nil, fmt.Errorf("%w: callback key does not parse", ErrBadRecord)
	}
	return key, nil
}
