package node

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/enclave/keyring"
)

// Admin paths of keyring rotation.
const (
	// PathRotateKeyring (POST) rotates the cluster keyring.
	PathRotateKeyring = "/v1/cluster/rotate-keyring"
	// PathKeyring (GET) shows the keyring version of each member and the
	// records left to re-encrypt.
	PathKeyring = "/v1/cluster/keyring"
)

// The background re-encryption pass: while this node leads, one batch of
// at most resealBatch sealed parts every resealInterval, so a rotation
// never competes with signing for more than a sliver of raft and CPU.
const (
	resealBatch    = 64
	resealInterval = time.Second
)

// KeyringReport is the cluster keyring's state: its version, each
// member's adopted version, and the sealed records still under an older
// version. It holds no key.
type KeyringReport struct {
	Version     uint32          `json:"version"`
	Members     []MemberKeyring `json:"members"`
	RecordsLeft int             `json:"records_left"`
}

// MemberKeyring is one member's keyring version: the highest it reported
// holding sealed, and the versions wrapped to it it has yet to take in.
type MemberKeyring struct {
	ID      string   `json:"id"`
	Version uint32   `json:"version"`
	Pending []uint32 `json:"pending,omitempty"`
}

// RotationReport is what a rotation did: the new version, the members it
// was wrapped to, those that have taken it in so far, and the records
// left to re-encrypt in the background.
type RotationReport struct {
	Version     uint32   `json:"version"`
	WrappedTo   []string `json:"wrapped_to"`
	Reached     []string `json:"reached"`
	RecordsLeft int      `json:"records_left"`
}

// saveKeyring seals the keyring to the node's store, replacing the old one
// atomically; the cluster calls it after taking in a rotated version.
func (n *Node) saveKeyring(kr *keyring.Keyring) error {
	if err := n.store.SaveKeyring(n.enclave, kr); err != nil {
		return err
	}
	n.storeChanged()
	return nil
}

// keyringReport reads the keyring's state from the local replica.
func (n *Node) keyringReport() KeyringReport {
	st := n.cluster.KeyringState()
	out := KeyringReport{Version: st.Version, RecordsLeft: n.cluster.StaleSealed()}
	for _, m := range n.cluster.Members() {
		out.Members = append(out.Members, MemberKeyring{ID: m.ID, Version: st.Adopted[m.ID], Pending: st.Pending[m.ID]})
	}
	slices.SortFunc(out.Members, func(a, b MemberKeyring) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// RotateKeyring rotates the cluster keyring (cluster.RotateKeyring) and
// reports the rotation; every member takes the version in as it applies
// it, and the leader re-encrypts the old records in the background.
func (n *Node) RotateKeyring(ctx context.Context) (RotationReport, error) {
	rot, err := n.cluster.RotateKeyring(ctx)
	if err != nil {
		return RotationReport{}, err
	}
	n.log.Info("keyring rotation committed", "version", rot.Version, "members", len(rot.Members))
	st := n.cluster.KeyringState()
	return RotationReport{Version: rot.Version, WrappedTo: rot.Members, Reached: st.Reached(), RecordsLeft: n.cluster.StaleSealed()}, nil
}

// resealStep runs one batch of the re-encryption pass, on the leader, once
// per resealInterval: resumable (what is left is read from the replica each
// time) and idempotent (the FSM skips what moved already), so a new leader
// simply carries on.
func (n *Node) resealStep(ctx context.Context) {
	bctx, cancel := context.WithTimeout(ctx, clusterOpTimeout)
	res, err := n.cluster.ResealBatch(bctx, apiUserSealID, resealBatch)
	cancel()
	switch {
	case ctx.Err() != nil:
		// Closing: the batch was cut short, and the next leader or start
		// carries on.
	case err != nil && !errors.Is(err, cluster.ErrNotLeader):
		n.log.Warn("re-encryption batch failed", "err", err)
	case res.Moved > 0:
		n.log.Info("records re-encrypted", "moved", res.Moved, "left", res.Left)
	}
}

func (a *adminServer) rotateKeyring(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), clusterOpTimeout)
	defer cancel()
	rep, err := a.n.RotateKeyring(ctx)
	if err != nil {
		if errors.Is(err, cluster.ErrKeyring) {
			writeError(w, http.StatusConflict, codeRefused, err.Error())
			return
		}
		a.clusterError(w, "rotate the keyring", err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

func (a *adminServer) keyring(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.n.keyringReport())
}

// RotateKeyring asks the node to rotate the cluster keyring.
func (c *AdminClient) RotateKeyring(ctx context.Context) (RotationReport, error) {
	var r RotationReport
	return r, c.do(ctx, http.MethodPost, PathRotateKeyring, nil, true, &r)
}

// Keyring returns the cluster keyring's state as the node sees it.
func (c *AdminClient) Keyring(ctx context.Context) (KeyringReport, error) {
	var r KeyringReport
	return r, c.do(ctx, http.MethodGet, PathKeyring, nil, true, &r)
}
