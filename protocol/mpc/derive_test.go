package mpc_test

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// deriveIndependently is BIP-32 CKDpub written with decred's secp256k1 and
// HMAC-SHA512 only, as a check of mpc.DerivePublicKey and of signing for a
// path.
func deriveIndependently(t testing.TB, masterPub, chainCode []byte, path []uint32) []byte {
	t.Helper()
	pub, err := secp256k1.ParsePubKey(masterPub)
	if err != nil {
		t.Fatal(err)
	}
	chain := slices.Clone(chainCode)
	for _, i := range path {
		if i >= 1<<31 {
			t.Fatalf("hardened index %d", i)
		}
		mac := hmac.New(sha512.New, chain)
		mac.Write(pub.SerializeCompressed())
		var idx [4]byte
		binary.BigEndian.PutUint32(idx[:], i)
		mac.Write(idx[:])
		sum := mac.Sum(nil)
		var il secp256k1.ModNScalar
		if il.SetByteSlice(sum[:32]) || il.IsZero() {
			t.Fatalf("index %d is invalid", i)
		}
		var ilG, parent, child secp256k1.JacobianPoint
		secp256k1.ScalarBaseMultNonConst(&il, &ilG)
		pub.AsJacobian(&parent)
		secp256k1.AddNonConst(&ilG, &parent, &child)
		child.ToAffine()
		pub = secp256k1.NewPublicKey(&child.X, &child.Y)
		chain = sum[32:]
	}
	return pub.SerializeCompressed()
}

func TestDerivePublicKeyMatchesIndependentDerivation(t *testing.T) {
	fx := loadFixture(t, "3of3")
	pub, chain := sameKey(t, fx.Shares)
	paths := []mpc.Path{nil, {0}, {44, 60, 0, 0, 7}, {1<<31 - 1}, {1, 2, 3, 4, 5, 6, 7, 8, 9, 10}}
	for range 20 {
		var b [12]byte
		_, _ = rand.Read(b[:])
		paths = append(paths, mpc.Path{binary.BigEndian.Uint32(b[0:]) >> 1, binary.BigEndian.Uint32(b[4:]) >> 1, binary.BigEndian.Uint32(b[8:]) >> 1})
	}
	for _, p := range paths {
		got, err := mpc.DerivePublicKey(pub, chain, p)
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if want := deriveIndependently(t, pub, chain, p); !slices.Equal(got, want) {
			t.Fatalf("%s: got %x, want %x", p, got, want)
		}
	}
}

func TestDerivePublicKeyRejects(t *testing.T) {
	fx := loadFixture(t, "2of2")
	pub, chain := sameKey(t, fx.Shares)
	for _, tc := range []struct {
		name       string
		pub, chain []byte
		path       mpc.Path
		want       error
	}{
		{"hardened", pub, chain, mpc.Path{1 << 31}, mpc.ErrInvalidPath},
		{"short chain code", pub, chain[:31], nil, mpc.ErrInvalidKey},
		{"uncompressed prefix", append([]byte{4}, pub[1:]...), chain, nil, mpc.ErrInvalidKey},
		{"short key", pub[:32], chain, nil, mpc.ErrInvalidKey},
		{"x not on curve", append([]byte{2}, make([]byte, 32)...), chain, nil, mpc.ErrInvalidKey},
		{"too deep", pub, chain, make(mpc.Path, mpc.MaxPathDepth+1), mpc.ErrInvalidPath},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := mpc.DerivePublicKey(tc.pub, tc.chain, tc.path); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

// TestDerivedSignatures signs for derivation paths, with a presignature and
// with full signing, and checks the signatures against public keys that the
// test derives on its own.
func TestDerivedSignatures(t *testing.T) {
	e := newEngine(t)
	t.Run("presign-online 2of2 m/44/60/0/0/7", func(t *testing.T) {
		fx := loadFixture(t, "2of2")
		path, err := mpc.ParsePath("m/44/60/0/0/7")
		if err != nil {
			t.Fatal(err)
		}
		pub, chain := sameKey(t, fx.Shares)
		stores, id, signers := fixtureStores(t, fx, 0)
		digest := digestOf("derived online")
		sig := signatureOf(t, startOnline(t, e, fx.Shares, signers, stores, id, digest, path))
		verifyIndependently(t, deriveIndependently(t, pub, chain, path), digest, sig)
	})
	t.Run("presign-online 3of3 m/0/1", func(t *testing.T) {
		fx := loadFixture(t, "3of3")
		pub, chain := sameKey(t, fx.Shares)
		stores, id, signers := fixtureStores(t, fx, 0)
		path := mpc.Path{0, 1}
		digest := digestOf("derived online 3of3")
		sig := signatureOf(t, startOnline(t, e, fx.Shares, signers, stores, id, digest, path))
		verifyIndependently(t, deriveIndependently(t, pub, chain, path), digest, sig)
	})
	t.Run("full sign 2of3 m/44/0/0/0/3", func(t *testing.T) {
		fx := loadFixture(t, "2of3")
		pub, chain := sameKey(t, fx.Shares)
		path := mpc.Path{44, 0, 0, 0, 3}
		digest := digestOf("derived full")
		sig := signatureOf(t, startSign(t, e, fx.Shares, []mpc.PartyID{"a", "c"}, digest, path))
		verifyIndependently(t, deriveIndependently(t, pub, chain, path), digest, sig)
		if master, _ := secp256k1.ParsePubKey(pub); sig.Verify(master.SerializeCompressed(), digest) {
			t.Fatal("a signature for a derived key verifies under the master key")
		}
	})
}

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want mpc.Path
		ok   bool
	}{
		{"m", mpc.Path{}, true},
		{"m/44/60/0/0/7", mpc.Path{44, 60, 0, 0, 7}, true},
		{"m/2147483647", mpc.Path{1<<31 - 1}, true},
		{"m/2147483648", nil, false},
		{"m/44'/60", nil, false},
		{"m/44h", nil, false},
		{"m/", nil, false},
		{"m//1", nil, false},
		{"m/01", nil, false},
		{"m/+1", nil, false},
		{"m/-1", nil, false},
		{"m/1/", nil, false},
		{"M/1", nil, false},
		{"1/2", nil, false},
		{"", nil, false},
		{"m/4294967296", nil, false},
		{"m/x", nil, false},
	} {
		got, err := mpc.ParsePath(tc.in)
		if tc.ok != (err == nil) {
			t.Errorf("ParsePath(%q): error %v, want ok=%v", tc.in, err, tc.ok)
			continue
		}
		if !tc.ok {
			if !errors.Is(err, mpc.ErrInvalidPath) {
				t.Errorf("ParsePath(%q): error %v does not wrap ErrInvalidPath", tc.in, err)
			}
			continue
		}
		if !slices.Equal(got, tc.want) || got.String() != tc.in {
			t.Errorf("ParsePath(%q) = %v (%s), want %v", tc.in, got, got, tc.want)
		}
	}
}

