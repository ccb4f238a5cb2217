package cms

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/asn1"
	"fmt"
)

// Universal and context tags of the elements an envelope holds, as whole
// identifier octets.
const (
	tagInteger     = 0x02
	tagOctetString = 0x04
	tagNull        = 0x05
	tagOID         = 0x06
	tagSequence    = 0x30
	tagSet         = 0x31
	tagCtx0        = 0x80 // [0] primitive
	tagCtx0Cons    = 0xa0 // [0] constructed
	tagCtx1Cons    = 0xa1 // [1] constructed
	tagCtx2Cons    = 0xa2 // [2] constructed
)

// The object identifiers an envelope uses, as the contents of their OID
// elements.
var (
	oidEnvelopedData = oid(1, 2, 840, 113549, 1, 7, 3) // RFC 5652
	oidData          = oid(1, 2, 840, 113549, 1, 7, 1) // RFC 5652
	oidRSAESOAEP     = oid(1, 2, 840, 113549, 1, 1, 7) // RFC 8017
	oidMGF1          = oid(1, 2, 840, 113549, 1, 1, 8) // RFC 8017
	oidSHA256        = oid(2, 16, 840, 1, 101, 3, 4, 2, 1)
	oidAES256CBC     = oid(2, 16, 840, 1, 101, 3, 4, 1, 42) // RFC 3565
)

func oid(arcs ...int) []byte {
	der, err := asn1.Marshal(asn1.ObjectIdentifier(arcs))
	if err != nil {
		panic(err) // constant, valid arcs
	}
	return der[2:] // these are short: a two-byte header
}

// KeySize is the size of the content-encryption key: AES-256.
const KeySize = 32

// Envelope is the part of a parsed envelope that Open decrypts. Its
// slices alias the input.
type Envelope struct {
	// WrappedKey is the content-encryption key, encrypted with RSAES-OAEP.
	WrappedKey []byte
	// IV is the AES-CBC initialisation vector.
	IV []byte
	// Content is the AES-256-CBC ciphertext.
	Content []byte
}

// Open decrypts envelope, a CiphertextForRecipient, with the private key
// whose public key the attestation document carried, and returns the
// plaintext. It refuses with errors wrapping ErrMalformed, ErrUnsupported
// or ErrDecrypt (see the package documentation). The plaintext belongs to
// the caller, who should clear it when done.
func Open(envelope []byte, key *rsa.PrivateKey) ([]byte, error) {
	e, err := Parse(envelope)
	if err != nil {
		return nil, err
	}
	if len(e.WrappedKey) != key.Size() {
		return nil, fmt.Errorf("%w: wrapped key of %d bytes for a %d-bit key", ErrDecrypt, len(e.WrappedKey), key.N.BitLen())
	}
	cek, err := rsa.DecryptOAEP(sha256.New(), nil, key, e.WrappedKey, nil)
	if err != nil || len(cek) != KeySize {
		clear(cek)
		return nil, ErrDecrypt
	}
	defer clear(cek)
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, ErrDecrypt
	}
	out := make([]byte, len(e.Content))
	cipher.NewCBCDecrypter(block, e.IV).CryptBlocks(out, e.Content)
	n, ok := unpad(out)
	if !ok {
		clear(out)
		return nil, ErrDecrypt
	}
	return out[:n:n], nil
}

// unpad returns the length of PKCS #7 padded b without its padding, and
// whether the padding is well formed. It reads every byte of the last
// block whatever the padding, so its time does not depend on it.
func unpad(b []byte) (int, bool) {
	last := b[len(b)-1]
	good := subtle.ConstantTimeLessOrEq(1, int(last)) & subtle.ConstantTimeLessOrEq(int(last), aes.BlockSize)
	for i := 1; i <= aes.BlockSize; i++ {
		inPad := subtle.ConstantTimeLessOrEq(i, int(last))
		same := subtle.ConstantTimeByteEq(b[len(b)-i], last)
		good &= same | (inPad ^ 1)
	}
	if good != 1 {
		return 0, false
	}
	return len(b) - int(last), true
}

