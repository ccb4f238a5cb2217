package node

import (
	"context"
	"fmt"
	"io"
	"net/http"

	"github.com/coterie-mpc/coterie/cluster/snapfile"
)

// PathSnapshot serves a snapshot file of this node's cluster state (see
// package cluster/snapfile): only ciphertext, signed by the node's
// identity key.
const PathSnapshot = "/v1/cluster/snapshot"

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
