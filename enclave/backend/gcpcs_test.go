//go:build gcpcs

package backend

import (
	"context"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/gcpcs"
	"github.com/coterie-mpc/coterie/enclave/gcpcs/gcpcstest"
	"github.com/coterie-mpc/coterie/enclave/gcpcs/kmsseal"
)

// TestConfidentialSpaceBackend opens the gcpcs backend against a test
// launcher, issuer, STS and Cloud KMS: it seals across restarts, its
// evidence verifies with the policy's image digest, and another image gets
// no key.
func TestConfidentialSpaceBackend(t *testing.T) {
	if !slices.Contains(Available(), enclave.KindConfidentialSpace) || CheckAvailable(enclave.KindConfidentialSpace) != nil {
		t.Fatal("a gcpcs build does not offer confidential-space")
	}
	now := time.Now()
	digest := make([]byte, 32)
	digest[0] = 0xc5
	digestHex := "sha256:" + hex.EncodeToString(digest)
	iss := gcpcstest.NewIssuer(t)
	sts := gcpcstest.NewSTS(t, iss, testProvider, digestHex)
	kms := gcpcstest.NewKMS(t, sts, "projects/coterie-test/locations/global/keyRings/coterie/cryptoKeys/data-key")
	launcherFor := func(d string) string {
		return gcpcstest.NewLauncher(t, func(r gcpcstest.LauncherRequest) string {
			return iss.Token(t, gcpcstest.Spec{Audience: r.Audience, IssuedAt: now, ImageDigest: d, Nonces: r.Nonces})
		})
	}
	vcfg := gcpcs.DefaultConfig()
	vcfg.HTTPClient = iss.Server.Client()
	cfg := testConfig(t)
	cfg.Kind, cfg.KeyPolicy, cfg.Clock = enclave.KindConfidentialSpace, enclave.KeyPolicyCode, clock.NewFake(now.Add(time.Minute))
	cfg.ConfidentialSpace = &vcfg
	cfg.ConfidentialSpaceSealing = ConfidentialSpaceConfig{
		Project: "coterie-test", Location: "global", KeyRing: "coterie", Key: "data-key", WorkloadIdentityProvider: testProvider,
		STSEndpoint: sts.URL(), KMSEndpoint: kms.URL(), LauncherSocket: launcherFor(digestHex),
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if e.Kind() != enclave.KindConfidentialSpace || e.Self().Measurement[0] != 0xc5 {
		t.Fatalf("New = %s, self %s", e.Kind(), e.Self())
	}
	blob, err := e.Seal([]byte("keyring"), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := e.Evidence(context.Background(), []byte("report"))
	if err != nil {
		t.Fatal(err)
	}
	p := enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindConfidentialSpace, Measurement: digest, Issuer: iss.URL()}}}
	if id, err := e.Verify(context.Background(), ev, p); err != nil || id.Kind != enclave.KindConfidentialSpace {
		t.Fatalf("Verify(own evidence) = %s, %v", id, err)
	}
	// The issuer is trusted because the policy names it, not because the
	// backend's client reaches it: under the default (Google's) it is not.
	p.Allow[0].Issuer = ""
	if _, err := e.Verify(context.Background(), ev, p); !errors.Is(err, gcpcs.ErrWrongIssuer) {
		t.Fatalf("Verify(own evidence) under a policy of Google's issuer = %v, want ErrWrongIssuer", err)
	}

	cfg.Initialize = false
	again, err := New(cfg)
	if err != nil {
		t.Fatalf("restart: %v", err)
	}
	if got, err := again.Unseal(blob, []byte("ad")); err != nil || string(got) != "keyring" {
		t.Fatalf("Unseal after restart = %q, %v", got, err)
	}

	digest[0] = 0xee
	cfg.ConfidentialSpaceSealing.LauncherSocket = launcherFor("sha256:" + hex.EncodeToString(digest))
	if _, err := New(cfg); !errors.Is(err, kmsseal.ErrKeyRefused) {
		t.Fatalf("restart as another image: New = %v, want ErrKeyRefused", err)
	}
}

// TestConfidentialSpaceFiles: the node's lasting files go to a Cloud
// Storage bucket with the workload's federated token, under the node's
// prefix, and come back; another image's workload gets at none of them.
func TestConfidentialSpaceFiles(t *testing.T) {
	digest := "sha256:" + hex.EncodeToString(make([]byte, 32))
	iss := gcpcstest.NewIssuer(t)
	sts := gcpcstest.NewSTS(t, iss, testProvider, digest)
	storage := gcpcstest.NewStorage(t, sts, "coterie-nodes")
	vcfg := gcpcs.DefaultConfig()
	vcfg.HTTPClient = iss.Server.Client()
	cfg := testConfig(t)
	cfg.Kind, cfg.ConfidentialSpace = enclave.KindConfidentialSpace, &vcfg
	filesOf := func(d string) interface {
		Get(context.Context, string) ([]byte, error)
		Put(context.Context, string, []byte) error
	} {
		cfg.ConfidentialSpaceSealing = ConfidentialSpaceConfig{
			Project: "coterie-test", Location: "global", KeyRing: "coterie", Key: "data-key", WorkloadIdentityProvider: testProvider,
			STSEndpoint: sts.URL(), StorageEndpoint: storage.URL(),
			LauncherSocket: gcpcstest.NewLauncher(t, func(r gcpcstest.LauncherRequest) string {
				return iss.Token(t, gcpcstest.Spec{Audience: r.Audience, IssuedAt: time.Now(), ImageDigest: d, Nonces: r.Nonces})
			}),
		}
		f, err := ConfidentialSpaceFiles(cfg, "coterie-nodes", "n3/")
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	f := filesOf(digest)
	if err := f.Put(ctx, "node.db", []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	if b, err := f.Get(ctx, "node.db"); err != nil || string(b) != "sealed" {
		t.Fatalf("Get = %q, %v", b, err)
	}
	if _, ok := storage.Object("n3/node.db"); !ok {
		t.Fatal("not stored under the node's prefix")
	}
	if _, err := filesOf("sha256:"+strings.Repeat("ee", 32)).Get(ctx, "node.db"); !errors.Is(err, kmsseal.ErrKeyRefused) {
		t.Fatalf("another image's Get = %v, want the STS refusal", err)
	}
}
