package snapfile

import (
	"bytes"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"

	"github.com/coterie-mpc/coterie/cluster"
)

// Summary describes a state without the keyring: counts and public
// fields only.
type Summary struct {
	ClusterID    string `json:"cluster_id"`
	AppliedIndex uint64 `json:"applied_index"`
	// Members are the member table's node ids, sorted.
	Members []string `json:"members"`
	// KeyringVersion is the cluster keyring's version.
	KeyringVersion uint32 `json:"keyring_version"`
	APIUsers       int    `json:"api_users"`
	KeyRecords     int    `json:"key_records"`
	// Requests counts the retained requests by status.
	Requests map[string]int `json:"requests"`
	// Pools counts each key's presignatures by status.
	Pools map[string]map[string]int `json:"pools"`
	// Signer is the member whose identity key signed the file, "" when the
	// state's member table has no such key.
	Signer string `json:"signer"`
}

// Summarize decodes state as the FSM does (refusing one that breaks its
// invariants) and describes it; identityKey (hex, from the header) is
// looked up in its member table.
func Summarize(state []byte, identityKey string) (Summary, error) {
	f := cluster.NewFSM()
	if err := f.Restore(io.NopCloser(bytes.NewReader(state))); err != nil {
		return Summary{}, err
	}
	s := Summary{
		ClusterID: f.ClusterID(), AppliedIndex: f.AppliedIndex(), KeyringVersion: f.KeyringState().Version,
		APIUsers: len(f.APIUsers()), KeyRecords: len(f.KeyRecords()),
		Requests: map[string]int{}, Pools: map[string]map[string]int{},
	}
	for _, m := range f.Members() {
		s.Members = append(s.Members, m.ID)
	}
	slices.Sort(s.Members)
	if pub, err := hex.DecodeString(identityKey); err == nil && len(pub) == ed25519.PublicKeySize {
		s.Signer, _ = f.Member(ed25519.PublicKey(pub))
	}
	for _, r := range f.Requests() {
		s.Requests[r.Status.String()]++
	}
	for _, p := range f.Presignatures() {
		if s.Pools[p.KeyID] == nil {
			s.Pools[p.KeyID] = map[string]int{}
		}
		s.Pools[p.KeyID][p.Status.String()]++
	}
	return s, nil
}

// Keys returns the pool keys of s, sorted.
func (s Summary) Keys() []string { return slices.Sorted(maps.Keys(s.Pools)) }

// ErrSigner is returned by Check when a file was signed by a key that is
// not a member of the cluster its state holds.
var ErrSigner = errors.New("snapfile: signed by a key that is not a member of the cluster it holds")

// Check reads a snapshot file (Read), summarises its state (Summarize),
// and checks that a member of the cluster it holds signed it and that the
// header names the state's cluster and index. An error wraps ErrFormat,
// ErrChecksum, ErrSignature or ErrSigner, or says why the state does not
// decode.
func Check(r io.Reader) (Header, []byte, Summary, error) {
	h, state, err := Read(r)
	if err != nil {
		return h, nil, Summary{}, err
	}
	s, err := Summarize(state, h.IdentityKey)
	switch {
	case err != nil:
		return h, nil, s, fmt.Errorf("snapfile: the state: %w", err)
	case s.Signer == "":
		return h, nil, s, fmt.Errorf("%w (key %s)", ErrSigner, h.IdentityKey)
	case s.ClusterID != h.ClusterID || s.AppliedIndex != h.Index:
		return h, nil, s, fmt.Errorf("%w: the header names cluster %s at index %d, the state is cluster %s at index %d",
			ErrFormat, h.ClusterID, h.Index, s.ClusterID, s.AppliedIndex)
	}
	return h, state, s, nil
}
