package cluster

import (
	"context"
	"maps"
	"slices"

	"github.com/coterie-mpc/coterie/enclave/keyring"
	"github.com/coterie-mpc/coterie/protocol"
)

// staleSealed is a sealed part under an older keyring version.
type staleSealed struct {
	kind   protocol.ClusterSealedKind
	keyID  string
	id     string
	record string // the keyring record id (associated data), for presignatures
	sealed []byte
}

// staleSealed returns up to limit sealed parts under a version older than
// the cluster's, in a stable order (presignatures by key and id, then API
// users, then key records), and how many there are in all.
func (f *FSM) staleSealed(limit int) ([]staleSealed, int) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	cur := f.st.keyringVersion()
	var out []staleSealed
	total := 0
	take := func(s staleSealed) {
		if v, err := keyring.CiphertextVersion(s.sealed); err != nil || v >= cur {
			return
		}
		total++
		if len(out) < limit {
			s.sealed = slices.Clone(s.sealed)
			out = append(out, s)
		}
	}
	for _, key := range slices.Sorted(maps.Keys(f.st.pools)) {
		kp := f.st.pools[key]
		for _, id := range slices.Sorted(maps.Keys(kp.live)) {
			p := kp.live[id]
			take(staleSealed{kind: sealedPresignature, keyID: key, id: id,
				record: PresignatureRecordID(key, p.GetOrigin(), p.GetOriginSeq(), id), sealed: p.GetSealed()})
		}
	}
	for _, id := range slices.Sorted(maps.Keys(f.st.users)) {
		take(staleSealed{kind: sealedAPIUser, id: id, sealed: f.st.users[id].GetSealed()})
	}
	for _, id := range slices.Sorted(maps.Keys(f.st.keys)) {
		take(staleSealed{kind: sealedKeyRecord, id: id, record: id, sealed: f.st.keys[id].GetSealed()})
	}
	return out, total
}

// StaleSealed returns how many sealed parts in the replica (live
// presignature shares, API-user and key records) are still under a
// keyring version older than the cluster's: what a re-encryption pass has
// left to do. Zero means no record needs an old version any more.
func (f *FSM) StaleSealed() int {
	_, n := f.staleSealed(0)
	return n
}

// StaleSealed returns the local replica's count (see FSM.StaleSealed).
func (c *Cluster) StaleSealed() int { return c.fsm.StaleSealed() }

// Reseal is what one ResealBatch did.
type Reseal struct {
	// Moved is how many sealed parts the batch re-encrypted.
	Moved int
	// Left is how many were still under an older version before the batch
	// minus Moved.
	Left int
	// Waiting lists the members that have not adopted the cluster's
	// version; while any has, nothing moves.
	Waiting []string
}

// ResealBatch re-encrypts up to limit sealed parts still under an older
// keyring version with the current one and commits them in one entry
// (RecordsResealed). It moves nothing until every member reported holding
// the current version, since a member without it could not open what moved.
// It is resumable and idempotent: what is left is read from the replica
// each time, and the FSM skips parts already moved or gone. apiUserSeal
// maps an API-user record's id to the record id its sealed part is bound
// to (the node names those). Errors: ErrKeyring when this node lacks the
// current version, and Propose's.
func (c *Cluster) ResealBatch(ctx context.Context, apiUserSeal func(id string) string, limit int) (Reseal, error) {
	if c.cfg.Keyring == nil {
		return Reseal{}, errorf(ErrKeyring, "this node holds no keyring")
	}
	st := c.fsm.KeyringState()
	batch, total := c.fsm.staleSealed(limit)
	var out Reseal
	for _, id := range slices.Sorted(maps.Keys(st.Adopted)) {
		if st.Adopted[id] < st.Version {
			out.Waiting = append(out.Waiting, id)
		}
	}
	if total == 0 || len(out.Waiting) > 0 {
		out.Left = total
		return out, nil
	}
	kr := c.cfg.Keyring
	if kr.Version() < st.Version {
		return Reseal{Left: total}, errorf(ErrKeyring, "this node holds version %d, the cluster's is %d", kr.Version(), st.Version)
	}
	cmd := &protocol.ClusterRecordsResealed{}
	for _, s := range batch {
		record := s.record
		if s.kind == sealedAPIUser {
			record = apiUserSeal(s.id)
		}
		plain, err := kr.Decrypt(record, s.sealed)
		if err != nil {
			// A record this node cannot open stays as it is, and counted
			// as left; the log names it, never its contents.
			c.log.Error("record not resealed", "record", s.id, "err", err)
			continue
		}
		sealed, err := kr.Encrypt(record, plain)
		clear(plain)
		if err != nil {
			return Reseal{Left: total}, err
		}
		cmd.Records = append(cmd.Records, &protocol.ClusterResealedRecord{Kind: s.kind, KeyId: s.keyID, Id: s.id, Sealed: sealed})
	}
	if len(cmd.Records) == 0 {
		return Reseal{Left: total}, nil
	}
	if _, err := c.Propose(ctx, &protocol.ClusterCommand{Body: &protocol.ClusterCommand_RecordsResealed{RecordsResealed: cmd}}); err != nil {
		return Reseal{Left: total}, err
	}
	return Reseal{Moved: len(cmd.Records), Left: total - len(cmd.Records)}, nil
}
