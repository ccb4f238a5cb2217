package cluster

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/hashicorp/raft"

	"github.com/coterie-mpc/coterie/cluster/audit"
	"github.com/coterie-mpc/coterie/enclave/keyring"
	"github.com/coterie-mpc/coterie/protocol"
)

// ErrRestoreRefused is returned by Restore when a snapshot may not be
// restored onto this cluster: it does not decode, it is another cluster's,
// or this node's keyring cannot open it. Nothing was changed.
var ErrRestoreRefused = errors.New("cluster: snapshot refused for restore")

// RestoreReport says what a restore did, or would do (Restore with
// dryRun).
type RestoreReport struct {
	ClusterID string `json:"cluster_id"`
	// SnapshotIndex is the applied index the snapshot was taken at, and
	// LiveIndex the live state's it was merged into.
	SnapshotIndex uint64 `json:"snapshot_index"`
	LiveIndex     uint64 `json:"live_index"`
	// Burned counts the presignatures that were live (available or
	// reserved) in the snapshot or the live state and are now burned;
	// Released the claimed requests returned to unclaimed.
	Burned   int `json:"burned"`
	Released int `json:"released"`
	// APIUsers, KeyRecords and Requests count what the snapshot brought
	// that the live state lacked.
	APIUsers   int `json:"api_users_added"`
	KeyRecords int `json:"key_records_added"`
	Requests   int `json:"requests_added"`
	// KeyringVersion is the cluster keyring version after the restore.
	KeyringVersion uint32 `json:"keyring_version"`
	// Checked counts the sealed records test-decrypted with this node's
	// keyring.
	Checked int `json:"records_checked"`
	// DryRun is true when nothing was changed.
	DryRun bool `json:"dry_run"`
}

// restoreTimeout bounds raft's part of a restore: writing the snapshot
// locally and committing the entry after it.
const restoreTimeout = time.Minute

// Restore restores a snapshot's state (the bytes of FSM.EncodeState, as a
// snapshot file holds them) onto this cluster. It runs on the leader only
// (ErrNotLeader elsewhere), and checks before anything changes:
//
//   - the state decodes and keeps the FSM's invariants;
//   - it is this cluster's (the same cluster id);
//   - this node's keyring holds every key version its sealed records use,
//     and opens every API-user and key record (or one presignature when it
//     has none); apiUserSeal maps an API-user record id to the record id
//     its sealed part is bound to, as in ResealBatch.
//
// A refusal wraps ErrRestoreRefused. With dryRun it stops there and
// reports what the restore would do.
//
// The snapshot is merged into the live state rather than replacing it,
// because a snapshot is older than the live state and some things must
// never go back (see mergeRestore): the member table, the join tokens, the
// attestation policy and the keyring version stay live, records are the
// union of both, and every presignature live in either is burned (I1: the
// snapshot's may have been used since) and every claimed request released,
// so its owner is decided anew. The merged state replaces the FSM through
// raft's user restore, which followers then install as a snapshot. While
// it runs, this leader appends no command: proposals wait, and those in
// flight are applied first, so that nothing committed is lost between the
// merge and the restore.
func (c *Cluster) Restore(ctx context.Context, state []byte, apiUserSeal func(id string) string, dryRun bool) (RestoreReport, error) {
	if c.raft.State() != raft.Leader {
		id, _ := c.Leader()
		return RestoreReport{}, errorf(ErrNotLeader, "a restore runs on the leader; %s is not the leader (the leader is %q)", c.cfg.NodeID, id)
	}
	snap, err := decodeState(state)
	if err != nil {
		return RestoreReport{}, fmt.Errorf("%w: the snapshot's state: %w", ErrRestoreRefused, err)
	}
	_, rep, err := c.mergeFromLive(snap, apiUserSeal)
	if err != nil {
		return RestoreReport{}, err
	}
	if dryRun {
		rep.DryRun = true
		return rep, nil
	}

	c.restoring.Lock()
	defer c.restoring.Unlock()
	// Every command appended before the lock is applied after this.
	if err := c.Barrier(restoreTimeout); err != nil {
		return RestoreReport{}, err
	}
	// The merge took snap's parts; decode it afresh to merge it into the
	// state as it is now.
	snap, _ = decodeState(state)
	snapHead := snap.audit.Head()
	merged, rep, err := c.mergeFromLive(snap, apiUserSeal)
	if err != nil {
		return RestoreReport{}, err
	}
	// The restore enters the live chain, which it keeps, with a link to
	// the snapshot's.
	merged.audit.Append(audit.Entry{
		Index: c.raft.LastIndex(), Time: c.cfg.Clock.Now().UTC(), Kind: audit.KindRestored, Node: c.cfg.NodeID,
		Number: rep.SnapshotIndex, Digest: fmt.Sprintf("%d:%s", snapHead.Seq, snapHead.Hash),
		Detail: fmt.Sprintf("burned=%d released=%d api_users=%d key_records=%d requests=%d keyring_version=%d",
			rep.Burned, rep.Released, rep.APIUsers, rep.KeyRecords, rep.Requests, rep.KeyringVersion),
	})
	out, err := encodeState(merged)
	if err != nil {
		return RestoreReport{}, err
	}
	// raft panics when the FSM refuses a user restore: make sure it won't.
	if _, err := decodeState(out); err != nil {
		return RestoreReport{}, errorf(ErrInternal, "the merged state does not decode: %v", err)
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: c.raft.LastIndex(), Term: c.raft.CurrentTerm(), Size: int64(len(out))}
	if err := c.raft.Restore(meta, bytes.NewReader(out), restoreTimeout); err != nil {
		return RestoreReport{}, raftError(err)
	}
	c.log.Info("snapshot restored", "snapshot_index", rep.SnapshotIndex, "live_index", rep.LiveIndex,
		"burned", rep.Burned, "released", rep.Released, "keyring_version", rep.KeyringVersion)
	return rep, nil
}

