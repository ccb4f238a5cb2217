package node

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/workspace/client"
)

// refreshTimeout bounds one refresh: the relay's rounds (about as much CPU
// as a key generation) and the commit.
const refreshTimeout = 5 * time.Minute

// refreshCheck is how often the leader looks for users due a refresh, and
// refreshRetry how long it waits after a failed one.
const (
	refreshCheck = time.Minute
	refreshRetry = 10 * time.Minute
)

// RefreshReport is what `coterie node refresh` prints: one refresh of an
// API user's MPC key shares. It holds no secret (an epoch is public).
type RefreshReport struct {
	User      string `json:"user"`
	PublicKey string `json:"public_key"`
	// FromEpoch and Epoch are the first 8 bytes of the old and new shares'
	// epochs, hex.
	FromEpoch string    `json:"from_epoch"`
	Epoch     string    `json:"epoch"`
	At        time.Time `json:"at"`
	Seconds   float64   `json:"seconds"`
}

// Refresh gives an API user's MPC key new shares, on this node and at the
// cloud co-signers, without changing the key (its public key and chain
// code stay, and so every address): a share taken before is useless with
// those made after. It runs the refresh through the workspace relay, then
// commits the node's new share through raft, which burns every
// presignature of the old shares; the cloud co-signers switch to their new
// shares at the first session that names them, so a refresh cut off before
// the commit leaves both sides on the old shares, and running it again
// works. Of two refreshes of one user that start together, the second to
// commit is refused (cluster.ErrStaleKey) and changes nothing.
//
// Errors: ErrNotReady, cluster.ErrUnknownUser, ErrRefused (a user with no
// MPC key here), and the workspace's and the cluster's.
func (n *Node) Refresh(ctx context.Context, name string) (RefreshReport, error) {
	if !n.Ready() {
		return RefreshReport{}, ErrNotReady
	}
	id, err := n.resolveUser(name)
	if err != nil {
		return RefreshReport{}, err
	}
	n.mu.Lock()
	u := n.users[id]
	n.mu.Unlock()
	if u == nil || u.SigningKey == nil {
		return RefreshReport{}, fmt.Errorf("%w: API user %s has no MPC key on this cluster", ErrRefused, id)
	}
	n.refreshMu.Lock()
	defer n.refreshMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, refreshTimeout)
	defer cancel()
	start := n.clock.Now()

	// Start from the share the cluster holds now, not from an old replica:
	// a node cut off from the quorum refreshes nothing.
	if err := n.cluster.WaitCaughtUp(ctx); err != nil {
		return RefreshReport{}, fmt.Errorf("node: catch up with the cluster: %w", err)
	}
	rec, ok := n.cluster.KeyRecord(u.Info.ShareRecord)
	if !ok {
		return RefreshReport{}, fmt.Errorf("node: key record %s is not in the cluster", u.Info.ShareRecord)
	}
	plain, err := n.kr.Decrypt(rec.ID, rec.Sealed)
	if err != nil {
		return RefreshReport{}, fmt.Errorf("node: open key record %s: %w", rec.ID, err)
	}
	share, err := mpc.UnmarshalKeyShare(plain)
	clear(plain)
	if err != nil {
		return RefreshReport{}, fmt.Errorf("node: key record %s: %w", rec.ID, err)
	}
	c, err := client.Dial(u.Credentials, n.cfg.Workspace.dialer(n.cfg.Network.net())...)
	if err != nil {
		return RefreshReport{}, err
	}
	fresh, err := c.Refresh(ctx, n.engine, share, u.SigningKey)
	c.Close()
	if err != nil {
		return RefreshReport{}, fmt.Errorf("node: refresh with the cloud co-signers: %w", err)
	}
	raw, err := fresh.MarshalBinary()
	if err != nil {
		return RefreshReport{}, err
	}
	sealed, err := n.kr.Encrypt(rec.ID, raw)
	clear(raw)
	if err != nil {
		return RefreshReport{}, err
	}
	err = n.cluster.RefreshKey(ctx, rec.ID, share.Epoch(), fresh.Epoch(), sealed)
	if errors.Is(err, cluster.ErrUncertain) {
		if now, ok := n.cluster.KeyRecord(rec.ID); ok && slices.Equal(now.Epoch, fresh.Epoch()) {
			err = nil
		}
	}
	if err != nil {
		return RefreshReport{}, fmt.Errorf("node: commit the refreshed share: %w", err)
	}
	took := n.clock.Now().Sub(start)
	// Once the cloud co-signers switch, the old shares in earlier
	// snapshots no longer sign: say so where operators look.
	n.log.Warn("key shares refreshed: snapshots saved before now cannot sign for this user, save a new one",
		"user", id, "epoch", hex.EncodeToString(epochPrefix(fresh.Epoch())), "seconds", took.Seconds())
	return RefreshReport{
		User: id, PublicKey: u.Info.PublicKey,
		FromEpoch: hex.EncodeToString(epochPrefix(share.Epoch())), Epoch: hex.EncodeToString(epochPrefix(fresh.Epoch())),
		At: n.clock.Now().UTC().Truncate(time.Second), Seconds: took.Seconds(),
	}, nil
}

func epochPrefix(epoch []byte) []byte { return epoch[:min(8, len(epoch))] }

// refreshDue returns the signer users whose shares are older than their
// refresh interval (cfg) at now, skipping those whose last attempt failed
// less than refreshRetry ago.
func (n *Node) refreshDue(cfg RefreshConfig, now time.Time, failed map[string]time.Time) []string {
	var due []string
	for _, info := range n.Users() {
		id := userRecordID(info.WorkspaceID, info.ID)
		every := cfg.interval(id, info.ID)
		if !info.Signer() || every <= 0 || now.Sub(failed[id]) < refreshRetry {
			continue
		}
		last := info.PairedAt
		if rec, ok := n.cluster.KeyRecord(info.ShareRecord); ok && rec.RefreshedAt.After(last) {
			last = rec.RefreshedAt
		}
		if now.Sub(last) >= every {
			due = append(due, id)
		}
	}
	slices.Sort(due)
	return due
}

// refreshStep refreshes every user that is due, one at a time; the leader
// runs it every refreshCheck. A failed refresh is tried again after
// refreshRetry (failed holds the last failure of each user).
func (n *Node) refreshStep(ctx context.Context, failed map[string]time.Time) {
	for _, id := range n.refreshDue(n.cfg.Refresh, n.clock.Now(), failed) {
		if _, err := n.Refresh(ctx, id); err != nil {
			if ctx.Err() != nil {
				return
			}
			failed[id] = n.clock.Now()
			n.log.Warn("scheduled key refresh failed; trying again later", "user", id, "retry_in", refreshRetry.String(), "err", err)
			continue
		}
		delete(failed, id)
	}
}

func (a *adminServer) refresh(w http.ResponseWriter, r *http.Request) {
	rep, err := a.n.Refresh(r.Context(), r.PathValue("user"))
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, rep)
	case errors.Is(err, ErrNotReady):
		writeError(w, http.StatusServiceUnavailable, codeNotReady, err.Error())
	case errors.Is(err, cluster.ErrUnknownUser):
		writeError(w, http.StatusNotFound, codeUnknownUser, err.Error())
	case errors.Is(err, ErrRefused), errors.Is(err, cluster.ErrStaleKey):
		writeError(w, http.StatusConflict, codeRefused, err.Error())
	default:
		a.n.log.Warn("key refresh failed", "err", err)
		writeError(w, http.StatusBadGateway, codeFailed, err.Error())
	}
}
