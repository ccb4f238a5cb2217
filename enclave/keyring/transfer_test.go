package keyring_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/enclavetest"
	"github.com/coterie-mpc/coterie/enclave/keyring"
	"github.com/coterie-mpc/coterie/enclave/sim"
	"github.com/coterie-mpc/coterie/enclave/store"
)

// node is one simulated node: a data directory with a store, on a machine.
type node struct {
	dir      string
	enclave  *sim.Enclave
	identity ed25519.PrivateKey
	keyring  *keyring.Keyring
}

func newNode(t *testing.T, m *enclavetest.Machine, trusted ...ed25519.PublicKey) *node {
	t.Helper()
	n := &node{dir: t.TempDir()}
	n.enclave = m.Enclave(n.dir, func(c *sim.Config) { c.TrustedPlatforms = trusted })
	_, n.identity, _ = ed25519.GenerateKey(nil)
	var err error
	if n.keyring, err = keyring.Generate(); err != nil {
		t.Fatal(err)
	}
	if err := store.Create(storeConfig(t, n.dir), n.enclave, n.identity, n.keyring); err != nil {
		t.Fatal(err)
	}
	return n
}

func storeConfig(t *testing.T, dir string) store.Config {
	cfg := store.DefaultConfig()
	cfg.Dir = dir
	cfg.Logger = enclavetest.Logger(t)
	return cfg
}

func policyFor(measurement []byte) enclave.Policy {
	return enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindSim, Measurement: measurement}}}
}

// TestTransferBetweenMachines moves the keyring from a member on one
// simulated machine to a joiner on another, which seals it with its own
// enclave; then scans both data directories for the secrets involved.
func TestTransferBetweenMachines(t *testing.T) {
	ctx := context.Background()
	joinerMachine := enclavetest.NewMachine(t)
	joinerEnclave := joinerMachine.Enclave(t.TempDir(), nil)
	holder := newNode(t, enclavetest.NewMachine(t), joinerEnclave.PlatformKey())
	if _, err := holder.keyring.Rotate(); err != nil {
		t.Fatal(err)
	}
	oldCT, _ := holder.keyring.Encrypt("presig/k/1", []byte("share"))

	joiner := newNode(t, joinerMachine) // holds its own, different keyring for now
	recv, err := keyring.NewReceiver(ctx, joiner.enclave, keyring.TestBind)
	if err != nil {
		t.Fatal(err)
	}
	wrapped, peer, err := holder.keyring.Wrap(ctx, holder.enclave, policyFor(enclavetest.TestMeasurement), recv.Request(), keyring.TestBind)
	if err != nil {
		t.Fatalf("Wrap: %v", err)
	}
	if peer.Kind != enclave.KindSim || !bytes.Equal(peer.Measurement, enclavetest.TestMeasurement) {
		t.Fatalf("Wrap returned peer %v", peer)
	}
	got, err := recv.Unwrap(wrapped)
	if err != nil {
		t.Fatalf("Unwrap: %v", err)
	}
	if got.Version() != 2 {
		t.Fatalf("unwrapped keyring at version %d, want 2", got.Version())
	}
	if pt, err := got.Decrypt("presig/k/1", oldCT); err != nil || string(pt) != "share" {
		t.Fatalf("the joiner cannot decrypt the holder's record: %v", err)
	}

	st, err := store.Open(storeConfig(t, joiner.dir))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.SaveKeyring(joiner.enclave, got); err != nil {
		t.Fatal(err)
	}
	reopened, err := st.Keyring(joiner.enclave)
	if err != nil || reopened.Version() != 2 {
		t.Fatalf("reopened keyring: %v", err)
	}
	if _, err := reopened.Decrypt("presig/k/1", oldCT); err != nil {
		t.Fatalf("the joiner's sealed copy cannot decrypt: %v", err)
	}

	// Everything secret in play: both nodes' identity keys, every data key
	// of both keyrings, and the joiner's transfer private key. The sim
	// roots are in the data directories in the clear by design, and are
	// not scanned for.
	secrets := [][]byte{holder.identity.Seed(), joiner.identity.Seed(), recv.PrivateKeyForTest()}
	secrets = append(secrets, holder.keyring.DataKeysForTest()...)
	secrets = append(secrets, joiner.keyring.DataKeysForTest()...)
	for _, dir := range []string{holder.dir, joiner.dir} {
		findings, err := enclavetest.ScanDir(dir, secrets)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range findings {
			t.Error(f)
		}
	}
	// The scan can find things: the wrapped keyring is ciphertext, but the
	// plaintext encoding is not.
	findings, err := enclavetest.ScanDir(writeFile(t, got.DataKeysForTest()[0]), secrets)
	if err != nil || len(findings) == 0 {
		t.Fatalf("the scan misses a data key written in the clear (%v)", err)
	}
	if findings, _ := enclavetest.ScanDir(writeFile(t, wrapped), secrets); len(findings) != 0 {
		t.Fatalf("the wrapped keyring holds secrets in the clear: %v", findings)
	}
}

