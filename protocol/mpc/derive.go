package mpc

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/taurusgroup/multi-party-sig/pkg/ecdsa"
	"github.com/taurusgroup/multi-party-sig/pkg/math/curve"
	"github.com/taurusgroup/multi-party-sig/protocols/cmp"
)

// MaxPathDepth is the deepest derivation path accepted (BIP-32 stores depth
// in one byte).
const MaxPathDepth = 255

// hardened is the first hardened BIP-32 index; MPC signing can only use
// unhardened derivation, which needs no private key.
const hardened = 1 << 31

// Path is a BIP-32 unhardened derivation path: the child indices from the
// master key down. The empty path is the master key itself.
type Path []uint32

// ParsePath parses "m" or "m/44/60/0/0/7". Hardened steps ("44'" or "44h")
// and indices of 2³¹ or more are refused with ErrInvalidPath.
func ParsePath(s string) (Path, error) {
	parts := strings.Split(s, "/")
	if parts[0] != "m" {
		return nil, fmt.Errorf("%w: %q does not start with \"m\"", ErrInvalidPath, s)
	}
	if len(parts)-1 > MaxPathDepth {
		return nil, fmt.Errorf("%w: deeper than %d", ErrInvalidPath, MaxPathDepth)
	}
	p := make(Path, 0, len(parts)-1)
	for _, part := range parts[1:] {
		if strings.HasSuffix(part, "'") || strings.HasSuffix(part, "h") || strings.HasSuffix(part, "H") {
			return nil, fmt.Errorf("%w: hardened step %q cannot be derived in MPC", ErrInvalidPath, part)
		}
		if part == "" || (len(part) > 1 && part[0] == '0') || part[0] == '+' {
			return nil, fmt.Errorf("%w: bad step %q", ErrInvalidPath, part)
		}
		n, err := strconv.ParseUint(part, 10, 32)
		if err != nil || n >= hardened {
			return nil, fmt.Errorf("%w: step %q is not an index below 2^31", ErrInvalidPath, part)
		}
		p = append(p, uint32(n))
	}
	return p, nil
}

// String formats p as ParsePath reads it.
func (p Path) String() string {
	var b strings.Builder
	b.WriteString("m")
	for _, i := range p {
		b.WriteByte('/')
		b.WriteString(strconv.FormatUint(uint64(i), 10))
	}
	return b.String()
}

func (p Path) validate() error {
	if len(p) > MaxPathDepth {
		return fmt.Errorf("%w: deeper than %d", ErrInvalidPath, MaxPathDepth)
	}
	for _, i := range p {
		if i >= hardened {
			return fmt.Errorf("%w: hardened index %d", ErrInvalidPath, i)
		}
	}
	return nil
}

// DerivePublicKey returns the compressed SEC1 public key at path below the
// master key (masterPub, compressed SEC1, and its 32-byte chainCode), by
// BIP-32 public derivation (CKDpub). The platform uses it to check a
// signature that a session made for that path, knowing only the master
// public key and chain code. It returns ErrInvalidKey for a malformed key
// or chain code and ErrInvalidPath for a hardened or unusable index.
func DerivePublicKey(masterPub, chainCode []byte, path Path) ([]byte, error) {
	d, err := derive(masterPub, chainCode, path)
	if err != nil {
		return nil, err
	}
	return d.publicKey, nil
}

// derivation is the outcome of BIP-32 public derivation along a path.
type derivation struct {
	tweak     curve.Scalar // δ: the child's secret key is x + δ
	chainCode []byte       // the child's chain code
	publicKey []byte       // the child's public key, compressed SEC1
	point     curve.Point  // the child's public key
}

// clone returns a copy of d with its own scalar and point, so that the copy
// may be changed and handed to the library while d is read concurrently.
func (d *derivation) clone() *derivation {
	return &derivation{
		tweak:     d.tweak.Curve().NewScalar().Set(d.tweak),
		chainCode: slices.Clone(d.chainCode),
		publicKey: slices.Clone(d.publicKey),
		point:     copyPoint(d.point),
	}
}

// derive runs CKDpub along path. Signing uses the same function (through
// Engine.derive) as the verifier's DerivePublicKey, and tests check both
// against an independent implementation.
func derive(masterPub, chainCode []byte, path Path) (*derivation, error) {
	root, err := derivationRoot(masterPub, chainCode, path)
	if err != nil {
		return nil, err
	}
	return root.child(path)
}

