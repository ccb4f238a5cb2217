package keyring

import (
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"errors"
	"fmt"

	"filippo.io/edwards25519"

	"github.com/coterie-mpc/coterie/enclave/internal/wire"
)

// Errors of a cluster-wide rotation.
var (
	// ErrVersionConflict is returned by Add when the keyring already holds
	// the version with another key.
	ErrVersionConflict = errors.New("keyring: the keyring holds this version with another key")

	// ErrKeyMismatch is returned by UnwrapVersion when the copy opens but
	// the key inside does not match the rotation's check value: the
	// proposer wrapped different keys to different members.
	ErrKeyMismatch = errors.New("keyring: the unwrapped key does not match the rotation's check value")

	// ErrBadRecipient is returned by WrapVersion when the recipient's
	// identity key is not a valid Ed25519 public key.
	ErrBadRecipient = errors.New("keyring: recipient identity key is not a valid Ed25519 public key")
)

// VersionKey is one key version on its own: what a rotation hands to each
// member. It lives in memory only; Destroy clears it.
type VersionKey struct {
	version uint32
	raw     []byte
}

// NewVersionKey returns a fresh random key for version.
func NewVersionKey(version uint32) *VersionKey {
	raw := make([]byte, KeySize)
	rand.Read(raw)
	return &VersionKey{version: version, raw: raw}
}

// Version returns the key's version.
func (v *VersionKey) Version() uint32 { return v.version }

// Check returns the key's check value, a commitment that may be published
// (it enters the raft log): SHA-256 over a domain label, the version and
// the key. The key is 256 uniformly random bits, so the check reveals
// nothing usable about it, yet every member can tell whether the copy it
// unwrapped is the key the rest of the cluster got.
func (v *VersionKey) Check() []byte { return keyCheck(v.version, v.raw) }

func keyCheck(version uint32, raw []byte) []byte {
	h := sha256.New()
	h.Write([]byte("coterie/keyring/v1/key-check\x00"))
	h.Write(wire.AppendU32(nil, version))
	h.Write(raw)
	return h.Sum(nil)
}

// Destroy clears the key from memory.
func (v *VersionKey) Destroy() { clear(v.raw) }

// Add adds v to the keyring and makes it current when it is the highest
// version. Adding a version the keyring holds with the same key changes
// nothing (a replayed rotation); with another key it fails with
// ErrVersionConflict. The caller persists the keyring (MarshalSealed)
// before it relies on the version.
func (k *Keyring) Add(v *VersionKey) error {
	if v.version == 0 {
		return fmt.Errorf("%w: version 0", ErrMalformedKeyring)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if old, ok := k.keys[v.version]; ok {
		if subtle.ConstantTimeCompare(old.raw, v.raw) != 1 {
			return fmt.Errorf("%w: version %d", ErrVersionConflict, v.version)
		}
		return nil
	}
	if len(k.keys) >= MaxVersions {
		return ErrTooManyVersions
	}
	dk, err := newDataKey(append([]byte(nil), v.raw...))
	if err != nil {
		return err
	}
	k.keys[v.version] = dk
	k.current = max(k.current, v.version)
	return nil
}

// Holds reports whether the keyring holds version.
func (k *Keyring) Holds(version uint32) bool {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.keys[version] != nil
}

// A version key travels to each member wrapped to that member's identity:
// HPKE (RFC 9180, base mode) with DHKEM(X25519, HKDF-SHA256), HKDF-SHA256
// and AES-256-GCM, to the X25519 key birationally equivalent to the
// member's Ed25519 identity key (RFC 7748's map, the same conversion age
// and libsodium use). The identity key is the one the member table holds
// and the member's TLS certificate proves, sealed by the member's enclave,
// so no other key has to be published, attested or kept; using one key
// pair for both Ed25519 signatures and X25519 is shown secure by
// Thormarker (ePrint 2021/509). The private half is the first 32 bytes of
// SHA-512 of the Ed25519 seed, the scalar Ed25519 itself signs with.
//
// The wrapped copy is the single-shot HPKE output (encapsulated key, then
// ciphertext) of the raw key. The HPKE info binds a domain label, the
// version, the check value, the recipient's identity key and bind (the
// caller's context: the cluster and the member's id), so a copy opens only
// for its member, its version and its rotation.
const rotateInfo = "coterie/keyring/v1/rotate"

func rotateInfoFor(version uint32, check, recipient, bind []byte) []byte {
	b := []byte(rotateInfo + "\x00")
	b = wire.AppendU32(b, version)
	b = wire.AppendBytes16(b, check)
	b = wire.AppendBytes16(b, recipient)
	return wire.AppendBytes16(b, bind)
}

// WrapVersion encrypts v to the member whose Ed25519 identity key is
// recipient, bound to bind (at most 65535 bytes). Only the holder of the
// identity's private key opens it (UnwrapVersion).
func (v *VersionKey) WrapVersion(recipient ed25519.PublicKey, bind []byte) ([]byte, error) {
	pub, err := x25519Public(recipient)
	if err != nil {
		return nil, err
	}
	pk, err := hpke.NewDHKEMPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("keyring: hpke: %w", err)
	}
	ct, err := hpke.Seal(pk, transferKDF, transferAEAD, rotateInfoFor(v.version, v.Check(), recipient, bind), v.raw)
	if err != nil {
		return nil, fmt.Errorf("keyring: hpke: %w", err)
	}
	return ct, nil
}

