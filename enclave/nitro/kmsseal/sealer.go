//go:build nitro

package kmsseal

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/internal/dataseal"
	"github.com/coterie-mpc/coterie/enclave/nitro"
	"github.com/coterie-mpc/coterie/enclave/nitro/cms"
	"github.com/coterie-mpc/coterie/internal/atomicfile"
)

// KMS is the part of the AWS KMS API that Open calls. *kms.Client
// implements it; see NewClient. Implementations must be safe for
// concurrent use.
type KMS interface {
	GenerateDataKey(ctx context.Context, in *kms.GenerateDataKeyInput, optFns ...func(*kms.Options)) (*kms.GenerateDataKeyOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

// Documents makes attestation documents for KMS's Recipient: the NSM
// (package nsm) in an enclave, a test PKI in tests.
type Documents interface {
	// Document returns a raw attestation document (an untagged
	// COSE_Sign1, as the NSM makes it) whose public_key is publicKey, a DER
	// SubjectPublicKeyInfo. It is safe for concurrent use; the result
	// belongs to the caller.
	Document(ctx context.Context, publicKey []byte) ([]byte, error)
}

// encryptionContext binds the data key to its use: KMS refuses to
// decrypt the blob under any other context.
var encryptionContext = map[string]string{"coterie": "enclave-sealing-data-key"}

// recipientKeyBits is the size of the one-shot RSA key; KMS takes RSA-2048.
const recipientKeyBits = 2048

// Config configures Open.
type Config struct {
	// KMS is the client Open calls.
	KMS KMS
	// KeyID is the KMS key's full key ARN. GenerateDataKey and Decrypt
	// name it, and a data key file that names another key is refused: the
	// file lies on the parent's disk.
	KeyID string
	// KeyPolicy is what the KMS key policy binds the data key to, and
	// what Seal records: PCR0 (code) or PCR8 (product). Open checks only
	// that the image has a PCR8 for product; the key policy enforces it.
	KeyPolicy enclave.KeyPolicy
	// Documents makes the attestation documents of each KMS call.
	Documents Documents
	// DataKeyFile holds KMS's encryption of the data key.
	DataKeyFile string
	// AllowDebug lets Open run in a debug enclave (all-zero PCRs), whose
	// memory the parent can read: for development only.
	AllowDebug bool
	// Create lets Open generate a data key when DataKeyFile does not
	// exist. Only a node's first initialisation sets it; otherwise a
	// missing file is ErrNoDataKey, not a silent new key.
	Create bool
	// Logger receives lifecycle messages.
	Logger *slog.Logger
}

// Validate reports every problem with c at once, or nil.
func (c Config) Validate() error {
	var errs []error
	if c.KMS == nil {
		errs = append(errs, errors.New("kmsseal: KMS is nil"))
	}
	if !strings.HasPrefix(c.KeyID, "arn:") || !strings.Contains(c.KeyID, ":key/") {
		errs = append(errs, fmt.Errorf("kmsseal: KeyID %q is not a full key ARN", c.KeyID))
	}
	if !c.KeyPolicy.Valid() {
		errs = append(errs, fmt.Errorf("kmsseal: invalid KeyPolicy %s", c.KeyPolicy))
	}
	if c.Documents == nil {
		errs = append(errs, errors.New("kmsseal: Documents is nil"))
	}
	if c.DataKeyFile == "" {
		errs = append(errs, errors.New("kmsseal: DataKeyFile is empty"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("kmsseal: Logger is nil"))
	}
	return errors.Join(errs...)
}

// Sealer seals with the data key KMS released. All methods are safe for
// concurrent use.
type Sealer struct {
	seal *dataseal.Sealer
	self enclave.Identity
}

var _ enclave.Sealer = (*Sealer)(nil)

// Open gets the node's data key from KMS, generating it on first start
// when cfg.Create is set, and returns the Sealer. Errors: ErrNoDataKey,
// ErrBadDataKeyFile, ErrKeyRefused, ErrPlaintextExposed, ErrWrongDataKey,
// ErrUnsignedImage, package cms's refusals of the envelope, and file and
// network errors.
func Open(ctx context.Context, cfg Config) (*Sealer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	file, found, err := dataseal.ReadKeyFile(cfg.DataKeyFile, fileMagic, cfg.KeyID)
	switch {
	case err != nil:
		return nil, fmt.Errorf("kmsseal: %s: %w", cfg.DataKeyFile, err)
	case !found && !cfg.Create:
		return nil, fmt.Errorf("%w: %s", ErrNoDataKey, cfg.DataKeyFile)
	}
	create := !found
	file.KeyName = cfg.KeyID

	r, err := newRecipient(ctx, cfg.Documents)
	if err != nil {
		return nil, err
	}
	self := nitro.Identity(r.doc)
	switch {
	case self.Debug && !cfg.AllowDebug:
		return nil, ErrDebugEnclave
	case cfg.KeyPolicy == enclave.KeyPolicyProduct && enclave.AllZero(self.Signer):
		return nil, ErrUnsignedImage
	}

	var dataKey []byte
	if create {
		dataKey, file, err = generate(ctx, cfg, r)
	} else {
		dataKey, err = decrypt(ctx, cfg.KMS, file, r)
	}
	if err != nil {
		return nil, err
	}
	defer clear(dataKey)
	check := dataseal.Derive(dataKey, infoCheck)
	if !create && !hmac.Equal(check, file.Check) {
		return nil, ErrWrongDataKey
	}
	if create {
		file.Check = check
		if err := atomicfile.Write(cfg.DataKeyFile, file.Encode(fileMagic), 0o600); err != nil {
			return nil, fmt.Errorf("kmsseal: write %s: %w", cfg.DataKeyFile, err)
		}
	}

	scope := enclave.SealScope{
		Kind:           enclave.KindNitro,
		Machine:        enclave.HashID("coterie/nitro/v1/machine", check),
		CodeBinding:    enclave.HashID("coterie/nitro/v1/code", self.Measurement),
		ProductBinding: enclave.HashID("coterie/nitro/v1/product", self.Signer),
	}
	sealKey := dataseal.Derive(dataKey, infoSeal)
	defer clear(sealKey)
	seal, err := dataseal.New(scope, cfg.KeyPolicy, sealKey)
	if err != nil {
		return nil, err
	}
	s := &Sealer{seal: seal, self: self}
	cfg.Logger.Info("nitro data key ready", "key_id", file.KeyName, "created", create, "key_policy", cfg.KeyPolicy,
		"identity", self.String())
	return s, nil
}

// recipient is one KMS call's Recipient and the RSA key that opens its
// answer. It is used once.
type recipient struct {
	key  *rsa.PrivateKey
	doc  nitro.Document
	info *types.RecipientInfo
}

func newRecipient(ctx context.Context, docs Documents) (recipient, error) {
	key, err := rsa.GenerateKey(rand.Reader, recipientKeyBits)
	if err != nil {
		return recipient{}, err
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return recipient{}, err
	}
	raw, err := docs.Document(ctx, spki)
	if err != nil {
		return recipient{}, fmt.Errorf("kmsseal: attestation document: %w", err)
	}
	// The document is our own NSM's, so it is parsed, not verified: KMS
	// verifies it, and the identity read here only labels sealed blobs.
	doc, err := nitro.ParseDocument(raw)
	if err != nil {
		return recipient{}, fmt.Errorf("kmsseal: own attestation document: %w", err)
	}
	if !bytes.Equal(doc.PublicKey, spki) {
		return recipient{}, fmt.Errorf("kmsseal: own attestation document: %w: public_key is not the recipient key", nitro.ErrMalformed)
	}
	return recipient{key: key, doc: doc, info: &types.RecipientInfo{
		AttestationDocument:    raw,
		KeyEncryptionAlgorithm: types.KeyEncryptionMechanismRsaesOaepSha256,
	}}, nil
}

// open returns the data key in the answer to r. Nothing uses r again:
// its key goes with Open's return.
func (r recipient) open(envelope, plaintext []byte) ([]byte, error) {
	if len(plaintext) != 0 {
		clear(plaintext)
		return nil, ErrPlaintextExposed
	}
	dataKey, err := cms.Open(envelope, r.key)
	if err != nil {
		return nil, fmt.Errorf("kmsseal: CiphertextForRecipient: %w", err)
	}
	if len(dataKey) != dataKeySize {
		clear(dataKey)
		return nil, fmt.Errorf("%w: %d bytes", ErrWrongDataKey, len(dataKey))
	}
	return dataKey, nil
}

func generate(ctx context.Context, cfg Config, r recipient) ([]byte, dataseal.KeyFile, error) {
	out, err := cfg.KMS.GenerateDataKey(ctx, &kms.GenerateDataKeyInput{
		KeyId:             &cfg.KeyID,
		KeySpec:           types.DataKeySpecAes256,
		EncryptionContext: encryptionContext,
		Recipient:         r.info,
	})
	if err != nil {
		return nil, dataseal.KeyFile{}, refused("GenerateDataKey", err)
	}
	dataKey, err := r.open(out.CiphertextForRecipient, out.Plaintext)
	if err != nil {
		return nil, dataseal.KeyFile{}, err
	}
	if len(out.CiphertextBlob) == 0 || len(out.CiphertextBlob) > dataseal.MaxCiphertext || out.KeyId == nil || *out.KeyId != cfg.KeyID {
		clear(dataKey)
		return nil, dataseal.KeyFile{}, fmt.Errorf("%w: GenerateDataKey returned no usable CiphertextBlob, or another key than %s", ErrKeyRefused, cfg.KeyID)
	}
	return dataKey, dataseal.KeyFile{KeyName: cfg.KeyID, Ciphertext: out.CiphertextBlob}, nil
}

func decrypt(ctx context.Context, c KMS, file dataseal.KeyFile, r recipient) ([]byte, error) {
	// Open checked that file.KeyName is the configured key ARN.
	out, err := c.Decrypt(ctx, &kms.DecryptInput{
		CiphertextBlob:      file.Ciphertext,
		KeyId:               &file.KeyName,
		EncryptionContext:   encryptionContext,
		EncryptionAlgorithm: types.EncryptionAlgorithmSpecSymmetricDefault,
		Recipient:           r.info,
	})
	if err != nil {
		return nil, refused("Decrypt", err)
	}
	return r.open(out.CiphertextForRecipient, out.Plaintext)
}

// refused wraps a KMS error in ErrKeyRefused with its code. KMS's
// messages name keys and conditions, never key material.
func refused(op string, err error) error {
	var api smithy.APIError
	if errors.As(err, &api) {
		return fmt.Errorf("%w: %s: %s: %s", ErrKeyRefused, op, api.ErrorCode(), api.ErrorMessage())
	}
	return fmt.Errorf("kmsseal: %s: %w", op, err)
}

// Kind returns enclave.KindNitro.
func (s *Sealer) Kind() enclave.Kind { return enclave.KindNitro }

// KeyPolicy returns the policy Seal records.
func (s *Sealer) KeyPolicy() enclave.KeyPolicy { return s.seal.KeyPolicy() }

// Self returns the identity of the enclave's attestation document, with
// no report data.
func (s *Sealer) Self() enclave.Identity { return s.self }

// Seal implements enclave.Sealer with AES-256-GCM under a key derived
// from the data key; the public header and ad are authenticated.
func (s *Sealer) Seal(plaintext, ad []byte) ([]byte, error) { return s.seal.Seal(plaintext, ad) }

// Unseal implements enclave.Sealer.
func (s *Sealer) Unseal(blob, ad []byte) ([]byte, error) { return s.seal.Unseal(blob, ad) }

// Derivations from the data key. Only these leave the function that
// holds the data key: the sealing key stays in memory, the check value is
// public.
const (
	infoSeal  = "coterie/nitro/v1/seal"
	infoCheck = "coterie/nitro/v1/key-check"
)
