package node

import "time"

// UserListing is a paired API user as the admin API shows it (GET
// /v1/users, POST /v1/pair) and `coterie node users --json` prints it: the
// public facts of UserInfo, with the MPC key's signing set spelt out and
// times in RFC 3339. It holds no secret.
//
// UserInfo stays the record's own encoding in the cluster state; this is
// its face to people, where CMP's threshold t read as the quorum.
type UserListing struct {
	ID               string `json:"id"`
	WorkspaceID      string `json:"workspace_id"`
	Name             string `json:"name,omitempty"`
	Role             string `json:"role"`
	WorkspaceAddress string `json:"workspace_address"`
	// PublicKey and ChainCode are the user's MPC key, hex; empty for an
	// approver-only user.
	PublicKey string `json:"public_key,omitempty"`
	ChainCode string `json:"chain_code,omitempty"`
	// Quorum is how many parties sign together, the node included: t+1
	// of the Parties that hold a share of the key.
	Quorum  int `json:"quorum,omitempty"`
	Parties int `json:"parties,omitempty"`
	// CMPThresholdT is CMP's own threshold t, the number of parties that
	// may be corrupt without the key leaking: Quorum-1.
	CMPThresholdT  uint32   `json:"cmp_threshold_t,omitempty"`
	NodePartyID    string   `json:"node_party_id,omitempty"`
	CloudPartyIDs  []string `json:"cloud_party_ids,omitempty"`
	SignerPartyIDs []string `json:"signer_party_ids,omitempty"`
	// ApprovalPublicKey is the Ed25519 approval key, hex.
	ApprovalPublicKey string `json:"approval_public_key"`
	// ShareRecord and ApprovalRecord name the key records that hold the
	// sealed MPC share and approval key.
	ShareRecord    string `json:"share_record,omitempty"`
	ApprovalRecord string `json:"approval_record"`
	// PairedAt is when the user was paired, to the second, UTC.
	PairedAt time.Time `json:"paired_at"`
}

// Listing returns u as the admin API shows it.
func (u UserInfo) Listing() UserListing {
	l := UserListing{
		ID: u.ID, WorkspaceID: u.WorkspaceID, Name: u.Name, Role: u.Role, WorkspaceAddress: u.WorkspaceAddress,
		PublicKey: u.PublicKey, ChainCode: u.ChainCode, NodePartyID: u.NodePartyID,
		CloudPartyIDs: u.CloudPartyIDs, SignerPartyIDs: u.SignerPartyIDs,
		ApprovalPublicKey: u.ApprovalPublicKey, ShareRecord: u.ShareRecord, ApprovalRecord: u.ApprovalRecord,
		// Whole seconds marshal as plain RFC 3339, without a fraction.
		PairedAt: u.PairedAt.UTC().Truncate(time.Second),
	}
	if u.Signer() {
		l.CMPThresholdT = u.Threshold
		l.Quorum = int(u.Threshold) + 1
		l.Parties = 1 + len(u.CloudPartyIDs)
	}
	return l
}

// userListings returns the listing of each user, in order.
func userListings(users []UserInfo) []UserListing {
	out := make([]UserListing, len(users))
	for i, u := range users {
		out[i] = u.Listing()
	}
	return out
}
