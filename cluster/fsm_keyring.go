package cluster

import (
	"bytes"
	"crypto/sha256"
	"maps"
	"slices"

	"github.com/coterie-mpc/coterie/enclave/keyring"
	"github.com/coterie-mpc/coterie/protocol"
)

// Limits of rotations, constants like the command limits.
const (
	// maxWrappedKey bounds one wrapped copy: HPKE's encapsulated key, the
	// 32-byte key and the tag are 80 bytes.
	maxWrappedKey = 256
	// keyCheckSize is the size of a rotation's check value (SHA-256).
	keyCheckSize = 32
	// firstKeyringVersion is the version every cluster starts with
	// (keyring.Generate); the FSM records only later ones.
	firstKeyringVersion = 1
)

const (
	sealedPresignature = protocol.ClusterSealedKind_CLUSTER_SEALED_KIND_PRESIGNATURE
	sealedAPIUser      = protocol.ClusterSealedKind_CLUSTER_SEALED_KIND_API_USER
	sealedKeyRecord    = protocol.ClusterSealedKind_CLUSTER_SEALED_KIND_KEY_RECORD
)

// keyringVersion returns the cluster's current keyring version.
func (s *state) keyringVersion() uint32 {
	if n := len(s.rotations); n > 0 {
		return s.rotations[n-1].GetVersion()
	}
	return firstKeyringVersion
}

// rotateKeyring records a new keyring version, proposed by a member, with
// exactly one copy for each current member, wrapped to the identity key
// the member table holds for it. A copy for anyone else (a removed member)
// or a missing copy refuses the whole rotation, so no member is left
// without the version and no one outside the table ever gets it. The
// version must be the next one: a member adopts versions in order (it
// reports the highest it holds with every one below it), so a skipped
// version would leave every member short of the cluster's for ever, and
// nothing would be re-encrypted again.
func (s *state) rotateKeyring(node string, at int64, c *protocol.ClusterKeyringRotated) ([]Event, error) {
	if _, err := s.member(node); err != nil {
		return nil, err
	}
	if cur := s.keyringVersion(); c.GetVersion() != cur+1 {
		return nil, errorf(ErrKeyring, "version %d is not the one after the cluster's %d (a replayed, stale or skipping rotation)", c.GetVersion(), cur)
	}
	if err := s.checkCopies(c.GetCopies(), true); err != nil {
		return nil, err
	}
	rot := &protocol.ClusterKeyringVersion{
		Version: c.GetVersion(), Check: slices.Clone(c.GetCheck()), RotatedBy: node, RotatedAtUnixNano: at,
	}
	// validateCopies made sure the copies are sorted by member.
	for _, w := range c.GetCopies() {
		rot.Copies = append(rot.Copies, &protocol.ClusterWrappedKey{
			MemberId: w.GetMemberId(), IdentityKey: slices.Clone(w.GetIdentityKey()), Wrapped: slices.Clone(w.GetWrapped()),
		})
	}
	s.rotations = append(s.rotations, rot)
	s.pruneRotations()
	return []Event{{Kind: EventKeyringRotated, Node: node, KeyVersion: c.GetVersion()}}, nil
}

// checkCopies checks a rotation's copies against the member table: each
// for a current member, wrapped to the identity key the table holds for
// it, and, when every is set, one for every member. The copies passed
// validateCopies (sorted, one per member).
func (s *state) checkCopies(copies []*protocol.ClusterWrappedKey, every bool) error {
	for _, w := range copies {
		m, ok := s.members[w.GetMemberId()]
		switch {
		case !ok:
			return errorf(ErrKeyring, "a copy for %q, which is not a member", w.GetMemberId())
		case !bytes.Equal(m.GetIdentityKey(), w.GetIdentityKey()):
			return errorf(ErrKeyring, "the copy for member %q is wrapped to another identity key", w.GetMemberId())
		}
	}
	if every && len(copies) != len(s.members) {
		for _, id := range slices.Sorted(maps.Keys(s.members)) {
			if !slices.ContainsFunc(copies, func(w *protocol.ClusterWrappedKey) bool { return w.GetMemberId() == id }) {
				return errorf(ErrKeyring, "member %q has no wrapped copy", id)
			}
		}
	}
	return nil
}

// adoptedFloor returns the lowest version every current member adopted; a
// member that never reported holds the first version.
func (s *state) adoptedFloor() uint32 {
	floor := s.keyringVersion()
	for id := range s.members {
		floor = min(floor, max(s.adopted[id], firstKeyringVersion))
	}
	return floor
}

