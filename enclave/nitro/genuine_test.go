package nitro_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/nitro"
	"github.com/coterie-mpc/coterie/enclave/nitro/nitrotest"
)

// genuine is an attestation document that an AWS Nitro hypervisor signed
// for another project's enclave, as testdata/README.md records, and what
// it says.
type genuine struct {
	file      string
	moduleID  string
	timestamp int64 // milliseconds
	// pcrs are the PCRs that are not all zero; the document has sixteen.
	pcrs      map[uint32]string
	publicKey string // hex; "" when the document has none
	userData  string // hex
	nonceLen  int
	leafUntil time.Time
}

var genuineDocs = []genuine{
	{
		file: "evervault-debug-2023.b64", moduleID: "i-0644948d93f19c17b-enc018a705a4fc6e067", timestamp: 1694102161556,
		pcrs: map[uint32]string{
			3: "4a9329d69c836267b18abbf9f4a38889124490453419e426818626348d21f989dc930b1562682a9082887454e53425aa",
			4: "e611184557ab066255b7f6c5d4dcf8c38e467913fd5176705dc1914c5d5b3f388282abd6a462729c5ab9c9e278f068de",
		},
		userData: "3059301306072a8648ce3d020106082a8648ce3d0301070342000402ccdd3408251edf1aa5df62c066c86216e0e000" +
			"4935e86b4e0a2999345f94918c897ee5167f0fb39db9240782c63b79a62417be66d42ae16b65ba0d771f7783",
		nonceLen:  256,
		leafUntil: time.Date(2023, 9, 7, 18, 55, 11, 0, time.UTC),
	},
	{
		file: "sui-sentinel-2025.hex", moduleID: "i-0a9f2a8b8dd31c7c8-enc019802a541b75725", timestamp: 1752827858990,
		pcrs: map[uint32]string{
			0: "19d44c076cdbc0d6a0a7d0d6c661e7888a710fb324c56b54d678a0ae0fc9bf41be4b45c07f4010a21f34f518bd1407d1",
			1: "19d44c076cdbc0d6a0a7d0d6c661e7888a710fb324c56b54d678a0ae0fc9bf41be4b45c07f4010a21f34f518bd1407d1",
			2: "21b9efbc184807662e966d34f390821309eeac6802309798826296bf3e8bec7c10edb30948c90ba67310f7b964fc500a",
			4: "f8e8fc387257438667dc453ccde507690656c27e1abd42f5b6746a609697b0b227fdbd345b5133b9eac8248d718ad75b",
		},
		publicKey: "d98bf9cbc8419b84dcec66816dfdba5ffa8bba6b75aae44be9c969b4b82316aa",
		leafUntil: time.Date(2025, 7, 18, 11, 23, 27, 0, time.UTC),
	},
}

// TestGenuineDocuments parses each genuine document and verifies it with
// the production configuration, which trusts only the pinned AWS root, on
// a clock at the document's own timestamp. The evervault document is a
// debug enclave's with a definite-length payload map; the sui-sentinel one
// a production enclave's (PCR0 set, PCR8 zero: an unsigned image) whose
// payload map has indefinite length. Neither carries Coterie report data
// in user_data, so Verify refuses both as ErrMalformed; their identities
// go through the policy on their own.
func TestGenuineDocuments(t *testing.T) {
	root, err := nitro.AWSRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range genuineDocs {
		t.Run(g.file, func(t *testing.T) {
			raw := readDocument(t, g.file)
			doc, err := nitro.ParseDocument(raw)
			if err != nil {
				t.Fatal(err)
			}
			at := time.UnixMilli(g.timestamp).UTC()
			if doc.ModuleID != g.moduleID || doc.Digest != "SHA384" || !doc.Timestamp.Equal(at) || len(doc.PCRs) != 16 ||
				hex.EncodeToString(doc.PublicKey) != g.publicKey || hex.EncodeToString(doc.UserData) != g.userData ||
				len(doc.Nonce) != g.nonceLen {
				t.Fatalf("document %s at %s, %d PCRs, public_key %x, user_data %x, nonce of %d bytes",
					doc.ModuleID, doc.Timestamp, len(doc.PCRs), doc.PublicKey, doc.UserData, len(doc.Nonce))
			}
			for i := range uint32(16) {
				want := strings.Repeat("00", enclave.NitroPCRSize)
				if v, ok := g.pcrs[i]; ok {
					want = v
				}
				if got := hex.EncodeToString(doc.PCRs[i]); got != want {
					t.Errorf("PCR%d = %s, want %s", i, got, want)
				}
			}
			// The cabundle runs from the AWS root to the leaf's issuer: the
			// root, a regional, a zonal and an instance certificate.
			if len(doc.CABundle) != 4 || !bytes.Equal(doc.CABundle[0], root.Raw) {
				t.Fatalf("cabundle of %d certificates does not start with the AWS root", len(doc.CABundle))
			}

			v := genuineVerifier(t, nitro.AWSRoots(), at, nitro.DefaultMaxAge)
			got, err := v.VerifyDocument(raw, nitro.Expect{Nonce: doc.Nonce})
			if err != nil {
				t.Fatalf("VerifyDocument at the document's timestamp: %v", err)
			}
			if !reflect.DeepEqual(got, doc) {
				t.Fatalf("VerifyDocument returned %+v, ParseDocument %+v", got, doc)
			}
			for _, tc := range []struct {
				name string
				v    *nitro.Verifier
				raw  []byte
				want nitro.Expect
				err  error
			}{
				{"one signature byte flipped", v, flipLastByte(t, raw), nitro.Expect{}, nitro.ErrBadSignature},
				{"another nonce", v, raw, nitro.Expect{Nonce: []byte("another nonce")}, nitro.ErrNonceMismatch},
				{"a test root", genuineVerifier(t, nitrotest.NewPKI(t, at).Roots(), at, nitro.DefaultMaxAge), raw, nitro.Expect{}, nitro.ErrWrongChain},
				{"stale", genuineVerifier(t, nitro.AWSRoots(), at.Add(nitro.DefaultMaxAge+time.Millisecond), nitro.DefaultMaxAge),
					raw, nitro.Expect{}, nitro.ErrExpired},
				{"leaf expired", genuineVerifier(t, nitro.AWSRoots(), g.leafUntil.Add(time.Second), 24*time.Hour),
					raw, nitro.Expect{}, nitro.ErrExpired},
			} {
				if _, err := tc.v.VerifyDocument(tc.raw, tc.want); !errors.Is(err, tc.err) {
					t.Errorf("%s: VerifyDocument = %v, want %v", tc.name, err, tc.err)
				}
			}

			if _, err := v.Verify(context.Background(), evidence(raw), allowA0); !errors.Is(err, nitro.ErrMalformed) {
				t.Fatalf("Verify(another project's document) = %v, want ErrMalformed for its user_data", err)
			}
		})
	}
}

