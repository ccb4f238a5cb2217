package gcsfiles_test

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/enclave/enclavetest"
	"github.com/coterie-mpc/coterie/enclave/gcpcs"
	"github.com/coterie-mpc/coterie/enclave/gcpcs/gcpcstest"
	"github.com/coterie-mpc/coterie/enclave/gcpcs/gcsfiles"
	"github.com/coterie-mpc/coterie/enclave/gcpcs/kmsseal"
)

const provider = "//iam.googleapis.com/projects/123456789012/locations/global/workloadIdentityPools/coterie/providers/attestation"

var (
	digestA = "sha256:" + strings.Repeat("a1", 32)
	digestB = "sha256:" + strings.Repeat("b2", 32)
)

// env is a test issuer, an STS that admits only digestA, and a Cloud
// Storage bucket that trusts that STS.
type env struct {
	issuer  *gcpcstest.Issuer
	sts     *gcpcstest.STS
	storage *gcpcstest.Storage
}

func newEnv(t *testing.T) *env {
	iss := gcpcstest.NewIssuer(t)
	sts := gcpcstest.NewSTS(t, iss, provider, digestA)
	return &env{issuer: iss, sts: sts, storage: gcpcstest.NewStorage(t, sts, "coterie-nodes")}
}

// files returns the Files of a workload of image digest in bucket, whose
// tokens come from a test launcher.
func (e *env) files(t *testing.T, digest, bucket string) *gcsfiles.Files {
	socket := gcpcstest.NewLauncher(t, func(r gcpcstest.LauncherRequest) string {
		return e.issuer.Token(t, gcpcstest.Spec{Audience: r.Audience, IssuedAt: time.Now(), ImageDigest: digest, Nonces: r.Nonces})
	})
	scfg := kmsseal.DefaultConfig()
	scfg.Tokens, scfg.Provider, scfg.STSEndpoint = gcpcs.NewLauncher(socket), provider, e.sts.URL()
	scfg.HTTPClient = e.sts.Server.Client() // httptest's servers share one certificate
	scfg.DataKeyFile, scfg.Logger = filepath.Join(t.TempDir(), "unused"), enclavetest.Logger(t)
	f, err := gcsfiles.New(gcsfiles.Config{
		Bucket: bucket, Prefix: "n3/", Endpoint: e.storage.URL(), HTTPClient: scfg.HTTPClient,
		Token: func(ctx context.Context) (string, error) { return kmsseal.AccessToken(ctx, scfg) },
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestPutGet: a file put is stored under the prefix and read back; a
// file never put is fs.ErrNotExist.
func TestPutGet(t *testing.T) {
	e := newEnv(t)
	f := e.files(t, digestA, "coterie-nodes")
	if _, err := f.Get(ctxT(t), "node.db"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Get of a missing file = %v, want fs.ErrNotExist", err)
	}
	for _, data := range [][]byte{[]byte("sealed v1"), []byte("sealed v2")} {
		if err := f.Put(ctxT(t), "node.db", data); err != nil {
			t.Fatal(err)
		}
		got, err := f.Get(ctxT(t), "node.db")
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("Get = %q, %v; want %q", got, err, data)
		}
	}
	if _, ok := e.storage.Object("n3/node.db"); !ok {
		t.Fatal("the object is not stored under the prefix")
	}
}

// TestRefusals: another image gets no access token, so neither reads nor
// writes; a token Cloud Storage does not trust and a bucket the workload
// may not use are ErrRefused.
func TestRefusals(t *testing.T) {
	e := newEnv(t)
	if err := e.files(t, digestA, "coterie-nodes").Put(ctxT(t), "node.db", []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	other := e.files(t, digestB, "coterie-nodes")
	if _, err := other.Get(ctxT(t), "node.db"); !errors.Is(err, kmsseal.ErrKeyRefused) {
		t.Errorf("Get by another image = %v, want the STS refusal", err)
	}
	if err := other.Put(ctxT(t), "node.db", []byte("forged")); !errors.Is(err, kmsseal.ErrKeyRefused) {
		t.Errorf("Put by another image = %v, want the STS refusal", err)
	}
	if b, _ := e.storage.Object("n3/node.db"); string(b) != "sealed" {
		t.Errorf("the object is %q after refused writes", b)
	}
	forged, err := gcsfiles.New(gcsfiles.Config{Bucket: "coterie-nodes", Endpoint: e.storage.URL(), HTTPClient: e.sts.Server.Client(),
		Token: func(context.Context) (string, error) { return "not-from-sts", nil }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := forged.Get(ctxT(t), "n3/node.db"); !errors.Is(err, gcsfiles.ErrRefused) {
		t.Errorf("Get with a forged token = %v, want ErrRefused", err)
	}
	if err := e.files(t, digestA, "someone-elses").Put(ctxT(t), "node.db", []byte("x")); !errors.Is(err, gcsfiles.ErrRefused) {
		t.Errorf("Put into another bucket = %v, want ErrRefused", err)
	}
}

func TestConfigValidate(t *testing.T) {
	err := gcsfiles.Config{Bucket: "Bad.Bucket", Prefix: "../x", Endpoint: "http://storage"}.Validate()
	for _, want := range []string{"bucket", "prefix", "https", "Token"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate = %v, want it to name %s", err, want)
		}
	}
}
