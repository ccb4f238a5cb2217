package cluster

import (
	"context"
	"errors"
	"fmt"
	"strconv"

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

// ErrNotReserved is returned by PresignStore.Open when the local replica
// does not show the presignature reserved for the request. After a
// committed Reserve that means the FSM broke I1.
var ErrNotReserved = errors.New("cluster: presignature not reserved for the request")

// PresignCluster is what a PresignStore needs from the cluster. *Cluster
// implements it; see its methods for the contracts.
type PresignCluster interface {
	NodeID() string
	AddPresignatures(ctx context.Context, key, reserveFor string, seal func(firstSeq uint64) ([]SealedPresignature, error)) error
	Reserve(ctx context.Context, request string, p PresignatureRef) error
	ReserveNext(ctx context.Context, request, key string) (PresignatureRef, error)
	Presignature(key, id string) (PresignatureInfo, bool)
}

var _ PresignCluster = (*Cluster)(nil)

// PresignStoreConfig configures a PresignStore.
type PresignStoreConfig struct {
	// Cluster is the node's cluster.
	Cluster PresignCluster
	// Cipher seals presignatures before they enter the raft log.
	Cipher Cipher
	// KeyID names the key whose pool the store reads and writes.
	KeyID string
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
	return errors.Join(errs...)
}

// PresignStore is one key's raft-backed presignature pool, as the node's
// actors use it: it is the one place where presignature shares are sealed
// into the pool and opened out of it.
//
// Add seals a presignature under the keyring, with a record id that binds
// the key, this node, its origin number and the presignature's id, and
// commits it to the pool; the raft log and snapshots hold only ciphertext.
// ReserveNext commits a Reserve in which the FSM picks the presignature.
// Open decrypts a presignature only once the local replica shows it
// reserved for the request, so nothing is opened before its Reserve
// committed (I1, I6). For(request) views the pool as an mpc.PresignStore.
//
// The store is safe for concurrent use. After an error that matches
// ErrUncertain the presignature may or may not be reserved (ReserveNext,
// Take) or added (Add, Put): the caller must not retry it but move on, and
// discard a presignature it tried to add.
type PresignStore struct {
	c      PresignCluster
	cipher Cipher
	key    string
}

// NewPresignStore returns the store of one key's pool.
func NewPresignStore(cfg PresignStoreConfig) (*PresignStore, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &PresignStore{c: cfg.Cluster, cipher: cfg.Cipher, key: cfg.KeyID}, nil
}

// PresignatureRecordID is the record id, and so the associated data, of the
// sealed share of presignature id of key, added by node origin under its
// number originSeq. Each part is quoted, so no two tuples share an id.
func PresignatureRecordID(key, origin string, originSeq uint64, id string) string {
	return "presig/" + strconv.Quote(key) + "/" + strconv.Quote(origin) + "/" + strconv.FormatUint(originSeq, 10) + "/" + strconv.Quote(id)
}

// Add seals p and adds it to the pool. With a non-empty reserveFor, the same
// commit reserves it for that request, which this node must own. Its errors
// match the mpc sentinels (mpc.ErrPresignatureExists, ErrPresignatureUsed)
// as well as the cluster's.
func (s *PresignStore) Add(ctx context.Context, p *mpc.Presignature, reserveFor string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	id := p.ID().String()
	self := s.c.NodeID()
	err := s.c.AddPresignatures(ctx, s.key, reserveFor, func(seq uint64) ([]SealedPresignature, error) {
		plain, err := p.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("cluster: encode presignature %s: %w", id, err)
		}
		ct, err := s.cipher.Encrypt(PresignatureRecordID(s.key, self, seq, id), plain)
		clear(plain)
		if err != nil {
			return nil, fmt.Errorf("cluster: seal presignature %s: %w", id, err)
		}
		return []SealedPresignature{{ID: id, OriginSeq: seq, Sealed: ct, KeyEpoch: p.Epoch()}}, nil
	})
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

// ReserveNext reserves the pool's oldest available presignature for
// request; see Cluster.ReserveNext.
func (s *PresignStore) ReserveNext(ctx context.Context, request string) (PresignatureRef, error) {
	return s.c.ReserveNext(ctx, request, s.key)
}

// Open decrypts the presignature ref, which a committed Reserve gave to
// request. It returns ErrNotReserved when the local replica does not show
// it reserved for request (a Reserve that did not commit, or another
// request's presignature), without decrypting anything.
func (s *PresignStore) Open(request string, ref PresignatureRef) (*mpc.Presignature, error) {
	info, ok := s.c.Presignature(ref.KeyID, ref.ID)
	if ref.KeyID != s.key || !ok || info.Status != PresignatureReserved || info.RequestID != request || len(info.Sealed) == 0 {
		return nil, errorf(ErrNotReserved, "key %q, presignature %q, request %q", ref.KeyID, ref.ID, request)
	}
	plain, err := s.cipher.Decrypt(PresignatureRecordID(ref.KeyID, info.Origin, info.OriginSeq, ref.ID), info.Sealed)
	if err != nil {
		return nil, fmt.Errorf("cluster: open presignature %s: %w", ref.ID, err)
	}
	p, err := mpc.UnmarshalPresignature(plain)
	clear(plain)
	if err != nil {
		return nil, fmt.Errorf("cluster: decode presignature %s: %w", ref.ID, err)
	}
	if p.ID().String() != ref.ID {
		return nil, fmt.Errorf("%w: presignature %s holds another id", ErrInternal, ref.ID)
	}
	return p, nil
}

// For returns the pool as an mpc.PresignStore whose Take reserves for
// request, which this node must own.
func (s *PresignStore) For(request string) mpc.PresignStore { return requestView{s, request} }

// requestView is a PresignStore seen by one request.
type requestView struct {
	s       *PresignStore
	request string
}

// Put implements mpc.PresignStore.
func (v requestView) Put(ctx context.Context, p *mpc.Presignature) error { return v.s.Add(ctx, p, "") }

// Take implements mpc.PresignStore: it commits a Reserve of the
// presignature for the request, then opens it.
func (v requestView) Take(ctx context.Context, id mpc.PresignatureID) (*mpc.Presignature, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ref := PresignatureRef{KeyID: v.s.key, ID: id.String()}
	err := v.s.c.Reserve(ctx, v.request, ref)
	switch {
	case err == nil:
	case errors.Is(err, ErrPresignatureUsed), errors.Is(err, ErrPresignatureBurned):
		return nil, fmt.Errorf("%w: %w", mpc.ErrPresignatureUsed, err)
	case errors.Is(err, ErrUnknownPresignature):
		return nil, fmt.Errorf("%w: %w", mpc.ErrPresignatureNotFound, err)
	default:
		return nil, err
	}
	return v.s.Open(v.request, ref)
}