func writeFile(t *testing.T, data []byte) string {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), data, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestTransferRefused(t *testing.T) {
	ctx := context.Background()
	joinerMachine := enclavetest.NewMachine(t)
	joiner := joinerMachine.Enclave(t.TempDir(), nil)
	holderMachine := enclavetest.NewMachine(t)
	holder := holderMachine.Enclave(t.TempDir(), func(c *sim.Config) {
		c.TrustedPlatforms = []ed25519.PublicKey{joiner.PlatformKey()}
	})
	k, _ := keyring.Generate()
	recv, err := keyring.NewReceiver(ctx, joiner, keyring.TestBind)
	if err != nil {
		t.Fatal(err)
	}
	allowed := policyFor(enclavetest.TestMeasurement)

	t.Run("identity not allowed by policy", func(t *testing.T) {
		other := bytes.Repeat([]byte{1}, 32)
		w, _, err := k.Wrap(ctx, holder, policyFor(other), recv.Request(), keyring.TestBind)
		if !errors.Is(err, enclave.ErrNotAllowed) || w != nil {
			t.Fatalf("Wrap = %d bytes, %v; want ErrNotAllowed", len(w), err)
		}
	})
	t.Run("untrusted machine", func(t *testing.T) {
		stranger := holderMachine.Enclave(t.TempDir(), nil)
		if _, _, err := k.Wrap(ctx, stranger, allowed, recv.Request(), keyring.TestBind); !errors.Is(err, enclave.ErrEvidenceUnverified) {
			t.Fatalf("Wrap = %v, want ErrEvidenceUnverified", err)
		}
	})
	t.Run("evidence over another key", func(t *testing.T) {
		// A man in the middle keeps the joiner's evidence but substitutes
		// his own key, taken from a receiver he controls.
		mitm, err := keyring.NewReceiver(ctx, holderMachine.Enclave(t.TempDir(), nil), keyring.TestBind)
		if err != nil {
			t.Fatal(err)
		}
		req := spliceKey(t, recv.Request(), mitm.Request())
		if _, _, err := k.Wrap(ctx, holder, allowed, req, keyring.TestBind); !errors.Is(err, keyring.ErrKeyNotBound) {
			t.Fatalf("Wrap = %v, want ErrKeyNotBound", err)
		}
	})
	t.Run("request of another joiner", func(t *testing.T) {
		// The evidence is genuine and covers its key, but binds another
		// node's identity: replayed by a node that is not its maker.
		if _, _, err := k.Wrap(ctx, holder, allowed, recv.Request(), []byte("another node's identity")); !errors.Is(err, keyring.ErrKeyNotBound) {
			t.Fatalf("Wrap = %v, want ErrKeyNotBound", err)
		}
	})
	t.Run("malformed request", func(t *testing.T) {
		req := recv.Request()
		for _, bad := range [][]byte{nil, req[:10], append(bytes.Clone(req), 0), []byte("garbage")} {
			if _, _, err := k.Wrap(ctx, holder, allowed, bad, keyring.TestBind); !errors.Is(err, keyring.ErrMalformedRequest) {
				t.Fatalf("Wrap(%d bytes) = %v, want ErrMalformedRequest", len(bad), err)
			}
		}
	})
	t.Run("wrapped for another receiver or tampered", func(t *testing.T) {
		w, _, err := k.Wrap(ctx, holder, allowed, recv.Request(), keyring.TestBind)
		if err != nil {
			t.Fatal(err)
		}
		other, _ := keyring.NewReceiver(ctx, joiner, keyring.TestBind)
		if _, err := other.Unwrap(w); !errors.Is(err, keyring.ErrUnwrap) {
			t.Fatalf("Unwrap by another receiver = %v, want ErrUnwrap", err)
		}
		for i := range len(w) {
			bad := bytes.Clone(w)
			bad[i] ^= 0x40
			if _, err := recv.Unwrap(bad); !errors.Is(err, keyring.ErrUnwrap) && !errors.Is(err, keyring.ErrMalformedWrapped) {
				t.Fatalf("byte %d changed: Unwrap = %v", i, err)
			}
		}
		if _, err := recv.Unwrap(w); err != nil {
			t.Fatalf("Unwrap = %v", err)
		}
	})
}

// spliceKey returns victim's request with the public key of attacker's.
// Both keys have the same length, and the key starts at byte 9 after the
// magic, format, KEM ID and 2-byte length.
func spliceKey(t *testing.T, victim, attacker []byte) []byte {
	t.Helper()
	const off, size = 9, 32
	if len(victim) < off+size || len(attacker) < off+size {
		t.Fatal("request too short")
	}
	out := bytes.Clone(victim)
	copy(out[off:off+size], attacker[off:off+size])
	return out
}
