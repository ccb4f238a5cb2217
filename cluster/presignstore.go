package cluster

import (
	"context"
	"errors"
	"fmt"

	"github.com/coterie-mpc/coterie/protocol/mpc"
)

// Cipher seals and opens the records the FSM keeps, binding each
// ciphertext to its record id. The enclave keyring (*keyring.Keyring)
// implements it. Implementations must be safe for concurrent use and must
// not put plaintext in their errors.
type Cipher interface {
	Encrypt(recordID string, plaintext []byte) ([]byte, error)
	Decrypt(recordID string, ciphertext []byte) ([]byte, error)
}

// ErrNoRequest is returned by PresignStore.Take when the store was made
// without a request to reserve for.
var ErrNoRequest = errors.New("cluster: presignature store has no request to reserve for")

// presignCluster is what a PresignStore needs from the cluster.
type presignCluster interface {
	AddPresignatures(ctx context.Context, key string, ps []SealedPresignature) error
	Reserve(ctx context.Context, request string, p PresignatureRef) error
	Presignature(key, id string) (PresignatureInfo, bool)
}

var _ presignCluster = (*Cluster)(nil)

// PresignStoreConfig configures a PresignStore.
type PresignStoreConfig struct {
	// Cluster is the node's cluster.
	Cluster *Cluster
	// Cipher seals presignatures before they enter the raft log.
	Cipher Cipher
	// KeyID names the key whose pool the store reads and writes.
	KeyID string
	// RequestID is the request that Take reserves presignatures for; this
	// node must own it. A store that only adds presignatures (the
	// PresignPool's) leaves it empty.
	RequestID string
}

// Validate reports every problem with the config at once.
func (c PresignStoreConfig) Validate() error {
	var errs []error
	if c.Cluster == nil {
		errs = append(errs, errors.New("presign store config: Cluster is required"))
	}
	if c.Cipher == nil {
		errs = append(errs, errors.New("presign store config: Cipher is required"))
	}
	if err := checkID("key", c.KeyID); err != nil {
		errs = append(errs, fmt.Errorf("presign store config: KeyID: %w", err))
	}
	if err := checkOptionalID("request", c.RequestID); err != nil {
		errs = append(errs, fmt.Errorf("presign store config: RequestID: %w", err))
	}
	return errors.Join(errs...)
}

// PresignStore is the raft-backed mpc.PresignStore of one key's pool.
//
// Put seals the presignature with the Cipher (the record id, and so the
// associated data, is PresignatureRecordID) and commits it to the pool; the
// raft log and snapshots hold only the ciphertext. Take commits a Reserve
// of the presignature for the store's request before it opens anything, so
// of two nodes racing to take one presignature, exactly one wins (I1),
// whichever node each runs on.
//
// The store is safe for concurrent use. Its errors match both the mpc
// sentinels (mpc.ErrPresignatureUsed, ErrPresignatureNotFound,
// ErrPresignatureExists) and the cluster's. After an error that matches
// ErrUncertain the presignature may or may not be reserved (for Take) or
// added (for Put): the caller must not retry it but move on to another
// presignature, or discard the one it tried to add.
type PresignStore struct {
	c       presignCluster
	cipher  Cipher
	key     string
	request string
}

var _ mpc.PresignStore = (*PresignStore)(nil)

// NewPresignStore returns a store over one key's pool.
func NewPresignStore(cfg PresignStoreConfig) (*PresignStore, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &PresignStore{c: cfg.Cluster, cipher: cfg.Cipher, key: cfg.KeyID, request: cfg.RequestID}, nil
}

// PresignatureRecordID is the record id that binds a sealed presignature of
// key to its id.
func PresignatureRecordID(key, id string) string { return "presig/" + key + "/" + id }

// Put implements mpc.PresignStore.
func (s *PresignStore) Put(ctx context.Context, p *mpc.Presignature) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	id := p.ID().String()
	plain, err := p.MarshalBinary()
	if err != nil {
		return fmt.Errorf("cluster: encode presignature %s: %w", id, err)
	}
	ct, err := s.cipher.Encrypt(PresignatureRecordID(s.key, id), plain)
	clear(plain)
	if err != nil {
		return fmt.Errorf("cluster: seal presignature %s: %w", id, err)
	}
	err = s.c.AddPresignatures(ctx, s.key, []SealedPresignature{{ID: id, Sealed: ct}})
	switch {
	case err == nil:
		return nil
	case errors.Is(err, ErrPresignatureExists):
		return fmt.Errorf("%w: %w", mpc.ErrPresignatureExists, err)
	case errors.Is(err, ErrPresignatureUsed), errors.Is(err, ErrPresignatureBurned):
		return fmt.Errorf("%w: %w", mpc.ErrPresignatureUsed, err)
	default:
		return err
	}
}

// Take implements mpc.PresignStore: it reserves the presignature for the
// store's request through raft, then opens it.
func (s *PresignStore) Take(ctx context.Context, id mpc.PresignatureID) (*mpc.Presignature, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if s.request == "" {
		return nil, ErrNoRequest
	}
	ref := PresignatureRef{KeyID: s.key, ID: id.String()}
	err := s.c.Reserve(ctx, s.request, ref)
	switch {
	case err == nil:
	case errors.Is(err, ErrPresignatureUsed), errors.Is(err, ErrPresignatureBurned):
		return nil, fmt.Errorf("%w: %w", mpc.ErrPresignatureUsed, err)
	case errors.Is(err, ErrUnknownPresignature):
		return nil, fmt.Errorf("%w: %w", mpc.ErrPresignatureNotFound, err)
	default:
		return nil, err
	}
	// Propose returned, so the local FSM has applied the reservation.
	info, ok := s.c.Presignature(ref.KeyID, ref.ID)
	if !ok || info.Status != PresignatureReserved || info.RequestID != s.request || len(info.Sealed) == 0 {
		return nil, fmt.Errorf("%w: presignature %s reserved, but not readable from the local replica", ErrInternal, ref.ID)
	}
	plain, err := s.cipher.Decrypt(PresignatureRecordID(ref.KeyID, ref.ID), info.Sealed)
	if err != nil {
		return nil, fmt.Errorf("cluster: open presignature %s: %w", ref.ID, err)
	}
	p, err := mpc.UnmarshalPresignature(plain)
	clear(plain)
	if err != nil {
		return nil, fmt.Errorf("cluster: decode presignature %s: %w", ref.ID, err)
	}
	if p.ID() != id {
		return nil, fmt.Errorf("%w: presignature %s holds another id", ErrInternal, ref.ID)
	}
	return p, nil
}
