package workspace

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace/store"
)

// legacyStore is the store of a directory made before the setup was
// stored: workspace "default", and a signer whose key names its parties
// when signerParties > 0.
func legacyStore(t *testing.T, cloud, signerParties int) *store.Store {
	t.Helper()
	cfg := store.DefaultConfig()
	cfg.Path = filepath.Join(t.TempDir(), FileDB)
	st, err := store.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if _, err := st.EnsureWorkspace(legacyWorkspaceID, "Default workspace", DefaultVaults); err != nil {
		t.Fatal(err)
	}
	if signerParties == 0 {
		return st
	}
	g := store.Grant{TokenID: [32]byte{1}, ExpiresAt: time.Now().Add(time.Hour)}
	u, err := st.CreateUser(legacyWorkspaceID, "signer", protocol.WsRole_WS_ROLE_SIGNER, g, store.ActorAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Pair(store.Pairing{TokenID: g.TokenID, UserID: u.Id}); err != nil {
		t.Fatal(err)
	}
	key := &protocol.WsSigningKey{PublicKey: []byte{2}, ChainCode: make([]byte, 32), NodePartyId: "cosigner", SignerPartyIds: []string{"cosigner"}}
	for i := range cloud {
		key.CloudPartyIds = append(key.CloudPartyIds, partyName(i+1))
		if i+1 < signerParties {
			key.SignerPartyIds = append(key.SignerPartyIds, partyName(i+1))
		}
	}
	if _, err := st.CompleteKeygen(u.Id, key, nil); err != nil {
		t.Fatal(err)
	}
	return st
}

func partyName(i int) string { return "cloud-" + string(rune('0'+i)) }

// TestLegacySetup opens stores of directories made before the setup was
// stored: the workspace keeps its ID and "r-" request IDs, and the MPC
// setup is read from its signers' keys, or else from its cloud co-signers'
// directories, before the flags or the defaults; once stored, it binds.
func TestLegacySetup(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		cloud, signers, keyrings int
		count, quorum            int // Config
		want                     [2]uint32
	}{
		{name: "2-of-2 key, nothing set", cloud: 1, signers: 2, want: [2]uint32{1, 2}},
		{name: "2-of-3 key, nothing set", cloud: 2, signers: 2, want: [2]uint32{2, 2}},
		{name: "no key, one keyring", keyrings: 1, want: [2]uint32{1, 2}},
		{name: "no key, two keyrings, quorum set", keyrings: 2, quorum: 2, want: [2]uint32{2, 2}},
		{name: "nothing to read, defaults", want: [2]uint32{2, 3}},
		{name: "nothing to read, settings", count: 1, want: [2]uint32{1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := legacyStore(t, tc.cloud, tc.signers)
			cfg := DefaultConfig()
			cfg.DataDir = t.TempDir()
			cfg.CloudCosigners, cfg.Quorum = tc.count, tc.quorum
			for i := range tc.keyrings {
				dir := filepath.Join(cfg.DataDir, DirCosigners, partyName(i+1))
				if err := os.MkdirAll(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, "keyring.sealed"), []byte("sealed"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := openSetup(cfg, st)
			if err != nil {
				t.Fatal(err)
			}
			if got.GetWorkspaceId() != legacyWorkspaceID || got.GetRequestIdPrefix() != "r-" ||
				got.GetCloudCosigners() != tc.want[0] || got.GetQuorum() != tc.want[1] {
				t.Fatalf("setup %v, want workspace default, r-, %v", got, tc.want)
			}
			if stored, ok, err := st.Setup(); err != nil || !ok || stored.GetQuorum() != tc.want[1] {
				t.Fatalf("stored setup %v, %t, %v", stored, ok, err)
			}
			cfg.CloudCosigners, cfg.Quorum = 0, int(tc.want[1])+1
			if _, err := openSetup(cfg, st); !errors.Is(err, ErrSetupMismatch) || !strings.Contains(err.Error(), "workspace default") {
				t.Fatalf("another quorum after the first start: %v", err)
			}
		})
	}
}
