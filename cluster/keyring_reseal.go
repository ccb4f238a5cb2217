package cluster

import (
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"sync"

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

// pos is the part's place in staleSealed's order: presignatures by key
// and id, then API users, then key records.
func (s staleSealed) pos() string {
	return fmt.Sprintf("%d\x00%s\x00%s", sealedRank[s.kind], s.keyID, s.id)
}

var sealedRank = map[protocol.ClusterSealedKind]int{sealedPresignature: 0, sealedAPIUser: 1, sealedKeyRecord: 2}

// staleSealed returns up to limit sealed parts under a version older than
// the cluster's, in a stable order (see pos) that starts after the
// position after and wraps around, and how many there are in all. A
// cluster at the first version has nothing older, so it walks nothing:
// the reseal loop asks every second on the leader.
func (f *FSM) staleSealed(limit int, after string) ([]staleSealed, int) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	cur := f.st.keyringVersion()
	if cur == firstKeyringVersion {
		return nil, 0
	}
	var out, wrapped []staleSealed
	total := 0
	take := func(s staleSealed) {
		if v, err := keyring.CiphertextVersion(s.sealed); err != nil || v >= cur {
			return
		}
		total++
		switch {
		case s.pos() > after && len(out) < limit:
			s.sealed = slices.Clone(s.sealed)
			out = append(out, s)
		case s.pos() <= after && len(wrapped) < limit:
			s.sealed = slices.Clone(s.sealed)
			wrapped = append(wrapped, s)
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
	out = append(out, wrapped...)
	return out[:min(len(out), limit)], total
}

// resealCursor is where the re-encryption pass goes on from, and the
// parts it could not open, each logged once: a part that fails to open
// would otherwise be tried first in every batch, hold the pass back and
// log an error every second.
type resealCursor struct {
	mu      sync.Mutex
	after   string
	version uint32
	failed  map[string]bool
}

// StaleSealed returns how many sealed parts in the replica (live
// presignature shares, API-user and key records) are still under a
// keyring version older than the cluster's: what a re-encryption pass has
// left to do. Zero means no record needs an old version any more.
func (f *FSM) StaleSealed() int {
	_, n := f.staleSealed(0, "")
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
// each time, and the FSM skips parts already moved or gone. Each batch
// goes on after the last part the one before tried, so parts it cannot
// open (logged once each) do not keep it from the rest. apiUserSeal
// maps an API-user record's id to the record id its sealed part is bound
// to (the node names those). Errors: ErrKeyring when this node lacks the
// current version, and Propose's.
func (c *Cluster) ResealBatch(ctx context.Context, apiUserSeal func(id string) string, limit int) (Reseal, error) {
	if c.cfg.Keyring == nil {
		return Reseal{}, errorf(ErrKeyring, "this node holds no keyring")
	}
	// One pass at a time: the cursor is read and moved under the lock.
	c.reseal.mu.Lock()
	defer c.reseal.mu.Unlock()
	st := c.fsm.KeyringState()
	if c.reseal.version != st.Version {
		c.reseal.after, c.reseal.version, c.reseal.failed = "", st.Version, map[string]bool{}
	}
	batch, total := c.fsm.staleSealed(limit, c.reseal.after)
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
		c.reseal.after = s.pos()
		record := s.record
		if s.kind == sealedAPIUser {
			record = apiUserSeal(s.id)
		}
		plain, err := kr.Decrypt(record, s.sealed)
		if err != nil {
			// A record this node cannot open stays as it is, and counted
			// as left; the log names it once, never its contents.
			if !c.reseal.failed[s.pos()] {
				c.reseal.failed[s.pos()] = true
				c.log.Error("record not resealed", "kind", s.kind.String(), "record", s.id, "err", err)
			}
			continue
		}
		delete(c.reseal.failed, s.pos())
		sealed, err := kr.Encrypt(record, plain)
		clear(plain)
		if err != nil {
			return Reseal{Left: total}, err
		}
		was := sha256.Sum256(s.sealed)
		cmd.Records = append(cmd.Records, &protocol.ClusterResealedRecord{Kind: s.kind, KeyId: s.keyID, Id: s.id, Sealed: sealed,
			ReplacesSha256: was[:]})
	}
	if len(cmd.Records) == 0 {
		return Reseal{Left: total}, nil
	}
	if _, err := c.Propose(ctx, &protocol.ClusterCommand{Body: &protocol.ClusterCommand_RecordsResealed{RecordsResealed: cmd}}); err != nil {
		return Reseal{Left: total}, err
	}
	return Reseal{Moved: len(cmd.Records), Left: total - len(cmd.Records)}, nil
}