// TestDerivationCache derives through the engine's cache from many
// goroutines at once (run under -race), for repeated addresses and for
// fresh addresses of a cached account, and checks every result against the
// uncached derivation and the independent one, and the cache's bound.
func TestDerivationCache(t *testing.T) {
	e := newEngine(t)
	fx := loadFixture(t, "3of3")
	pub, chain := sameKey(t, fx.Shares)
	paths := []mpc.Path{nil, {7}, {44, 60, 0, 0, 7}, {44, 60, 0, 0, 8}, {44, 60, 0, 1, 7}, {0, 1}}
	want := make([][]byte, len(paths))
	for i, p := range paths {
		want[i] = deriveIndependently(t, pub, chain, p)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range 3 {
				for i := range paths {
					i := (i + g + r) % len(paths)
					got, tweak, err := e.DeriveCached(pub, chain, paths[i])
					if err != nil {
						errs <- err
						return
					}
					if !slices.Equal(got, want[i]) {
						errs <- fmt.Errorf("%s: got %x, want %x", paths[i], got, want[i])
						return
					}
					// The tweak is the caller's own: changing it must not
					// reach the cache.
					clear(tweak)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, _, err := e.DeriveCached(pub, chain, mpc.Path{44, 1 << 31}); !errors.Is(err, mpc.ErrInvalidPath) {
		t.Fatalf("hardened step below a cached account: got %v, want ErrInvalidPath", err)
	}
	if _, _, err := e.DeriveCached(pub[:32], chain, mpc.Path{1}); !errors.Is(err, mpc.ErrInvalidKey) {
		t.Fatalf("bad master key: got %v, want ErrInvalidKey", err)
	}

	for i := range mpc.DerivationCacheSize/2 + 10 {
		p := mpc.Path{44, 60, 0, 0, uint32(i)}
		got, _, err := e.DeriveCached(pub, chain, p)
		if err != nil {
			t.Fatal(err)
		}
		if i%500 == 0 {
			if w, _ := mpc.DerivePublicKey(pub, chain, p); !slices.Equal(got, w) {
				t.Fatalf("%s: got %x, want %x", p, got, w)
			}
		}
	}
	if n := e.DerivationCacheLen(); n > mpc.DerivationCacheSize {
		t.Fatalf("cache holds %d derivations, bound is %d", n, mpc.DerivationCacheSize)
	}
	for _, i := range []int{0, len(paths) - 1} {
		if got, _, err := e.DeriveCached(pub, chain, paths[i]); err != nil || !slices.Equal(got, want[i]) {
			t.Fatalf("%s after eviction: got %x (%v), want %x", paths[i], got, err, want[i])
		}
	}
}
