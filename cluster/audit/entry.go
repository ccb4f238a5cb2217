package audit

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"time"
)

// Kind says what an entry records.
type Kind uint8

// The entry kinds. Their numbers are part of the canonical encoding:
// never renumber one, only add.
const (
	// KindClaimed: a node (Node) claimed a request: the first time the
	// cluster records it, or again after a release.
	KindClaimed Kind = iota + 1
	// KindDecided: the callback handler answered about a request: Action,
	// Reason, HandlerKey (the key that verified the answer, or "auto"),
	// Digest (of the content it was asked about) and Detail (what the
	// request asks: amounts, destinations).
	KindDecided
	// KindReserved: a presignature (Key, Presignature) was reserved for a
	// request.
	KindReserved
	// KindCompleted: a request reached its outcome (Outcome, Reason).
	KindCompleted
	// KindReleased: a request went back to unclaimed when its owner
	// (Subject) was released or handed it back; Number presignatures were
	// burned.
	KindReleased
	// KindInitialized: the member table started, with Node its first
	// member.
	KindInitialized
	// KindMemberAdded and KindMemberRemoved name the member in Subject;
	// an added member's location and enclave kind are in Detail.
	KindMemberAdded
	KindMemberRemoved
	// KindPolicySet: the attestation policy changed; Number is its rule
	// count.
	KindPolicySet
	// KindJoinTokenIssued: a join token (its id in Subject, never its
	// secret) was issued.
	KindJoinTokenIssued
	// KindAPIUserAdded: an API user (Subject) was paired.
	KindAPIUserAdded
	// KindKeyRecordAdded: a key record (Subject) of API user APIUser was
	// recorded at pairing.
	KindKeyRecordAdded
	// KindCallbackSet: the cluster's callback handler changed: its URL in
	// Detail (empty: approve by itself), its key's fingerprint in
	// HandlerKey.
	KindCallbackSet
	// KindUserCallbackSet and KindUserCallbackCleared: an API user's own
	// handler was recorded or removed, as KindCallbackSet.
	KindUserCallbackSet
	KindUserCallbackCleared
	// KindKeyringRotated and KindKeyringAdopted: the keyring was rotated
	// to version Number, or member Node adopted it.
	KindKeyringRotated
	KindKeyringAdopted
	// KindRecordsResealed: Number sealed records moved to a newer keyring
	// version.
	KindRecordsResealed
	// KindTruncated: the entries up to Number were exported and dropped;
	// Digest is the hash of entry Number, the anchor of what remains.
	KindTruncated
	// KindKeyRefreshed: a refresh replaced the MPC key share in key record
	// Key (of API user APIUser); Number live presignatures of the old
	// share were burned.
	KindKeyRefreshed
	// KindRestored: a snapshot taken at raft index Number was merged into
	// the state (Node restored it); Digest is the snapshot's own audit
	// head (seq:hash), which links the chains, and Detail counts what the
	// restore burned, released and brought back.
	KindRestored
	// KindKeyringExported: member Node handed out the keyring encrypted to
	// operators' recovery keys: the age recipients in Detail, Number of
	// them.
	KindKeyringExported
	kindEnd
)

var kindNames = [...]string{
	KindClaimed:             "claimed",
	KindDecided:             "decided",
	KindReserved:            "reserved",
	KindCompleted:           "completed",
	KindReleased:            "released",
	KindInitialized:         "initialized",
	KindMemberAdded:         "member-added",
	KindMemberRemoved:       "member-removed",
	KindPolicySet:           "policy-set",
	KindJoinTokenIssued:     "join-token-issued",
	KindAPIUserAdded:        "api-user-added",
	KindKeyRecordAdded:      "key-record-added",
	KindCallbackSet:         "callback-set",
	KindUserCallbackSet:     "user-callback-set",
	KindUserCallbackCleared: "user-callback-cleared",
	KindKeyringRotated:      "keyring-rotated",
	KindKeyringAdopted:      "keyring-adopted",
	KindRecordsResealed:     "records-resealed",
	KindTruncated:           "truncated",
	KindKeyRefreshed:        "key-refreshed",
	KindRestored:            "restored",
	KindKeyringExported:     "keyring-exported",
}

