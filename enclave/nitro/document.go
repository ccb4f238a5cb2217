package nitro

import (
	"fmt"
	"time"

	"github.com/fxamacker/cbor/v2"
)

// Limits of a document, from the attestation document specification in
// AWS's NSM API documentation. The whole document is bounded by
// enclave.MaxEvidenceSize before it is decoded.
const (
	maxPCRs        = 32
	maxCABundle    = 16 // a real bundle holds the root and three or four intermediates
	maxCertSize    = 1024
	maxPublicKey   = 1024
	maxUserData    = 512
	maxNonce       = 512
	algES384       = -35 // COSE algorithm ES384 (RFC 9053)
	coseSign1Tag   = 0xd2
	digestSHA384   = "SHA384"
	signatureBytes = 96 // r and s of P-384, 48 bytes each
)

// Document is a decoded Nitro attestation document: the payload of the
// COSE_Sign1 that the Nitro hypervisor signs. Every field is public.
type Document struct {
	// ModuleID names the Nitro hypervisor module that issued the document.
	ModuleID string
	// Timestamp is when the document was made, to the millisecond.
	Timestamp time.Time
	// Digest is the PCRs' hash function; always "SHA384".
	Digest string
	// PCRs are the enclave's platform configuration registers by index.
	PCRs map[uint32][]byte
	// Certificate is the DER of the leaf certificate that signed the
	// document.
	Certificate []byte
	// CABundle is the chain from the root (first) to the leaf's issuer
	// (last), in DER.
	CABundle [][]byte
	// PublicKey, UserData and Nonce are what the enclave asked the NSM to
	// include; each may be nil.
	PublicKey []byte
	UserData  []byte
	Nonce     []byte
}

// sign1 is a COSE_Sign1 message: [protected, unprotected, payload,
// signature].
type sign1 struct {
	_           struct{} `cbor:",toarray"`
	Protected   []byte
	Unprotected cbor.RawMessage
	Payload     []byte
	Signature   []byte
}

// protectedHeader is the part of COSE's protected header that Nitro sets.
type protectedHeader struct {
	Alg int64 `cbor:"1,keyasint"`
}

// payload is the wire form of Document.
type payload struct {
	ModuleID    string            `cbor:"module_id"`
	Digest      string            `cbor:"digest"`
	Timestamp   uint64            `cbor:"timestamp"`
	PCRs        map[uint32][]byte `cbor:"pcrs"`
	Certificate []byte            `cbor:"certificate"`
	CABundle    [][]byte          `cbor:"cabundle"`
	PublicKey   []byte            `cbor:"public_key"`
	UserData    []byte            `cbor:"user_data"`
	Nonce       []byte            `cbor:"nonce"`
}

// strict are the options for every CBOR item of a document: no duplicate
// keys, no indefinite lengths, no tags inside the message, and bounded
// nesting and sizes.
var strict = cbor.DecOptions{
	DupMapKey:        cbor.DupMapKeyEnforcedAPF,
	IndefLength:      cbor.IndefLengthForbidden,
	TagsMd:           cbor.TagsForbidden,
	MaxNestedLevels:  4,
	MaxArrayElements: maxCABundle + 4,
	MaxMapPairs:      maxPCRs + 16,
}

// decMode decodes the COSE_Sign1 and its protected header strictly.
var decMode = mustDecMode(strict)

// payloadDecMode decodes the payload as strictly, except that it admits
// indefinite lengths: genuine documents come both ways, the payload a
// definite-length map in some and an indefinite-length one in others (see
// testdata/README.md), and the signature covers whichever bytes the
// hypervisor wrote.
var payloadDecMode = func() cbor.DecMode {
	o := strict
	o.IndefLength = cbor.IndefLengthAllowed
	return mustDecMode(o)
}()

func mustDecMode(o cbor.DecOptions) cbor.DecMode {
	m, err := o.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}

