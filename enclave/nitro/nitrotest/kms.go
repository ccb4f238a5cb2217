package nitrotest

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/coterie-mpc/coterie/enclave/nitro"
)

// KMS is a test-only AWS KMS endpoint for one symmetric key, speaking the
// KMS wire protocol (AWS JSON 1.1: POST /, X-Amz-Target
// TrentService.Operation, Content-Type application/x-amz-json-1.1) for
// GenerateDataKey and Decrypt. Serve it with httptest and point the real
// SDK client at it.
//
// It enforces what a key policy with Nitro conditions enforces: a request
// must carry a Recipient whose attestation document verifies with Verifier
// (the test PKI's root), holds an RSA-2048 public key, and whose PCRs
// equal every PCR in Conditions, as kms:RecipientAttestation:PCRn
// conditions require; otherwise it answers AccessDeniedException. It then
// returns the plaintext only as CiphertextForRecipient (see Envelope),
// never in Plaintext. Its CiphertextBlob is the data key sealed under a
// master key of its own with the encryption context authenticated.
//
// It is safe for concurrent use. Fields must not change while it serves.
type KMS struct {
	T testing.TB
	// KeyID is the key's ARN. GenerateDataKey takes it or Alias; Decrypt
	// takes it only, or no key id.
	KeyID string
	// Alias is the key's alias name, such as "alias/coterie".
	Alias string
	// Verifier checks attestation documents; its config holds the test
	// root and a clock.
	Verifier *nitro.Verifier
	// Conditions are the PCR values the key policy requires, by index.
	Conditions map[uint32][]byte
	// Tamper, when set, changes each CiphertextForRecipient before it is
	// sent, as a hostile parent instance might.
	Tamper func([]byte) []byte

	once   sync.Once
	master cipher.AEAD
	mu     sync.Mutex
	calls  []string
}

// Calls returns the operations served so far, refused ones included, in
// order.
func (k *KMS) Calls() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	return slices.Clone(k.calls)
}

// kmsError is an AWS JSON 1.1 error answer.
type kmsError struct {
	Type    string `json:"__type"`
	Message string `json:"message"`
}

func (e *kmsError) Error() string { return e.Type + ": " + e.Message }

func denied(format string, args ...any) *kmsError {
	return &kmsError{Type: "AccessDeniedException", Message: fmt.Sprintf(format, args...)}
}

type recipient struct {
	AttestationDocument    []byte
	KeyEncryptionAlgorithm string
}

type kmsRequest struct {
	KeyId               string
	KeySpec             string
	NumberOfBytes       int
	CiphertextBlob      []byte
	EncryptionContext   map[string]string
	EncryptionAlgorithm string
	Recipient           *recipient
}

// ServeHTTP implements http.Handler.
func (k *KMS) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.once.Do(func() {
		key := make([]byte, 32)
		rand.Read(key)
		block, _ := aes.NewCipher(key)
		k.master, _ = cipher.NewGCM(block)
	})
	op, _ := strings.CutPrefix(r.Header.Get("X-Amz-Target"), "TrentService.")
	k.mu.Lock()
	k.calls = append(k.calls, op)
	k.mu.Unlock()

	var out any
	err := k.checkRequest(r)
	var req kmsRequest
	if err == nil {
		if derr := json.NewDecoder(http.MaxBytesReader(w, r.Body, 1<<20)).Decode(&req); derr != nil {
			err = &kmsError{Type: "SerializationException", Message: derr.Error()}
		}
	}
	if err == nil {
		switch op {
		case "GenerateDataKey":
			out, err = k.generateDataKey(req)
		case "Decrypt":
			out, err = k.decrypt(req)
		default:
			err = &kmsError{Type: "UnknownOperationException", Message: op}
		}
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if err != nil {
		var ke *kmsError
		if !errors.As(err, &ke) {
			ke = &kmsError{Type: "KMSInternalException", Message: err.Error()}
		}
		k.T.Logf("test kms: %s refused: %v", op, ke)
		w.Header().Set("X-Amzn-ErrorType", ke.Type)
		w.WriteHeader(http.StatusBadRequest)
		out = ke
	}
	json.NewEncoder(w).Encode(out)
}

// checkRequest checks the framing the SDK must send: the protocol's
// method, content type and a SigV4 authorization for the kms service.
func (k *KMS) checkRequest(r *http.Request) error {
	switch auth := r.Header.Get("Authorization"); {
	case r.Method != http.MethodPost || r.URL.Path != "/":
		return &kmsError{Type: "UnknownOperationException", Message: r.Method + " " + r.URL.Path}
	case r.Header.Get("Content-Type") != "application/x-amz-json-1.1":
		return &kmsError{Type: "SerializationException", Message: "content type " + r.Header.Get("Content-Type")}
	case !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=") || !strings.Contains(auth, "/kms/aws4_request"):
		return &kmsError{Type: "MissingAuthenticationTokenException", Message: "no SigV4 signature for kms"}
	}
	return nil
}

