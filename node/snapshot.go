package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/cluster/snapfile"
)

// PathSnapshot serves a snapshot file of this node's cluster state (see
// package cluster/snapfile): only ciphertext, signed by the node's
// identity key.
const PathSnapshot = "/v1/cluster/snapshot"

// PathRestore restores a snapshot file (the request body) onto the
// cluster, on the leader; with ?dry_run=true it only checks it. See
// cluster.Cluster.Restore for the checks and what a restore keeps.
const PathRestore = "/v1/cluster/snapshot/restore"

// RestoreAnswer is the answer of POST /v1/cluster/snapshot/restore: the
// file's header and summary, and what the restore did or would do.
type RestoreAnswer struct {
	Header  snapfile.Header       `json:"header"`
	Summary snapfile.Summary      `json:"summary"`
	Report  cluster.RestoreReport `json:"report"`
}

func (a *adminServer) snapshot(w http.ResponseWriter, _ *http.Request) {
	f := a.n.cluster.FSM()
	if f.ClusterID() == "" {
		writeError(w, http.StatusServiceUnavailable, codeNotReady, "the node has no cluster state yet")
		return
	}
	state, index, err := f.EncodeStateAt()
	if err != nil {
		writeError(w, http.StatusInternalServerError, codeFailed, "encode the cluster state")
		a.n.log.Error("encode the cluster state", "err", err)
		return
	}
	h := snapfile.Header{ClusterID: f.ClusterID(), Node: a.n.cfg.NodeID, Index: index, SavedAt: a.n.clock.Now().UTC()}
	w.Header().Set("Content-Type", "application/octet-stream")
	if err := snapfile.Write(w, h, state, a.n.identityKey); err != nil {
		a.n.log.Warn("snapshot not sent whole", "err", err)
		return
	}
	a.n.log.Info("snapshot saved", "index", index, "bytes", len(state))
}

// SaveSnapshot writes the node's snapshot file to w. The caller checks it
// with snapfile.Read.
func (c *AdminClient) SaveSnapshot(ctx context.Context, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+PathSnapshot, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("node: admin API at %s (is the node running?): %w", c.base, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxAdminAnswer))
		return answerError(data, resp.Status, http.MethodGet, PathSnapshot)
	}
	_, err = io.Copy(w, io.LimitReader(resp.Body, snapfile.MaxStateBytes+1<<20))
	return err
}

func (a *adminServer) restore(w http.ResponseWriter, r *http.Request) {
	dry := r.URL.Query().Get("dry_run") == "true"
	// snapfile bounds what it reads as the bytes arrive.
	h, state, sum, err := snapfile.Check(r.Body)
	if err != nil {
		writeError(w, http.StatusBadRequest, codeRestoreRefused, fmt.Sprintf("%v: %v", cluster.ErrRestoreRefused, err))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), restoreOpTimeout)
	defer cancel()
	rep, err := a.n.cluster.Restore(ctx, state, apiUserSealID, dry)
	switch {
	case errors.Is(err, cluster.ErrRestoreRefused):
		writeError(w, http.StatusConflict, codeRestoreRefused, err.Error())
		return
	case err != nil:
		a.clusterError(w, "restore", err)
		return
	}
	if !dry {
		a.n.log.Warn("snapshot restored", "cluster", h.ClusterID, "snapshot_index", h.Index, "saved_by", h.Node,
			"burned", rep.Burned, "released", rep.Released)
	}
	writeJSON(w, http.StatusOK, RestoreAnswer{Header: h, Summary: sum, Report: rep})
}

// restoreOpTimeout bounds a restore through the admin API.
const restoreOpTimeout = 3 * time.Minute

// RestoreSnapshot sends a snapshot file to the node to restore onto its
// cluster (see PathRestore), or only to check with dryRun. A refusal
// wraps cluster.ErrRestoreRefused; on a follower, cluster.ErrNotLeader.
func (c *AdminClient) RestoreSnapshot(ctx context.Context, file []byte, dryRun bool) (RestoreAnswer, error) {
	u := c.base + PathRestore + "?" + url.Values{"dry_run": {fmt.Sprint(dryRun)}}.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(file))
	if err != nil {
		return RestoreAnswer{}, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := c.http.Do(req)
	if err != nil {
		return RestoreAnswer{}, fmt.Errorf("node: admin API at %s (is the node running?): %w", c.base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAdminAnswer))
	if err != nil {
		return RestoreAnswer{}, fmt.Errorf("node: admin API: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return RestoreAnswer{}, answerError(data, resp.Status, http.MethodPost, PathRestore)
	}
	var out RestoreAnswer
	if err := json.Unmarshal(data, &out); err != nil {
		return RestoreAnswer{}, fmt.Errorf("%w: %s answered %v", ErrAdminAPI, PathRestore, err)
	}
	return out, nil
}