// encMode encodes the signature structure canonically.
var encMode = func() cbor.EncMode {
	m, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// parsed is a decoded COSE_Sign1 with its document.
type parsed struct {
	msg sign1
	doc Document
}

// ParseDocument decodes a COSE_Sign1 attestation document without checking
// its signature or chain: only VerifyDocument tells a genuine document. It
// returns an error wrapping ErrMalformed.
func ParseDocument(raw []byte) (Document, error) {
	p, err := parse(raw)
	return p.doc, err
}

func parse(raw []byte) (parsed, error) {
	// COSE_Sign1 may come tagged (18); the NSM sends it untagged.
	if len(raw) > 0 && raw[0] == coseSign1Tag {
		raw = raw[1:]
	}
	var p parsed
	if err := decMode.Unmarshal(raw, &p.msg); err != nil {
		return parsed{}, fmt.Errorf("%w: COSE_Sign1: %v", ErrMalformed, err)
	}
	var h protectedHeader
	if err := decMode.Unmarshal(p.msg.Protected, &h); err != nil {
		return parsed{}, fmt.Errorf("%w: protected header: %v", ErrMalformed, err)
	}
	if h.Alg != algES384 {
		return parsed{}, fmt.Errorf("%w: algorithm %d, want ES384 (%d)", ErrMalformed, h.Alg, algES384)
	}
	if len(p.msg.Signature) != signatureBytes {
		return parsed{}, fmt.Errorf("%w: signature of %d bytes, want %d", ErrMalformed, len(p.msg.Signature), signatureBytes)
	}
	var w payload
	if err := payloadDecMode.Unmarshal(p.msg.Payload, &w); err != nil {
		return parsed{}, fmt.Errorf("%w: payload: %v", ErrMalformed, err)
	}
	if problem := w.check(); problem != "" {
		return parsed{}, fmt.Errorf("%w: %s", ErrMalformed, problem)
	}
	p.doc = Document{
		ModuleID: w.ModuleID, Timestamp: time.UnixMilli(int64(w.Timestamp)).UTC(), Digest: w.Digest, PCRs: w.PCRs,
		Certificate: w.Certificate, CABundle: w.CABundle, PublicKey: w.PublicKey, UserData: w.UserData, Nonce: w.Nonce,
	}
	return p, nil
}

// check enforces the specification's mandatory fields and sizes, and
// returns the first problem, or "".
func (w payload) check() string {
	switch {
	case w.ModuleID == "":
		return "no module_id"
	case w.Digest != digestSHA384:
		return fmt.Sprintf("digest %q, want %s", w.Digest, digestSHA384)
	case w.Timestamp == 0 || w.Timestamp > 1<<62:
		return "no timestamp"
	case len(w.PCRs) == 0 || len(w.PCRs) > maxPCRs:
		return fmt.Sprintf("%d PCRs, want 1 to %d", len(w.PCRs), maxPCRs)
	case len(w.Certificate) == 0 || len(w.Certificate) > maxCertSize:
		return "no certificate, or one too long"
	case len(w.CABundle) == 0 || len(w.CABundle) > maxCABundle:
		return fmt.Sprintf("cabundle of %d certificates, want 1 to %d", len(w.CABundle), maxCABundle)
	case len(w.PublicKey) > maxPublicKey || len(w.UserData) > maxUserData || len(w.Nonce) > maxNonce:
		return "public_key, user_data or nonce too long"
	}
	for i, v := range w.PCRs {
		if i >= maxPCRs || len(v) != 48 {
			return fmt.Sprintf("PCR%d has %d bytes, want 48 at an index below %d", i, len(v), maxPCRs)
		}
	}
	for _, c := range w.CABundle {
		if len(c) == 0 || len(c) > maxCertSize {
			return "a cabundle certificate is empty or too long"
		}
	}
	return ""
}

// sigStructure returns the bytes COSE signs for a COSE_Sign1 (RFC 9052,
// section 4.4): ["Signature1", protected, external_aad, payload].
func sigStructure(protected, payload []byte) []byte {
	b, err := encMode.Marshal([]any{"Signature1", protected, []byte{}, payload})
	if err != nil {
		panic(err) // byte strings and a text string always encode
	}
	return b
}