// TestGenuineIdentities checks what a policy makes of the genuine
// documents' identities: the production enclave is admitted by a rule on
// its PCR0, PCR1 and PCR2 and by no other, and the debug enclave by none.
func TestGenuineIdentities(t *testing.T) {
	ids := map[string]enclave.Identity{}
	for _, g := range genuineDocs {
		doc, err := nitro.ParseDocument(readDocument(t, g.file))
		if err != nil {
			t.Fatal(err)
		}
		ids[g.file] = nitro.Identity(doc)
	}
	debug, prod := ids["evervault-debug-2023.b64"], ids["sui-sentinel-2025.hex"]
	if !debug.Debug || prod.Debug || !enclave.AllZero(prod.Signer) {
		t.Fatalf("debug %s, production %s", debug, prod)
	}
	pcr := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	sentinel := genuineDocs[1].pcrs
	admits := enclave.Rule{Kind: enclave.KindNitro, Measurement: pcr(sentinel[0]),
		PCRs: map[uint32][]byte{1: pcr(sentinel[1]), 2: pcr(sentinel[2])}}
	if err := policy(admits).Check(prod); err != nil {
		t.Fatalf("a rule on PCR0, PCR1 and PCR2: %v", err)
	}
	otherPCR4 := admits
	otherPCR4.PCRs = map[uint32][]byte{4: nitrotest.PCR(4)}
	for name, tc := range map[string]struct {
		p   enclave.Policy
		id  enclave.Identity
		err error
	}{
		"another PCR4":          {policy(otherPCR4), prod, enclave.ErrNotAllowed},
		"the debug enclave":     {policy(admits), debug, enclave.ErrNotAllowed},
		"the unsigned PCR8 pin": {policy(enclave.Rule{Kind: enclave.KindNitro, Signer: prod.Signer}), prod, enclave.ErrInvalidPolicy},
	} {
		if err := tc.p.Check(tc.id); !errors.Is(err, tc.err) {
			t.Errorf("%s: Check = %v, want %v", name, err, tc.err)
		}
	}
}

// TestGenuineUserData: the evervault enclave put a P-256 public key in
// user_data, which the parsed document hands back unchanged.
func TestGenuineUserData(t *testing.T) {
	doc, err := nitro.ParseDocument(readDocument(t, "evervault-debug-2023.b64"))
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.ParsePKIXPublicKey(doc.UserData)
	if pub, ok := k.(*ecdsa.PublicKey); err != nil || !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("user_data is not a P-256 key: %T, %v", k, err)
	}
}

func genuineVerifier(t *testing.T, roots *x509.CertPool, now time.Time, maxAge time.Duration) *nitro.Verifier {
	t.Helper()
	cfg := nitro.DefaultConfig()
	cfg.Roots, cfg.Clock, cfg.MaxAge = roots, clock.NewFake(now), maxAge
	v, err := nitro.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// flipLastByte returns raw with the last byte of its signature, the last
// item of the COSE_Sign1, changed.
func flipLastByte(t *testing.T, raw []byte) []byte {
	t.Helper()
	if n := len(raw); n < 98 || raw[n-98] != 0x58 || raw[n-97] != 96 {
		t.Fatal("the document does not end with a 96-byte signature")
	}
	out := bytes.Clone(raw)
	out[len(out)-1] ^= 1
	return out
}

// readDocument returns the document in testdata/name, which holds it in
// the encoding its publisher used: base64 (.b64) or hex (.hex).
func readDocument(t testing.TB, name string) []byte {
	t.Helper()
	text, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.TrimSpace(string(text))
	var raw []byte
	switch {
	case strings.HasSuffix(name, ".b64"):
		raw, err = base64.StdEncoding.DecodeString(s)
	case strings.HasSuffix(name, ".hex"):
		raw, err = hex.DecodeString(s)
	default:
		t.Fatalf("%s: unknown encoding", name)
	}
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