// String returns the kind's lowercase name.
func (k Kind) String() string {
	if k > 0 && k < kindEnd {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Valid reports whether k is a kind this build knows.
func (k Kind) Valid() bool { return k > 0 && k < kindEnd }

// ParseKind parses a kind's name.
func ParseKind(s string) (Kind, error) {
	for k := KindClaimed; k < kindEnd; k++ {
		if kindNames[k] == s {
			return k, nil
		}
	}
	return 0, fmt.Errorf("%w: unknown entry kind %q", ErrSegment, truncate(s, 32))
}

// MarshalText encodes the kind by name.
func (k Kind) MarshalText() ([]byte, error) {
	if !k.Valid() {
		return nil, fmt.Errorf("audit: unknown entry kind %d", uint8(k))
	}
	return []byte(k.String()), nil
}

// UnmarshalText decodes a kind's name.
func (k *Kind) UnmarshalText(b []byte) error {
	v, err := ParseKind(string(b))
	if err != nil {
		return err
	}
	*k = v
	return nil
}

// HashSize is the size of an entry's hash.
const HashSize = sha256.Size

// Digest is an entry's hash: SHA-256 over the previous entry's hash and
// the entry's canonical encoding. It encodes as lowercase hex.
type Digest [HashSize]byte

// String returns the digest in hex.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// MarshalText encodes the digest in hex.
func (d Digest) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText decodes a digest from hex.
func (d *Digest) UnmarshalText(b []byte) error {
	v, err := ParseDigest(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// ParseDigest decodes a hex digest.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != HashSize {
		return d, fmt.Errorf("%w: a hash must be %d hex digits", ErrSegment, 2*HashSize)
	}
	copy(d[:], b)
	return d, nil
}

// Entry is one record of the audit log. Fields that do not apply to the
// kind are empty. No field ever holds a secret: ids, node names, outcomes,
// reasons, key fingerprints and content digests only.
type Entry struct {
	// Seq numbers the entry: 1 for the first, then one more each.
	Seq uint64 `json:"seq"`
	// Index is the raft index of the command that made the entry.
	Index uint64 `json:"index"`
	// Time is the proposer's timestamp of that command (never the time it
	// was applied, so that every node records the same).
	Time time.Time `json:"time"`
	Kind Kind      `json:"kind"`
	// Node is the node that proposed the command.
	Node string `json:"node,omitempty"`
	// Request and APIUser name the request and its API user.
	Request string `json:"request,omitempty"`
	APIUser string `json:"api_user,omitempty"`
	// Subject names what a change is about: a member, a record, a join
	// token, a released node.
	Subject string `json:"subject,omitempty"`
	// Key and Presignature name a reserved presignature.
	Key          string `json:"key,omitempty"`
	Presignature string `json:"presignature,omitempty"`
	// Action is the callback handler's answer (APPROVE, REJECT, IGNORE).
	Action string `json:"action,omitempty"`
	// Outcome is a request's outcome (signed, approved, rejected, ignored,
	// failed).
	Outcome string `json:"outcome,omitempty"`
	// Reason explains a decision or an outcome.
	Reason string `json:"reason,omitempty"`
	// HandlerKey identifies the callback handler's key: a fingerprint of
	// its public key, or "auto" when the cluster approves by itself.
	HandlerKey string `json:"handler_key,omitempty"`
	// Digest is a hex digest the entry vouches for: the content the
	// handler decided on, or the anchor hash of a truncation.
	Digest string `json:"digest,omitempty"`
	// Detail is a short description: what a request asks (amounts,
	// destinations), a member's location, a handler's URL.
	Detail string `json:"detail,omitempty"`
	// Number is a count or version: presignatures burned, a keyring
	// version, records resealed, policy rules, a truncation's last entry.
	Number uint64 `json:"number,omitempty"`
	// Hash chains the entry to the one before it.
	Hash Digest `json:"hash"`
}

// encodingVersion starts every canonical encoding, so that a later format
// can never hash the same as this one.
const encodingVersion = "coterie-audit/1"

// Canonical returns the entry's canonical encoding, which its hash covers:
// every field but Hash, in a fixed order, numbers as 8 bytes big-endian and
// strings with a length prefix. Equal entries encode to equal bytes.
func (e *Entry) Canonical() []byte {
	strs := [...]string{e.Node, e.Request, e.APIUser, e.Subject, e.Key, e.Presignature,
		e.Action, e.Outcome, e.Reason, e.HandlerKey, e.Digest, e.Detail}
	n := len(encodingVersion) + 8*4 + 1
	for _, s := range strs {
		n += binary.MaxVarintLen64 + len(s)
	}
	b := make([]byte, 0, n)
	b = append(b, encodingVersion...)
	b = binary.BigEndian.AppendUint64(b, e.Seq)
	b = binary.BigEndian.AppendUint64(b, e.Index)
	b = binary.BigEndian.AppendUint64(b, uint64(e.Time.UnixNano()))
	b = append(b, byte(e.Kind))
	b = binary.BigEndian.AppendUint64(b, e.Number)
	for _, s := range strs {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return b
}

// Hash returns the hash of e chained after prev.
func Hash(prev Digest, e *Entry) Digest {
	h := sha256.New()
	h.Write(prev[:])
	h.Write(e.Canonical())
	var d Digest
	h.Sum(d[:0])
	return d
}

// Size returns the entry's size for retention: its canonical encoding and
// its hash.
func (e *Entry) Size() int { return len(e.Canonical()) + HashSize }

// truncate cuts s to at most n bytes, for error messages.
func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}

// AutoKeyID is the HandlerKey of a decision the cluster made by itself,
// with no callback handler configured.
const AutoKeyID = "auto"

// KeyID returns the id the audit log gives a callback handler's public key
// (PKIX DER): "sha256:" and the first 16 hex digits of its SHA-256. An
// empty key gives "".
func KeyID(pkix []byte) string {
	if len(pkix) == 0 {
		return ""
	}
	d := sha256.Sum256(pkix)
	return "sha256:" + hex.EncodeToString(d[:8])
}