// Parse checks the structure of envelope and returns the parts that Open
// decrypts. It refuses with errors wrapping ErrMalformed or
// ErrUnsupported.
func Parse(envelope []byte) (Envelope, error) {
	ci, err := parseBER(envelope)
	if err != nil {
		return Envelope{}, err
	}
	// ContentInfo ::= SEQUENCE { contentType, [0] EXPLICIT content }
	if err := want(ci, tagSequence, 2, "ContentInfo"); err != nil {
		return Envelope{}, err
	}
	if err := wantOID(ci.children[0], oidEnvelopedData, ErrMalformed, "ContentInfo type"); err != nil {
		return Envelope{}, err
	}
	if err := want(ci.children[1], tagCtx0Cons, 1, "ContentInfo content"); err != nil {
		return Envelope{}, err
	}
	// EnvelopedData ::= SEQUENCE { version, originatorInfo [0] OPTIONAL,
	//   recipientInfos SET, encryptedContentInfo, unprotectedAttrs [1] OPTIONAL }
	// KMS sends neither optional field; refuse both.
	ed := ci.children[1].children[0]
	if err := want(ed, tagSequence, 3, "EnvelopedData (originator info and unprotected attributes are refused)"); err != nil {
		return Envelope{}, err
	}
	if err := wantVersion(ed.children[0], "EnvelopedData"); err != nil {
		return Envelope{}, err
	}
	if err := want(ed.children[1], tagSet, 1, "RecipientInfos (exactly one recipient)"); err != nil {
		return Envelope{}, err
	}
	var e Envelope
	if e.WrappedKey, err = keyTransport(ed.children[1].children[0]); err != nil {
		return Envelope{}, err
	}
	if e.IV, e.Content, err = encryptedContent(ed.children[2]); err != nil {
		return Envelope{}, err
	}
	return e, nil
}

// keyTransport checks a KeyTransRecipientInfo and returns its encrypted
// key:
//
//	KeyTransRecipientInfo ::= SEQUENCE { version, rid, keyEncryptionAlgorithm, encryptedKey }
//
// rid is an IssuerAndSerialNumber (version 0) or a [0] subject key
// identifier (version 2, as KMS sends). Open does not match it: the
// enclave has one key.
func keyTransport(ri element) ([]byte, error) {
	if ri.id != tagSequence {
		return nil, fmt.Errorf("%w: the recipient is not a key transport recipient (tag %#x)", ErrUnsupported, ri.id)
	}
	if err := want(ri, tagSequence, 4, "KeyTransRecipientInfo"); err != nil {
		return nil, err
	}
	if err := wantVersion(ri.children[0], "KeyTransRecipientInfo"); err != nil {
		return nil, err
	}
	if rid := ri.children[1]; rid.id != tagSequence && !(rid.id == tagCtx0 && len(rid.value) > 0) {
		return nil, fmt.Errorf("%w: recipient identifier (tag %#x)", ErrMalformed, rid.id)
	}
	if err := oaepSHA256(ri.children[2]); err != nil {
		return nil, err
	}
	ek := ri.children[3]
	if ek.id != tagOctetString || len(ek.value) == 0 {
		return nil, fmt.Errorf("%w: encrypted key", ErrMalformed)
	}
	return ek.value, nil
}

// oaepSHA256 checks that alg is RSAES-OAEP with SHA-256, MGF1 with
// SHA-256 and the default empty label:
//
//	RSAES-OAEP-params ::= SEQUENCE { hashFunc [0], maskGenFunc [1], pSourceFunc [2] }
//
// each optional, defaulting to SHA-1, MGF1 with SHA-1 and an empty label.
func oaepSHA256(alg element) error {
	id, params, err := algorithm(alg, "key encryption algorithm")
	if err != nil {
		return err
	}
	if !bytes.Equal(id, oidRSAESOAEP) {
		return fmt.Errorf("%w: key encryption is not RSAES-OAEP", ErrUnsupported)
	}
	if params == nil || params.id != tagSequence || len(params.children) != 2 {
		return fmt.Errorf("%w: RSAES-OAEP without SHA-256 and MGF1-SHA-256 parameters, or with a label", ErrUnsupported)
	}
	hash, mgf := params.children[0], params.children[1]
	if hash.id != tagCtx0Cons || len(hash.children) != 1 || mgf.id != tagCtx1Cons || len(mgf.children) != 1 {
		return fmt.Errorf("%w: RSAES-OAEP parameters", ErrUnsupported)
	}
	if err := wantDigest(hash.children[0], "RSAES-OAEP hash"); err != nil {
		return err
	}
	mid, mparams, err := algorithm(mgf.children[0], "RSAES-OAEP mask generation")
	if err != nil {
		return err
	}
	if !bytes.Equal(mid, oidMGF1) || mparams == nil {
		return fmt.Errorf("%w: RSAES-OAEP mask generation is not MGF1", ErrUnsupported)
	}
	return wantDigest(*mparams, "MGF1 hash")
}