// derivationRoot checks a derivation's inputs and returns the master key as
// the derivation along the empty path.
func derivationRoot(masterPub, chainCode []byte, path Path) (*derivation, error) {
	if err := path.validate(); err != nil {
		return nil, err
	}
	pub, err := decodePoint(masterPub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	if len(chainCode) != 32 {
		return nil, fmt.Errorf("%w: chain code of %d bytes, want 32", ErrInvalidKey, len(chainCode))
	}
	group := curve.Secp256k1{}
	return &derivation{tweak: group.NewScalar(), chainCode: slices.Clone(chainCode), publicKey: slices.Clone(masterPub), point: pub}, nil
}

// child runs CKDpub from d along path, which must be valid. It does not
// change d.
func (d *derivation) child(path Path) (*derivation, error) {
	d = d.clone()
	group := curve.Secp256k1{}
	var index [4]byte
	for _, i := range path {
		mac := hmac.New(sha512.New, d.chainCode)
		mac.Write(d.publicKey)
		binary.BigEndian.PutUint32(index[:], i)
		mac.Write(index[:])
		sum := mac.Sum(nil)
		// BIP-32: the index is unusable if I_L ≥ n (UnmarshalBinary refuses
		// it), if I_L = 0, or if the child key is the point at infinity.
		il := group.NewScalar()
		if err := il.UnmarshalBinary(sum[:32]); err != nil || il.IsZero() {
			return nil, fmt.Errorf("%w: index %d gives an invalid key; use another", ErrInvalidPath, i)
		}
		d.point = il.ActOnBase().Add(d.point)
		if d.point.IsIdentity() {
			return nil, fmt.Errorf("%w: index %d gives an invalid key; use another", ErrInvalidPath, i)
		}
		var err error
		if d.publicKey, err = d.point.MarshalBinary(); err != nil {
			return nil, err
		}
		d.tweak.Add(il)
		d.chainCode = sum[32:]
	}
	return d, nil
}

// derivationCacheSize bounds the number of derivations an Engine keeps.
const derivationCacheSize = 4096

// derivationCache keeps derivations, which are public (they follow from the
// master public key and chain code), so that signing for an address, or for
// another address of the same account, need not run CKDpub from the master
// key each time. It holds at most derivationCacheSize entries and is safe for
// concurrent use. Cached derivations are never changed or handed out: users
// get clones.
type derivationCache struct {
	mu      sync.Mutex
	entries map[string]*derivation
}

func derivationKey(masterPub, chainCode []byte, path Path) string {
	b := make([]byte, 0, len(masterPub)+len(chainCode)+4*len(path))
	b = append(b, masterPub...)
	b = append(b, chainCode...)
	for _, i := range path {
		b = binary.BigEndian.AppendUint32(b, i)
	}
	return string(b)
}

func (c *derivationCache) get(key string) *derivation {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.entries[key]
}

func (c *derivationCache) put(key string, d *derivation) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.entries == nil {
		c.entries = make(map[string]*derivation)
	}
	if _, ok := c.entries[key]; !ok && len(c.entries) >= derivationCacheSize {
		for k := range c.entries { // evict an arbitrary entry
			delete(c.entries, k)
			break
		}
	}
	c.entries[key] = d
}

// derive is the package's derive with the engine's cache: it starts from
// the cached derivation of path, or of its parent (the account of a BIP-44
// address), and caches both. The result is the caller's own.
func (e *Engine) derive(masterPub, chainCode []byte, path Path) (*derivation, error) {
	if len(path) == 0 {
		return derive(masterPub, chainCode, path)
	}
	key := derivationKey(masterPub, chainCode, path)
	if d := e.derivations.get(key); d != nil {
		return d.clone(), nil
	}
	parentPath := path[:len(path)-1]
	parentKey := derivationKey(masterPub, chainCode, parentPath)
	parent := e.derivations.get(parentKey)
	if parent == nil {
		root, err := derivationRoot(masterPub, chainCode, path)
		if err != nil {
			return nil, err
		}
		if parent, err = root.child(parentPath); err != nil {
			return nil, err
		}
		e.derivations.put(parentKey, parent)
	} else if err := path.validate(); err != nil {
		return nil, err
	}
	d, err := parent.child(path[len(path)-1:])
	if err != nil {
		return nil, err
	}
	e.derivations.put(key, d)
	return d.clone(), nil
}

// deriveConfig derives a session's config for path with the library's
// derivation hook, cmp.Config.Derive, which adds the tweak δ to every share
// (x' = x + δ). It returns the derived config and the derivation.
func (e *Engine) deriveConfig(share *KeyShare, path Path) (*cmp.Config, *derivation, error) {
	d, err := e.derive(share.publicKey, share.cfg.ChainKey, path)
	if err != nil {
		return nil, nil, err
	}
	cfg := share.sessionConfig()
	if len(path) == 0 {
		return cfg, d, nil
	}
	derived, err := cfg.Derive(d.tweak, d.chainCode)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrInvalidPath, err)
	}
	return derived, d, nil
}

// derivedMessage returns the message that signs digest under the derived
// key x' = x + δ with a presignature pre made for the master key x. With
// R = k⁻¹·G, r its x-coordinate, additive shares kᵢ of k and χᵢ of χ = k·x,
// and m the digest as a scalar, the derived signature share is
// kᵢ·m + r·(χᵢ + δ·kᵢ) = kᵢ·(m + r·δ) + r·χᵢ: the master presignature's share
// for the message m' = m + r·δ. Everything in m' is public, so every signer
// computes the same m', and the library's checks hold unchanged: its
// verification, s⁻¹·(m'·G + r·X) = R, is the same equation as
// s⁻¹·(m·G + r·X') = R for X' = X + δ·G, and a share σⱼ is correct exactly
// when σⱼ·R = m'·R̄ⱼ + r·Sⱼ, with the presignature's own commitments. So the
// presignature needs no adapting: no point operation per signer.
//
// R.XScalar normalizes pre.R in place: pre must be the session's own copy.
func derivedMessage(pre *ecdsa.PreSignature, digest []byte, delta curve.Scalar) ([]byte, error) {
	if delta.IsZero() {
		return slices.Clone(digest), nil
	}
	m := curve.FromHash(pre.Group(), digest)
	m.Add(pre.R.XScalar().Mul(delta))
	return m.MarshalBinary()
}