// mergeFromLive checks snap against the live state and this node's
// keyring, and merges it into a copy of the live state.
func (c *Cluster) mergeFromLive(snap *state, apiUserSeal func(id string) string) (*state, RestoreReport, error) {
	liveBytes, err := c.fsm.EncodeState()
	if err != nil {
		return nil, RestoreReport{}, err
	}
	live, err := decodeState(liveBytes)
	if err != nil {
		return nil, RestoreReport{}, errorf(ErrInternal, "the live state does not decode: %v", err)
	}
	checked, err := checkRestore(live, snap, c.cfg.Keyring, apiUserSeal)
	if err != nil {
		return nil, RestoreReport{}, err
	}
	rep := mergeRestore(live, snap)
	rep.Checked = checked
	return live, rep, nil
}

// checkRestore refuses a snapshot that is not this cluster's or that kr
// cannot open, and returns how many records it opened.
func checkRestore(live, snap *state, kr *keyring.Keyring, apiUserSeal func(id string) string) (int, error) {
	refuse := func(format string, args ...any) (int, error) {
		return 0, fmt.Errorf("%w: "+format, append([]any{ErrRestoreRefused}, args...)...)
	}
	switch {
	case live.clusterID == "":
		return refuse("this cluster has no member table yet")
	case snap.clusterID == "":
		return refuse("the snapshot holds no cluster")
	case snap.clusterID != live.clusterID:
		return refuse("the snapshot is from cluster %s, this cluster is %s", snap.clusterID, live.clusterID)
	case kr == nil:
		return refuse("this node holds no keyring")
	}
	if v := snap.keyringVersion(); v > live.keyringVersion() && !kr.Holds(v) {
		return refuse("the snapshot's cluster keyring is at version %d, which this node's keyring does not hold (it holds %v)", v, kr.Versions())
	}
	type sealedPart struct{ what, record string }
	var parts []sealedPart
	var records []sealedPart
	var sealed [][]byte
	for _, key := range slices.Sorted(maps.Keys(snap.pools)) {
		kp := snap.pools[key]
		for _, id := range slices.Sorted(maps.Keys(kp.live)) {
			p := kp.live[id]
			parts = append(parts, sealedPart{"presignature " + key + "/" + id, PresignatureRecordID(key, p.GetOrigin(), p.GetOriginSeq(), id)})
			sealed = append(sealed, p.GetSealed())
		}
	}
	nPresig := len(parts)
	for _, id := range slices.Sorted(maps.Keys(snap.users)) {
		rid := id
		if apiUserSeal != nil {
			rid = apiUserSeal(id)
		}
		parts = append(parts, sealedPart{"API user " + id, rid})
		sealed = append(sealed, snap.users[id].GetSealed())
	}
	for _, id := range slices.Sorted(maps.Keys(snap.keys)) {
		parts = append(parts, sealedPart{"key record " + id, id})
		sealed = append(sealed, snap.keys[id].GetSealed())
	}
	for i, p := range parts {
		v, err := keyring.CiphertextVersion(sealed[i])
		if err != nil {
			return refuse("%s is not a keyring ciphertext", p.what)
		}
		if !kr.Holds(v) {
			return refuse("%s is sealed under keyring version %d, which this node's keyring does not hold (it holds %v): "+
				"this cluster's keyring is not the snapshot's", p.what, v, kr.Versions())
		}
	}
	// Open every record; a snapshot of presignatures only, one of them.
	records = parts[nPresig:]
	open := sealed[nPresig:]
	if len(records) == 0 && nPresig > 0 {
		records, open = parts[:1], sealed[:1]
	}
	for i, p := range records {
		pt, err := kr.Decrypt(p.record, open[i])
		clear(pt)
		if err != nil {
			return refuse("%s does not open with this node's keyring (%v): this cluster's keyring is not the snapshot's", p.what, err)
		}
	}
	return len(records), nil
}

