package mpc

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"github.com/taurusgroup/multi-party-sig/pkg/ecdsa"
	"github.com/taurusgroup/multi-party-sig/pkg/math/curve"
	"github.com/taurusgroup/multi-party-sig/pkg/party"
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
}

// derive runs CKDpub along path. Signing uses the same function (through
// deriveConfig) as the verifier's DerivePublicKey, and tests check both
// against an independent implementation.
func derive(masterPub, chainCode []byte, path Path) (*derivation, error) {
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
	d := &derivation{tweak: group.NewScalar(), chainCode: chainCode, publicKey: masterPub}
	for _, i := range path {
		mac := hmac.New(sha512.New, d.chainCode)
		mac.Write(d.publicKey)
		mac.Write(binary.BigEndian.AppendUint32(nil, i))
		sum := mac.Sum(nil)
		// BIP-32: the index is unusable if I_L ≥ n (UnmarshalBinary refuses
		// it), if I_L = 0, or if the child key is the point at infinity.
		il := group.NewScalar()
		if err := il.UnmarshalBinary(sum[:32]); err != nil || il.IsZero() {
			return nil, fmt.Errorf("%w: index %d gives an invalid key; use another", ErrInvalidPath, i)
		}
		pub = il.ActOnBase().Add(pub)
		if pub.IsIdentity() {
			return nil, fmt.Errorf("%w: index %d gives an invalid key; use another", ErrInvalidPath, i)
		}
		if d.publicKey, err = pub.MarshalBinary(); err != nil {
			return nil, err
		}
		d.tweak.Add(il)
		d.chainCode = sum[32:]
	}
	return d, nil
}

// deriveConfig derives a session's config for path with the library's
// derivation hook, cmp.Config.Derive, which adds the tweak δ to every share
// (x' = x + δ). It returns the derived config and the derivation.
func deriveConfig(share *KeyShare, path Path) (*cmp.Config, *derivation, error) {
	d, err := derive(share.publicKey, share.cfg.ChainKey, path)
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

// derivePresignature adapts a presignature for the master key x to the
// derived key x' = x + δ. With R = k⁻¹·G and additive shares kᵢ of k and χᵢ
// of χ = k·x, the derived key needs χ' = k·x' = χ + δ·k, so χᵢ' = χᵢ + δ·kᵢ
// and the commitment Sᵢ' = χᵢ'·R = Sᵢ + δ·R̄ᵢ (as R̄ᵢ = kᵢ·R). Everything but
// χᵢ is public, and δ is public too, so every signer computes the same
// commitments.
func derivePresignature(pre *ecdsa.PreSignature, delta curve.Scalar) *ecdsa.PreSignature {
	if delta.IsZero() {
		return pre
	}
	group := pre.Group()
	chi := group.NewScalar().Set(delta).Mul(pre.KShare).Add(pre.ChiShare)
	s := make(map[party.ID]curve.Point, len(pre.S.Points))
	for j, sj := range pre.S.Points {
		s[j] = sj.Add(delta.Act(pre.RBar.Points[j]))
	}
	return &ecdsa.PreSignature{
		ID:       pre.ID,
		R:        pre.R,
		RBar:     pre.RBar,
		S:        party.NewPointMap(s),
		KShare:   pre.KShare,
		ChiShare: chi,
	}
}