// wantDigest checks that alg is SHA-256, with NULL or absent parameters.
func wantDigest(alg element, what string) error {
	id, params, err := algorithm(alg, what)
	if err != nil {
		return err
	}
	if !bytes.Equal(id, oidSHA256) || (params != nil && (params.id != tagNull || len(params.value) != 0)) {
		return fmt.Errorf("%w: %s is not SHA-256", ErrUnsupported, what)
	}
	return nil
}

// encryptedContent checks an EncryptedContentInfo and returns its IV and
// ciphertext:
//
//	EncryptedContentInfo ::= SEQUENCE { contentType, contentEncryptionAlgorithm,
//	  encryptedContent [0] IMPLICIT OCTET STRING OPTIONAL }
//
// The content may be primitive, or constructed from primitive chunks as
// KMS sends it.
func encryptedContent(eci element) (iv, content []byte, err error) {
	if err := want(eci, tagSequence, 3, "EncryptedContentInfo (with content)"); err != nil {
		return nil, nil, err
	}
	if err := wantOID(eci.children[0], oidData, ErrMalformed, "content type"); err != nil {
		return nil, nil, err
	}
	id, params, err := algorithm(eci.children[1], "content encryption algorithm")
	if err != nil {
		return nil, nil, err
	}
	if !bytes.Equal(id, oidAES256CBC) {
		return nil, nil, fmt.Errorf("%w: content encryption is not AES-256-CBC", ErrUnsupported)
	}
	if params == nil || params.id != tagOctetString || len(params.value) != aes.BlockSize {
		return nil, nil, fmt.Errorf("%w: AES-CBC IV", ErrMalformed)
	}
	ec := eci.children[2]
	switch ec.id {
	case tagCtx0:
		content = ec.value
	case tagCtx0Cons:
		for _, chunk := range ec.children {
			if chunk.id != tagOctetString {
				return nil, nil, fmt.Errorf("%w: encrypted content chunk (tag %#x)", ErrMalformed, chunk.id)
			}
			content = append(content, chunk.value...)
		}
	default:
		return nil, nil, fmt.Errorf("%w: encrypted content (tag %#x)", ErrMalformed, ec.id)
	}
	if len(content) == 0 || len(content)%aes.BlockSize != 0 {
		return nil, nil, fmt.Errorf("%w: encrypted content of %d bytes is not whole AES blocks", ErrMalformed, len(content))
	}
	return params.value, content, nil
}

// algorithm splits an AlgorithmIdentifier ::= SEQUENCE { algorithm OID,
// parameters ANY OPTIONAL } into its OID contents and its parameters, nil
// when absent.
func algorithm(alg element, what string) ([]byte, *element, error) {
	if alg.id != tagSequence || len(alg.children) < 1 || len(alg.children) > 2 || alg.children[0].id != tagOID {
		return nil, nil, fmt.Errorf("%w: %s", ErrMalformed, what)
	}
	if len(alg.children) == 1 {
		return alg.children[0].value, nil, nil
	}
	return alg.children[0].value, &alg.children[1], nil
}

// want checks that e has identifier id and n children.
func want(e element, id byte, n int, what string) error {
	if e.id != id || len(e.children) != n {
		return fmt.Errorf("%w: %s", ErrMalformed, what)
	}
	return nil
}

// wantOID checks that e is the object identifier oid, or returns an error
// wrapping sentinel.
func wantOID(e element, oid []byte, sentinel error, what string) error {
	if e.id != tagOID || !bytes.Equal(e.value, oid) {
		return fmt.Errorf("%w: %s", sentinel, what)
	}
	return nil
}

// wantVersion checks a CMSVersion of 0 or 2, the versions the structures
// KMS sends may have.
func wantVersion(e element, what string) error {
	if e.id != tagInteger || len(e.value) != 1 || (e.value[0] != 0 && e.value[0] != 2) {
		return fmt.Errorf("%w: %s version", ErrMalformed, what)
	}
	return nil
}