type generateDataKeyResponse struct {
	KeyId                  string
	CiphertextBlob         []byte
	CiphertextForRecipient []byte
}

func (k *KMS) generateDataKey(req kmsRequest) (any, error) {
	if req.KeyId != k.KeyID && (k.Alias == "" || req.KeyId != k.Alias) {
		return nil, &kmsError{Type: "NotFoundException", Message: "key " + req.KeyId}
	}
	if req.KeySpec != "AES_256" || req.NumberOfBytes != 0 {
		return nil, &kmsError{Type: "ValidationException", Message: "this test KMS makes AES_256 data keys only"}
	}
	pub, err := k.attested(req.Recipient)
	if err != nil {
		return nil, err
	}
	dataKey := make([]byte, 32)
	rand.Read(dataKey)
	return generateDataKeyResponse{
		KeyId: k.KeyID, CiphertextBlob: k.wrap(dataKey, req.EncryptionContext),
		CiphertextForRecipient: k.envelope(pub, dataKey),
	}, nil
}

type decryptResponse struct {
	KeyId                  string
	EncryptionAlgorithm    string
	CiphertextForRecipient []byte
}

func (k *KMS) decrypt(req kmsRequest) (any, error) {
	if req.KeyId != "" && req.KeyId != k.KeyID {
		return nil, &kmsError{Type: "IncorrectKeyException", Message: "key " + req.KeyId}
	}
	if req.EncryptionAlgorithm != "" && req.EncryptionAlgorithm != "SYMMETRIC_DEFAULT" {
		return nil, &kmsError{Type: "IncorrectKeyException", Message: "algorithm " + req.EncryptionAlgorithm}
	}
	pub, err := k.attested(req.Recipient)
	if err != nil {
		return nil, err
	}
	n := k.master.NonceSize()
	if len(req.CiphertextBlob) < n {
		return nil, &kmsError{Type: "InvalidCiphertextException", Message: "short ciphertext"}
	}
	dataKey, err := k.master.Open(nil, req.CiphertextBlob[:n], req.CiphertextBlob[n:], encryptionContext(req.EncryptionContext))
	if err != nil {
		return nil, &kmsError{Type: "InvalidCiphertextException", Message: "ciphertext or encryption context"}
	}
	return decryptResponse{KeyId: k.KeyID, EncryptionAlgorithm: "SYMMETRIC_DEFAULT", CiphertextForRecipient: k.envelope(pub, dataKey)}, nil
}

// attested applies the key policy's Nitro conditions to a Recipient and
// returns the public key its document carries.
func (k *KMS) attested(r *recipient) (*rsa.PublicKey, error) {
	if r == nil || len(r.AttestationDocument) == 0 {
		return nil, denied("the key policy requires an attested Recipient")
	}
	if r.KeyEncryptionAlgorithm != "RSAES_OAEP_SHA_256" {
		return nil, &kmsError{Type: "ValidationException", Message: "KeyEncryptionAlgorithm " + r.KeyEncryptionAlgorithm}
	}
	doc, err := k.Verifier.VerifyDocument(r.AttestationDocument, nitro.Expect{})
	if err != nil {
		return nil, denied("attestation document: %v", err)
	}
	for _, i := range slices.Sorted(maps.Keys(k.Conditions)) {
		if !bytes.Equal(doc.PCRs[i], k.Conditions[i]) {
			return nil, denied("kms:RecipientAttestation:PCR%d does not match the key policy", i)
		}
	}
	pk, err := x509.ParsePKIXPublicKey(doc.PublicKey)
	if err != nil {
		return nil, &kmsError{Type: "ValidationException", Message: "attestation document public_key: " + err.Error()}
	}
	pub, ok := pk.(*rsa.PublicKey)
	if !ok || pub.N.BitLen() != 2048 {
		return nil, &kmsError{Type: "ValidationException", Message: "attestation document public_key is not RSA-2048"}
	}
	return pub, nil
}

func (k *KMS) envelope(pub *rsa.PublicKey, plaintext []byte) []byte {
	e := Envelope(k.T, pub, plaintext)
	if k.Tamper != nil {
		e = k.Tamper(e)
	}
	return e
}

func (k *KMS) wrap(dataKey []byte, ec map[string]string) []byte {
	nonce := make([]byte, k.master.NonceSize())
	rand.Read(nonce)
	return k.master.Seal(nonce, nonce, dataKey, encryptionContext(ec))
}

// encryptionContext encodes an encryption context canonically, as KMS binds it to
// a ciphertext.
func encryptionContext(ec map[string]string) []byte {
	b, _ := json.Marshal(ec) // maps encode with sorted keys
	return b
}