// adoptKeyring records that the proposer holds version sealed, and drops
// its copies of that version and older ones: it needs them no more.
func (s *state) adoptKeyring(node string, c *protocol.ClusterKeyringAdopted) ([]Event, error) {
	if _, err := s.member(node); err != nil {
		return nil, err
	}
	if v := c.GetVersion(); v > s.keyringVersion() {
		return nil, errorf(ErrKeyring, "version %d was never rotated in; the cluster's is %d", v, s.keyringVersion())
	}
	if c.GetVersion() <= s.adopted[node] {
		return nil, nil
	}
	s.adopted[node] = c.GetVersion()
	for _, r := range s.rotations {
		if r.GetVersion() <= c.GetVersion() {
			r.Copies = slices.DeleteFunc(r.Copies, func(w *protocol.ClusterWrappedKey) bool { return w.GetMemberId() == node })
		}
	}
	s.pruneRotations()
	return []Event{{Kind: EventKeyringAdopted, Node: node, KeyVersion: c.GetVersion()}}, nil
}

// forgetKeyringMember drops a removed member's copies and adoption: a
// member that leaves keeps nothing it could open later, and one that
// rejoins gets the whole keyring through the attested join instead.
func (s *state) forgetKeyringMember(id string) {
	delete(s.adopted, id)
	for _, r := range s.rotations {
		r.Copies = slices.DeleteFunc(r.Copies, func(w *protocol.ClusterWrappedKey) bool { return w.GetMemberId() == id })
	}
	s.pruneRotations()
}

// pruneRotations forgets rotations every member has adopted, except the
// latest, which names the cluster's version and its check value.
func (s *state) pruneRotations() {
	if len(s.rotations) == 0 {
		return
	}
	latest := s.rotations[len(s.rotations)-1]
	s.rotations = slices.DeleteFunc(s.rotations, func(r *protocol.ClusterKeyringVersion) bool {
		return len(r.GetCopies()) == 0 && r != latest
	})
}

// resealRecords replaces sealed parts with their re-encryption under a
// newer version, proposed by a member. Entries whose record is gone, or is
// sealed under the same or a newer version already, are skipped: a reseal
// is idempotent, and one that raced a spend or another reseal is harmless.
// A version some current member has not adopted is refused here, at
// apply, whatever the proposer read: a member without it could not open
// the record, and the proposer's view of the adoptions may be stale (a
// member added since, or a replica behind).
func (s *state) resealRecords(node string, c *protocol.ClusterRecordsResealed) ([]Event, error) {
	if _, err := s.member(node); err != nil {
		return nil, err
	}
	floor := s.adoptedFloor()
	for _, r := range c.GetRecords() {
		// validateCommand made sure the header parses.
		if v, _ := keyring.CiphertextVersion(r.GetSealed()); v > floor {
			return nil, errorf(ErrKeyring, "record %q resealed under version %d, newer than %d, the highest every member adopted", r.GetId(), v, floor)
		}
	}
	n := 0
	for _, r := range c.GetRecords() {
		var sealed *[]byte
		switch r.GetKind() {
		case sealedPresignature:
			if kp := s.pools[r.GetKeyId()]; kp != nil {
				if p := kp.live[r.GetId()]; p != nil {
					sealed = &p.Sealed
				}
			}
		case sealedAPIUser:
			if u := s.users[r.GetId()]; u != nil {
				sealed = &u.Sealed
			}
		case sealedKeyRecord:
			if k := s.keys[r.GetId()]; k != nil {
				sealed = &k.Sealed
			}
		}
		if sealed == nil {
			continue
		}
		if h := r.GetReplacesSha256(); h != nil {
			if was := sha256.Sum256(*sealed); !bytes.Equal(h, was[:]) {
				continue // replaced since it was read (a key refresh)
			}
		}
		old, _ := keyring.CiphertextVersion(*sealed)
		if v, _ := keyring.CiphertextVersion(r.GetSealed()); v <= old {
			continue
		}
		*sealed = slices.Clone(r.GetSealed())
		n++
	}
	if n == 0 {
		return nil, nil
	}
	return []Event{{Kind: EventRecordsResealed, Node: node, Count: n}}, nil
}

func validateKeyringRotated(c *protocol.ClusterKeyringRotated) error {
	switch {
	case c.GetVersion() <= firstKeyringVersion:
		return errorf(ErrBadCommand, "keyring version %d, want above %d", c.GetVersion(), firstKeyringVersion)
	case len(c.GetCheck()) != keyCheckSize:
		return errorf(ErrBadCommand, "keyring check of %d bytes, want %d", len(c.GetCheck()), keyCheckSize)
	case len(c.GetCopies()) == 0 || len(c.GetCopies()) > maxMembers:
		return errorf(ErrBadCommand, "%d wrapped copies, want 1..%d", len(c.GetCopies()), maxMembers)
	}
	return validateCopies(c.GetCopies())
}