// UnwrapVersion opens a copy that WrapVersion made for identity's public
// key, for version, check and bind, and checks that the key inside matches
// check. Errors: ErrUnwrap (not this member's copy, another rotation's, or
// modified), ErrKeyMismatch. No error holds key bytes.
func UnwrapVersion(identity ed25519.PrivateKey, version uint32, check, bind, wrapped []byte) (*VersionKey, error) {
	if len(identity) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("%w: identity key of %d bytes", ErrUnwrap, len(identity))
	}
	priv, err := x25519Private(identity)
	if err != nil {
		return nil, err
	}
	sk, err := hpke.NewDHKEMPrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("keyring: hpke: %w", err)
	}
	recipient := identity.Public().(ed25519.PublicKey)
	raw, err := hpke.Open(sk, transferKDF, transferAEAD, rotateInfoFor(version, check, recipient, bind), wrapped)
	if err != nil {
		return nil, fmt.Errorf("%w: version %d", ErrUnwrap, version)
	}
	if len(raw) != KeySize {
		clear(raw)
		return nil, fmt.Errorf("%w: version %d: key of %d bytes", ErrKeyMismatch, version, len(raw))
	}
	if subtle.ConstantTimeCompare(keyCheck(version, raw), check) != 1 {
		clear(raw)
		return nil, fmt.Errorf("%w: version %d", ErrKeyMismatch, version)
	}
	return &VersionKey{version: version, raw: raw}, nil
}

// x25519Public maps an Ed25519 public key to its Montgomery form.
func x25519Public(pub ed25519.PublicKey) (*ecdh.PublicKey, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, ErrBadRecipient
	}
	p, err := new(edwards25519.Point).SetBytes(pub)
	if err != nil {
		return nil, ErrBadRecipient
	}
	// A small-order point would give an all-zero shared secret, which
	// ecdh refuses anyway; refuse it here with a clear error.
	if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return nil, ErrBadRecipient
	}
	out, err := ecdh.X25519().NewPublicKey(p.BytesMontgomery())
	if err != nil {
		return nil, ErrBadRecipient
	}
	return out, nil
}

// x25519Private maps an Ed25519 private key to the X25519 private key
// whose public key x25519Public gives: X25519 clamps the scalar as
// Ed25519 does.
func x25519Private(identity ed25519.PrivateKey) (*ecdh.PrivateKey, error) {
	h := sha512.Sum512(identity.Seed())
	defer clear(h[:])
	priv, err := ecdh.X25519().NewPrivateKey(h[:32])
	if err != nil {
		return nil, fmt.Errorf("keyring: identity key: %w", err)
	}
	return priv, nil
}