// mergeRestore merges snap into live, which becomes the restored state,
// and reports what it did. It is deterministic, and runs on the leader
// only: followers install its result.
//
// What stays live, because going back would be unsafe:
//   - the cluster id, the member table and the attestation policy: a
//     snapshot from before a join would evict a member, one from before a
//     removal would let a removed node back in;
//   - the join tokens: an old table would bring back a token spent or
//     revoked since;
//   - the keyring rotations and adoptions, unless the snapshot's keyring
//     version is higher (a cluster rebuilt from a keyring export): then
//     the snapshot's rotations, keeping only the copies wrapped to current
//     members (checkRestore made sure this node holds that version);
//   - the callback handlers the live state has (the cluster's and each
//     user's): a restore never drops a handler, which would approve
//     without asking (I5); the snapshot's fill in where the live has none;
//   - the presignature pools' high-water marks, raised to the snapshot's
//     where those are higher, so that no Add applied before either can be
//     admitted again.
//
// What the snapshot brings: API users, key records, requests and pools
// that the live state lacks (records are add-only, so the live copy of a
// record is the newer one). Then, for I1, every claimed request is
// released (its reservations burned) and every presignature still
// available is burned: a snapshot is older than the live state, and its
// presignatures may have been used since. Pools refill from there.
func mergeRestore(live, snap *state) RestoreReport {
	rep := RestoreReport{ClusterID: live.clusterID, SnapshotIndex: snap.appliedIndex, LiveIndex: live.appliedIndex}
	if snap.keyringVersion() > live.keyringVersion() {
		live.rotations = nil
		for _, r := range snap.rotations {
			r.Copies = slices.DeleteFunc(r.Copies, func(w *protocol.ClusterWrappedKey) bool {
				m := live.members[w.GetMemberId()]
				return m == nil || !bytes.Equal(m.GetIdentityKey(), w.GetIdentityKey()) || live.adopted[w.GetMemberId()] >= r.GetVersion()
			})
			live.rotations = append(live.rotations, r)
		}
		live.pruneRotations()
	}
	if live.callback == nil {
		live.callback = snap.callback
	}
	for id, r := range snap.users {
		if _, ok := live.users[id]; !ok {
			live.users[id] = r
			rep.APIUsers++
		}
	}
	for id, r := range snap.keys {
		if _, ok := live.keys[id]; !ok {
			live.keys[id] = r
			rep.KeyRecords++
		}
	}
	for id, cb := range snap.userCallbacks {
		if _, ok := live.userCallbacks[id]; !ok && live.users[id] != nil {
			live.userCallbacks[id] = cb
		}
	}
	for key, sp := range snap.pools {
		lp, ok := live.pools[key]
		if !ok {
			live.pools[key] = sp
			continue
		}
		for node, seq := range sp.high {
			lp.high[node] = max(lp.high[node], seq)
		}
	}
	for id, r := range snap.requests {
		if _, ok := live.requests[id]; !ok {
			live.requests[id] = r
			rep.Requests++
		}
	}
	live.completionSeq = max(live.completionSeq, snap.completionSeq)
	var completed []*protocol.ClusterRequestState
	for _, r := range live.requests {
		if r.GetStatus() == reqCompleted {
			completed = append(completed, r)
		}
	}
	slices.SortFunc(completed, func(a, b *protocol.ClusterRequestState) int {
		return cmp.Or(cmp.Compare(a.GetCompletionSeq(), b.GetCompletionSeq()), cmp.Compare(a.GetId(), b.GetId()))
	})
	live.completed = live.completed[:0]
	for _, r := range completed {
		live.completed = append(live.completed, r.GetId())
	}
	for len(live.completed) > completedRetained {
		delete(live.requests, live.completed[0])
		live.completed = live.completed[1:]
	}

	// I1: release every claimed request (burning what it reserved), then
	// burn whatever is still live.
	for _, kp := range live.pools {
		rep.Burned += len(kp.live)
	}
	owners := map[string]bool{}
	for _, r := range live.requests {
		if r.GetStatus() == reqClaimed {
			owners[r.GetOwner()] = true
			rep.Released++
		}
	}
	for _, node := range slices.Sorted(maps.Keys(owners)) {
		live.release(node, "")
	}
	for _, key := range slices.Sorted(maps.Keys(live.pools)) {
		kp := live.pools[key]
		for _, id := range slices.Sorted(maps.Keys(kp.live)) {
			live.spend(&protocol.ClusterPresignatureRef{KeyId: key, Id: id}, psBurned)
		}
	}
	rep.KeyringVersion = live.keyringVersion()
	return rep
}