// validateCopies checks wrapped copies: ids in strictly ascending order,
// identity keys of 32 bytes, copies of bounded size.
func validateCopies(copies []*protocol.ClusterWrappedKey) error {
	prev := ""
	for _, w := range copies {
		if err := checkID("wrapped copy member", w.GetMemberId()); err != nil {
			return err
		}
		switch {
		case w.GetMemberId() <= prev:
			return errorf(ErrBadCommand, "wrapped copies out of order or twice at %q", w.GetMemberId())
		case len(w.GetIdentityKey()) != 32:
			return errorf(ErrBadCommand, "copy for %q: identity key of %d bytes, want 32", w.GetMemberId(), len(w.GetIdentityKey()))
		case len(w.GetWrapped()) == 0 || len(w.GetWrapped()) > maxWrappedKey:
			return errorf(ErrBadCommand, "copy for %q: %d bytes, want 1..%d", w.GetMemberId(), len(w.GetWrapped()), maxWrappedKey)
		}
		prev = w.GetMemberId()
	}
	return nil
}

func validateRecordsResealed(c *protocol.ClusterRecordsResealed) error {
	n := len(c.GetRecords())
	if n == 0 || n > maxBatch {
		return errorf(ErrBadCommand, "%d resealed records, want 1..%d", n, maxBatch)
	}
	for _, r := range c.GetRecords() {
		if err := checkID("resealed record", r.GetId()); err != nil {
			return err
		}
		switch r.GetKind() {
		case sealedPresignature:
			if err := checkID("resealed presignature key", r.GetKeyId()); err != nil {
				return err
			}
		case sealedAPIUser, sealedKeyRecord:
			if r.GetKeyId() != "" {
				return errorf(ErrBadCommand, "resealed record %q: a key id applies to presignatures only", r.GetId())
			}
		default:
			return errorf(ErrBadCommand, "resealed record %q: kind %v", r.GetId(), r.GetKind())
		}
		if _, err := keyring.CiphertextVersion(r.GetSealed()); err != nil {
			return errorf(ErrBadCommand, "resealed record %q: not a keyring ciphertext", r.GetId())
		}
		if h := r.GetReplacesSha256(); h != nil && len(h) != sha256.Size {
			return errorf(ErrBadCommand, "resealed record %q: a hash of %d bytes, want %d", r.GetId(), len(h), sha256.Size)
		}
	}
	return nil
}

// encodeKeyring adds the rotations and adoptions to a snapshot.
func encodeKeyring(st *state, out *protocol.ClusterState) {
	out.KeyringVersions = st.rotations
	for _, id := range slices.Sorted(maps.Keys(st.adopted)) {
		out.KeyringAdopted = append(out.KeyringAdopted, &protocol.ClusterKeyringAck{MemberId: id, Version: st.adopted[id]})
	}
}

// decodeKeyring restores the rotations and adoptions, checking them as the
// commands that made them would, after the member table was restored: the
// rotations in ascending order, each with the checks of rotateKeyring
// (copies only for current members, wrapped to the identity keys the
// member table holds); the adoptions for members only, of versions rotated
// in, with no copy left for a version its member adopted (adoptKeyring
// drops them); and pruning's rule that only the latest rotation may be
// left without copies.
func decodeKeyring(st *state, in *protocol.ClusterState) error {
	bad := func(format string, args ...any) error {
		return errorf(ErrBadCommand, "snapshot: "+format, args...)
	}
	var prev uint32 = firstKeyringVersion
	rots := in.GetKeyringVersions()
	for i, r := range rots {
		if r.GetVersion() <= prev || len(r.GetCheck()) != keyCheckSize {
			return bad("keyring version %d is out of order or malformed", r.GetVersion())
		}
		if len(r.GetCopies()) > maxMembers {
			return bad("keyring version %d has %d copies, more than %d", r.GetVersion(), len(r.GetCopies()), maxMembers)
		}
		if err := validateCopies(r.GetCopies()); err != nil {
			return err
		}
		if err := st.checkCopies(r.GetCopies(), false); err != nil {
			return bad("keyring version %d: %v", r.GetVersion(), err)
		}
		if len(r.GetCopies()) == 0 && i != len(rots)-1 {
			return bad("keyring version %d has no copies left but is not the latest: it would have been pruned", r.GetVersion())
		}
		prev = r.GetVersion()
		st.rotations = append(st.rotations, r)
	}
	for _, a := range in.GetKeyringAdopted() {
		if _, dup := st.adopted[a.GetMemberId()]; dup || a.GetVersion() > prev || st.members[a.GetMemberId()] == nil {
			return bad("keyring adoption of %q is malformed", a.GetMemberId())
		}
		st.adopted[a.GetMemberId()] = a.GetVersion()
	}
	for _, r := range st.rotations {
		for _, w := range r.GetCopies() {
			if st.adopted[w.GetMemberId()] >= r.GetVersion() {
				return bad("keyring version %d keeps a copy for %q, which adopted it", r.GetVersion(), w.GetMemberId())
			}
		}
	}
	return nil
}
