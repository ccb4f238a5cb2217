package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"

	"filippo.io/age"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/enclave/keyring"
)

// PathKeyringExport answers the cluster keyring encrypted to the
// recovery keys the node's config lists (see ExportRequest): a recovery
// file (package enclave/keyring).
const PathKeyringExport = "/v1/keyring/export"

// ExportRequest is the body of POST /v1/keyring/export. Recipient names
// one of the config's recovery.recipients; empty means all of them. A key
// the config does not list is refused: the admin token alone must not be
// enough to take the keyring away.
type ExportRequest struct {
	Recipient string `json:"recipient,omitempty"`
}

// exportNotRecorded is the cluster's refusal to record an export, which
// then hands nothing out.
type exportNotRecorded struct{ err error }

func (e *exportNotRecorded) Error() string {
	return "node: the keyring export could not be recorded in the audit log: " + e.err.Error()
}
func (e *exportNotRecorded) Unwrap() error { return e.err }

// ErrNotRecipient is returned when an export names a key that the node's
// config does not list in recovery.recipients, or the config lists none.
var ErrNotRecipient = errors.New("node: not a recovery recipient of this node's config")

// exportKeyring returns the node's keyring as a recovery file encrypted
// to recipient (one of the configured ones), or to every configured one.
// The export enters the audit log first: a node that cannot record it
// hands nothing out.
func (n *Node) exportKeyring(ctx context.Context, recipient string) ([]byte, error) {
	listed := n.cfg.Recovery.Recipients
	switch {
	case len(listed) == 0:
		return nil, fmt.Errorf("%w: the config lists no recovery.recipients", ErrNotRecipient)
	case recipient != "" && !slices.Contains(listed, recipient):
		return nil, fmt.Errorf("%w: %s is not in recovery.recipients", ErrNotRecipient, recipient)
	case recipient != "":
		listed = []string{recipient}
	}
	var rs []*age.X25519Recipient
	for _, s := range listed {
		r, err := age.ParseX25519Recipient(s)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrInvalidConfig, s, err)
		}
		rs = append(rs, r)
	}
	clusterID := n.cluster.ClusterID()
	if clusterID == "" {
		return nil, fmt.Errorf("%w: the node has no cluster yet", ErrNotReady)
	}
	var buf bytes.Buffer
	h := keyring.RecoveryHeader{ClusterID: clusterID, Node: n.cfg.NodeID, ExportedAt: n.clock.Now().UTC()}
	if err := n.kr.ExportRecovery(&buf, h, rs...); err != nil {
		return nil, err
	}
	if err := n.cluster.RecordKeyringExport(ctx, listed, n.kr.Versions()); err != nil {
		return nil, &exportNotRecorded{err}
	}
	return buf.Bytes(), nil
}

func (a *adminServer) keyringExport(w http.ResponseWriter, r *http.Request) {
	var req ExportRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, "the body is not an export request: "+err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), clusterOpTimeout)
	defer cancel()
	file, err := a.n.exportKeyring(ctx, req.Recipient)
	switch {
	case errors.Is(err, ErrNotRecipient):
		writeError(w, http.StatusForbidden, codeNotRecipient, err.Error())
		return
	case errors.Is(err, ErrNotReady):
		writeError(w, http.StatusServiceUnavailable, codeNotReady, err.Error())
		return
	case errors.As(err, new(*exportNotRecorded)):
		a.clusterError(w, "record the keyring export", err)
		return
	case err != nil:
		a.n.log.Error("keyring export failed", "err", err)
		writeError(w, http.StatusInternalServerError, codeFailed, "keyring export failed")
		return
	}
	a.n.log.Warn("keyring exported to recovery keys", "recipient", req.Recipient)
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(file)
}

// ExportKeyring asks the node for its keyring as a recovery file
// encrypted to recipient, one of its config's recovery.recipients (empty:
// all of them). ErrNotRecipient when the config does not list it.
func (c *AdminClient) ExportKeyring(ctx context.Context, recipient string) ([]byte, error) {
	body, err := json.Marshal(ExportRequest{Recipient: recipient})
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+PathKeyringExport, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("node: admin API at %s (is the node running?): %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminAnswer))
	if err != nil {
		return nil, fmt.Errorf("node: admin API: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, answerError(data, resp.Status, http.MethodPost, PathKeyringExport)
	}
	return data, nil
}

// ImportKeyring brings a recovery file's keyring into a new node's
// enclave, for `coterie node keyring import`: it opens (or creates) the
// node's sealed store, decrypts the file with the operator's identities,
// and seals the keyring in place of the node's own, with the file's
// cluster id as the id the node gives the cluster it bootstraps. A
// snapshot of that cluster then restores onto it. It refuses a node that
// has joined a cluster or holds raft state (ErrJoined), and says nothing
// of the identities in its errors.
func ImportKeyring(cfg Config, file io.Reader, identities []age.Identity) (keyring.RecoveryHeader, error) {
	n, err := open(cfg)
	if err != nil {
		return keyring.RecoveryHeader{}, err
	}
	defer n.runClosers()
	if err := n.prepareDataDir(); err != nil {
		return keyring.RecoveryHeader{}, err
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "raft")); err == nil {
		return keyring.RecoveryHeader{}, fmt.Errorf("%w: %s has raft state: import into a new node", ErrJoined, cfg.DataDir)
	}
	if err := n.openStore(); err != nil {
		return keyring.RecoveryHeader{}, err
	}
	if k, ok, err := n.knownMembers(); err != nil || (ok && len(k.Members) > 0) {
		if err == nil {
			err = fmt.Errorf("%w: %s knows cluster %s: import into a new node", ErrJoined, cfg.DataDir, k.ClusterID)
		}
		return keyring.RecoveryHeader{}, err
	}
	h, kr, err := keyring.ImportRecovery(file, identities...)
	if err != nil {
		return keyring.RecoveryHeader{}, err
	}
	known, err := cluster.KnownMembers{ClusterID: h.ClusterID}.Encode()
	if err != nil {
		return keyring.RecoveryHeader{}, err
	}
	if err := n.store.SaveJoin(n.enclave, kr, known); err != nil {
		return keyring.RecoveryHeader{}, err
	}
	n.log.Info("keyring imported", "cluster", h.ClusterID, "keyring_version", kr.Version(), "exported_by", h.Node)
	return h, nil
}
