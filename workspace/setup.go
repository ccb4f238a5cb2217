package workspace

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace/cosigner"
	"github.com/coterie-mpc/coterie/workspace/store"
)

// ErrSetupMismatch is returned by Open when Config asks for another MPC
// setup than the one the data directory's workspace was created with. Its
// message names both.
var ErrSetupMismatch = errors.New("workspace: the MPC setup asked for differs from the workspace's")

// defaultCloudCosigners is a new workspace's number of cloud co-signers
// when Config names none; its quorum defaults to all parties.
const defaultCloudCosigners = 2

// legacyWorkspaceID is the ID every workspace had before IDs were unique.
const legacyWorkspaceID = "default"

// openSetup returns the workspace's setup. A stored setup is checked
// against cfg: a setting left 0 takes the stored value, one that differs is
// ErrSetupMismatch. On the first start the setup is made from cfg, with a
// new unique workspace ID, and stored. A directory created before setups
// were stored keeps its workspace ID, and its setup is read from what it
// holds (its users' keys, its cloud co-signers) before it is stored.
func openSetup(cfg Config, st *store.Store) (*protocol.WsSetup, error) {
	stored, ok, err := st.Setup()
	if err != nil {
		return nil, err
	}
	if !ok {
		if stored, err = legacySetup(cfg, st); err != nil {
			return nil, err
		}
	}
	if stored == nil {
		if stored, err = newSetup(cfg); err != nil {
			return nil, err
		}
	}
	if err := checkSetup(cfg, stored); err != nil {
		return nil, err
	}
	if ok {
		return stored, nil
	}
	return st.InitSetup(stored)
}

// newSetup is a new workspace's setup: cfg's MPC setup or the defaults,
// and a random workspace ID that also prefixes its request IDs, so that a
// node serving several workspaces never sees two requests with one ID.
func newSetup(cfg Config) (*protocol.WsSetup, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("workspace: %w", err)
	}
	tag := hex.EncodeToString(b)
	count, quorum := fill(cfg, 0, 0)
	return &protocol.WsSetup{
		WorkspaceId: "ws-" + tag, RequestIdPrefix: "r-" + tag + "-",
		CloudCosigners: uint32(count), Quorum: uint32(quorum),
	}, nil
}

// fill completes an MPC setup: a value known from the data stays, then
// cfg's, then the default (two cloud co-signers, all parties signing).
func fill(cfg Config, count, quorum int) (int, int) {
	if count == 0 {
		count = cfg.CloudCosigners
	}
	if count == 0 {
		count = defaultCloudCosigners
	}
	if quorum == 0 {
		quorum = cfg.Quorum
	}
	if quorum == 0 {
		quorum = count + 1
	}
	return count, quorum
}

// legacySetup returns the setup of a directory created before setups were
// stored, or nil for a new directory (one without a workspace). Its MPC
// setup is what its signers' keys name, or else the cloud co-signers it
// holds; what it does not show comes from cfg or the defaults.
func legacySetup(cfg Config, st *store.Store) (*protocol.WsSetup, error) {
	workspaces, err := st.Workspaces()
	if err != nil || len(workspaces) == 0 {
		return nil, err
	}
	id := workspaces[0].GetId()
	for _, w := range workspaces {
		if w.GetId() == legacyWorkspaceID {
			id = w.GetId()
		}
	}
	users, err := st.Users()
	if err != nil {
		return nil, err
	}
	var count, quorum int
	for _, u := range users {
		if k := u.GetSigningKey(); k != nil {
			count, quorum = len(k.GetCloudPartyIds()), len(k.GetSignerPartyIds())
			break
		}
	}
	if count == 0 {
		if count, err = cosigner.Existing(filepath.Join(cfg.DataDir, DirCosigners)); err != nil {
			return nil, err
		}
	}
	count, quorum = fill(cfg, count, quorum)
	return &protocol.WsSetup{WorkspaceId: id, RequestIdPrefix: "r-", CloudCosigners: uint32(count), Quorum: uint32(quorum)}, nil
}

// checkSetup reports the settings of cfg that contradict setup.
func checkSetup(cfg Config, setup *protocol.WsSetup) error {
	var p []string
	if cfg.CloudCosigners != 0 && uint32(cfg.CloudCosigners) != setup.GetCloudCosigners() {
		p = append(p, fmt.Sprintf("cloud co-signers: %d asked for, but it has %d", cfg.CloudCosigners, setup.GetCloudCosigners()))
	}
	if cfg.Quorum != 0 && uint32(cfg.Quorum) != setup.GetQuorum() {
		p = append(p, fmt.Sprintf("quorum: %d asked for, but it has %d", cfg.Quorum, setup.GetQuorum()))
	}
	if len(p) == 0 {
		return nil
	}
	return fmt.Errorf("%w: workspace %s in %s: %s (leave them unset to use the workspace's setup)",
		ErrSetupMismatch, setup.GetWorkspaceId(), cfg.DataDir, strings.Join(p, "; "))
}
