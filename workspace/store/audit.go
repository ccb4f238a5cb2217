package store

import (
	"encoding/binary"

	"github.com/coterie-mpc/coterie/protocol"
	bolt "go.etcd.io/bbolt"
)

// Audit actors.
const (
	// ActorAdmin is the workspace operator.
	ActorAdmin = "admin"
	// ActorSystem is the workspace itself (expiry, for example).
	ActorSystem = "system"
)

// ActorUser names an API user as an audit actor.
func ActorUser(id string) string { return "user:" + id }

// audit appends an entry to the audit log in the change's transaction.
func (t *txn) audit(actor, action, userID, requestID, detail string) error {
	b := t.tx.Bucket(bAudit)
	seq, err := b.NextSequence()
	if err != nil {
		return err
	}
	return put(b, u64(seq), &protocol.WsAuditEntry{
		Seq: seq, At: t.nanos(), Actor: actor, Action: action,
		UserId: userID, RequestId: requestID, Detail: detail,
	})
}

// Audit returns up to limit audit entries after seq afterSeq, oldest first,
// and the seq to continue from (0 when there are no more).
func (s *Store) Audit(afterSeq uint64, limit int) ([]*protocol.WsAuditEntry, uint64, error) {
	var out []*protocol.WsAuditEntry
	var next uint64
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(bAudit).Cursor()
		for k, v := c.Seek(u64(afterSeq + 1)); k != nil; k, v = c.Next() {
			if len(out) == limit {
				next = binary.BigEndian.Uint64(k) - 1
				break
			}
			e := &protocol.WsAuditEntry{}
			if err := unmarshal(v, e); err != nil {
				return err
			}
			out = append(out, e)
		}
		return nil
	})
	return out, next, err
}
