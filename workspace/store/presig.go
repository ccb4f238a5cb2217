package store

import (
	"bytes"
	"fmt"
	"maps"

	"github.com/coterie-mpc/coterie/protocol"
	bolt "go.etcd.io/bbolt"
)

// PutPresignature stores the cloud co-signers' encrypted shares (party ID ->
// ciphertext) of a new presignature of an ACTIVE signer. Errors:
// ErrUnknownUser, ErrUserState, ErrPresignatureExists, and
// ErrPresignatureUsed for an ID that was already used or burned: an ID is
// never stored twice.
func (s *Store) PutPresignature(userID string, id [32]byte, shares map[string][]byte) error {
	shares = maps.Clone(shares)
	return s.update(func(t *txn) error {
		u, err := t.user(userID)
		if err != nil {
			return err
		}
		if u.State != protocol.WsUserState_WS_USER_STATE_ACTIVE || u.SigningKey == nil {
			return fmt.Errorf("%w: user %s has no signing key", ErrUserState, userID)
		}
		b := t.tx.Bucket(bPresigs)
		key := userKey(userID, id[:])
		rec, ok, err := get(b, key, &protocol.WsPresignRecord{})
		if err != nil {
			return err
		}
		if ok && rec.UsedAt != 0 {
			return fmt.Errorf("%w: %x", ErrPresignatureUsed, id)
		}
		if ok {
			return fmt.Errorf("%w: %x", ErrPresignatureExists, id)
		}
		return put(b, key, &protocol.WsPresignRecord{UserId: userID, Shares: shares, CreatedAt: t.nanos()})
	})
}

// burnPresignatures retires every unused presignature of a user.
func (t *txn) burnPresignatures(userID, reason string) (int, error) {
	b := t.tx.Bucket(bPresigs)
	prefix := userKey(userID, nil)
	type kv struct {
		k   []byte
		rec *protocol.WsPresignRecord
	}
	var burn []kv
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		rec := &protocol.WsPresignRecord{}
		if err := unmarshal(v, rec); err != nil {
			return 0, err
		}
		if rec.UsedAt == 0 {
			burn = append(burn, kv{append([]byte(nil), k...), rec})
		}
	}
	for _, e := range burn {
		e.rec.Shares = nil
		e.rec.UsedAt = t.nanos()
		e.rec.BurnedReason = reason
		if err := put(b, e.k, e.rec); err != nil {
			return 0, err
		}
	}
	return len(burn), nil
}

// Presignature returns the record of one presignature of a user, used or
// not, and whether it exists.
func (s *Store) Presignature(userID string, id [32]byte) (*protocol.WsPresignRecord, bool, error) {
	var out *protocol.WsPresignRecord
	var ok bool
	err := s.view(func(tx *bolt.Tx) error {
		var err error
		out, ok, err = get(tx.Bucket(bPresigs), userKey(userID, id[:]), &protocol.WsPresignRecord{})
		return err
	})
	return out, ok, err
}
