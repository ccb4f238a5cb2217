package actors

import (
	"bytes"
	"crypto/ed25519"
	"fmt"

	"github.com/coterie-mpc/coterie/protocol/mpc"
)

// share returns the user's MPC key share, opening its key record once per
// share: again after a refresh replaced it (the record names another
// epoch). It runs off the mailboxes (decoding takes milliseconds).
func (s *System) share(u *userState) (*mpc.KeyShare, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	rec, ok := s.cfg.Cluster.KeyRecord(u.ShareRecordID)
	if !ok {
		return nil, fmt.Errorf("%w: %s not in the cluster", ErrKeyRecord, u.ShareRecordID)
	}
	if u.share != nil && (len(rec.Epoch) == 0 || bytes.Equal(u.share.Epoch(), rec.Epoch)) {
		return u.share, nil
	}
	plain, err := s.cfg.Cipher.Decrypt(rec.ID, rec.Sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrKeyRecord, rec.ID, err)
	}
	defer clear(plain)
	share, err := mpc.UnmarshalKeyShare(plain)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrKeyRecord, u.ShareRecordID, err)
	}
	u.share = share
	return share, nil
}

// approvalKey returns the user's approval key, opening its record once.
func (s *System) approvalKey(u *userState) (ed25519.PrivateKey, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.approval != nil {
		return u.approval, nil
	}
	if u.ApprovalRecordID == "" {
		return nil, fmt.Errorf("%w: user %s has no approval key", ErrKeyRecord, u.ID)
	}
	plain, err := s.open(u.ApprovalRecordID)
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	key, err := approvalKey(plain)
	if err != nil {
		return nil, err
	}
	u.approval = key
	return key, nil
}

// open decrypts a key record; the caller clears the result.
func (s *System) open(id string) ([]byte, error) {
	rec, ok := s.cfg.Cluster.KeyRecord(id)
	if !ok {
		return nil, fmt.Errorf("%w: %s not in the cluster", ErrKeyRecord, id)
	}
	plain, err := s.cfg.Cipher.Decrypt(rec.ID, rec.Sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrKeyRecord, id, err)
	}
	return plain, nil
}
