package cluster

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/enclave/keyring"
	"github.com/coterie-mpc/coterie/protocol"
)

// KeyHolder is where a node keeps the cluster keyring: its identity key,
// which opens the copies of new versions wrapped to it, the keyring itself
// (the one the node encrypts with), and Save, which seals the keyring to
// the node's disk atomically (store.SaveKeyring).
type KeyHolder struct {
	Identity ed25519.PrivateKey
	Keyring  *keyring.Keyring
	Save     func(*keyring.Keyring) error
}

func (k *KeyHolder) validate(bad func(string, ...any)) {
	switch {
	case len(k.Identity) != ed25519.PrivateKeySize:
		bad("Keys.Identity is %d bytes, want an Ed25519 private key", len(k.Identity))
	case k.Keyring == nil:
		bad("Keys.Keyring is required")
	case k.Save == nil:
		bad("Keys.Save is required")
	}
}

// KeyringState is the cluster's keyring as the local replica knows it:
// the current version and, per member, the highest version it adopted
// (sealed on its disk), and how many copies await their members.
type KeyringState struct {
	Version uint32
	// Adopted maps each member to the highest version it reported holding;
	// a member that never reported holds at least the first version.
	Adopted map[string]uint32
	// Pending lists, by member, the versions wrapped to it that it has not
	// adopted yet.
	Pending map[string][]uint32
}

// Reached returns the members that adopted the current version, sorted.
func (s KeyringState) Reached() []string {
	var out []string
	for _, id := range slices.Sorted(maps.Keys(s.Adopted)) {
		if s.Adopted[id] >= s.Version {
			out = append(out, id)
		}
	}
	return out
}

// KeyringState returns the replica's keyring state.
func (f *FSM) KeyringState() KeyringState {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := KeyringState{Version: f.st.keyringVersion(), Adopted: map[string]uint32{}, Pending: map[string][]uint32{}}
	for id := range f.st.members {
		out.Adopted[id] = max(f.st.adopted[id], firstKeyringVersion)
	}
	for _, r := range f.st.rotations {
		for _, w := range r.GetCopies() {
			out.Pending[w.GetMemberId()] = append(out.Pending[w.GetMemberId()], r.GetVersion())
		}
	}
	return out
}

// keyringVersion returns the cluster's keyring version in the replica.
func (f *FSM) keyringVersion() uint32 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.st.keyringVersion()
}

// KeyringState returns the local replica's keyring state.
func (c *Cluster) KeyringState() KeyringState { return c.fsm.KeyringState() }

// copyFor is one rotation's copy for a member.
type copyFor struct {
	version uint32
	check   []byte
	wrapped []byte
}

// copiesFor returns the copies wrapped to member, by version, and the
// cluster id they are bound to.
func (f *FSM) copiesFor(member string) ([]copyFor, string) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []copyFor
	for _, r := range f.st.rotations {
		for _, w := range r.GetCopies() {
			if w.GetMemberId() == member {
				out = append(out, copyFor{version: r.GetVersion(), check: slices.Clone(r.GetCheck()), wrapped: slices.Clone(w.GetWrapped())})
			}
		}
	}
	return out, f.st.clusterID
}

// rotationBind is what a copy is bound to besides its version and check:
// the cluster and the member, so that it opens for that member of that
// cluster only.
func rotationBind(clusterID, member string) []byte {
	return []byte(clusterID + "\x00" + member)
}

// Rotation is what RotateKeyring did.
type Rotation struct {
	Version uint32
	// Members are the members the version was wrapped to, sorted.
	Members []string
}

// RotateKeyring makes a new keyring version and commits it wrapped to
// every current member's identity key, and to no one else. Each member
// (this one included) takes its copy in when it applies the entry; the
// plaintext key never enters the log, a snapshot or an error. It needs
// Config.Keys. It wraps to the member table of a caught-up replica, and
// when the table changes before the entry commits (the FSM refuses a
// rotation that misses a member or names a former one) it tries again with
// a fresh key, up to rotateAttempts times. Errors: ErrKeyring,
// ErrNotInitialized, and Propose's.
func (c *Cluster) RotateKeyring(ctx context.Context) (Rotation, error) {
	if c.cfg.Keys == nil {
		return Rotation{}, errorf(ErrKeyring, "this node holds no keyring to rotate")
	}
	var err error
	for range rotateAttempts {
		if err = c.WaitCaughtUp(ctx); err != nil {
			return Rotation{}, err
		}
		var out Rotation
		out, err = c.rotateOnce(ctx)
		if !errors.Is(err, ErrKeyring) {
			return out, err
		}
	}
	return Rotation{}, err
}

// rotateAttempts bounds RotateKeyring's tries against a changing member
// table.
const rotateAttempts = 3

func (c *Cluster) rotateOnce(ctx context.Context) (Rotation, error) {
	cid := c.fsm.ClusterID()
	if cid == "" {
		return Rotation{}, errorf(ErrNotInitialized, "no member table to wrap the keyring to")
	}
	cur := c.fsm.keyringVersion()
	// A local version the cluster does not know was never committed (a
	// keyring restored from elsewhere, or another cluster's): rotating
	// past it would skip versions, and wrapping next to it would reuse it.
	if local := c.cfg.Keys.Keyring.Version(); local > cur {
		return Rotation{}, errorf(ErrKeyring, "this node's keyring holds version %d, which the cluster (at version %d) never rotated in; "+
			"it is not this cluster's keyring, or the replica is behind", local, cur)
	}
	version := cur + 1
	v := keyring.NewVersionKey(version)
	defer v.Destroy()
	rot := &protocol.ClusterKeyringRotated{Version: version, Check: v.Check()}
	out := Rotation{Version: version}
	members := c.fsm.Members()
	slices.SortFunc(members, func(a, b Member) int { return cmpString(a.ID, b.ID) })
	for _, m := range members {
		w, err := v.WrapVersion(m.IdentityKey, rotationBind(cid, m.ID))
		if err != nil {
			return Rotation{}, fmt.Errorf("cluster: wrap keyring version %d to member %q: %w", version, m.ID, err)
		}
		rot.Copies = append(rot.Copies, &protocol.ClusterWrappedKey{MemberId: m.ID, IdentityKey: m.IdentityKey, Wrapped: w})
		out.Members = append(out.Members, m.ID)
	}
	cmd := &protocol.ClusterCommand{Body: &protocol.ClusterCommand_KeyringRotated{KeyringRotated: rot}}
	if _, err := c.Propose(ctx, cmd); err != nil {
		return Rotation{}, err
	}
	return out, nil
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// takeInCopies opens every copy the replica holds for this node whose
// version the keyring lacks, adds it, and seals the keyring again. It runs
// on raft's apply goroutine after an entry that rotated the keyring and
// after a Restore, so that a node holds a version before it applies any
// later entry sealed under it; and, because the copies stay in the FSM
// until the node reports them adopted (which it does only after Save),
// a crash between apply and seal loses nothing: the replay or the snapshot
// brings the copy again. Failures are logged, never the key; the node's
// adoption then stays behind and status shows it.
func (c *Cluster) takeInCopies() {
	keys := c.cfg.Keys
	copies, cid := c.fsm.copiesFor(c.cfg.NodeID)
	added := 0
	for _, cp := range copies {
		if keys.Keyring.Holds(cp.version) {
			continue
		}
		v, err := keyring.UnwrapVersion(keys.Identity, cp.version, cp.check, rotationBind(cid, c.cfg.NodeID), cp.wrapped)
		if err != nil {
			c.log.Error("keyring version not taken in", "version", cp.version, "err", err)
			continue
		}
		err = keys.Keyring.Add(v)
		v.Destroy()
		if err != nil {
			c.log.Error("keyring version not taken in", "version", cp.version, "err", err)
			continue
		}
		added++
	}
	if added > 0 {
		if err := keys.Save(keys.Keyring); err != nil {
			c.log.Error("keyring not sealed after rotation", "version", keys.Keyring.Version(), "err", err)
			return
		}
		c.log.Info("keyring rotated", "version", keys.Keyring.Version())
	}
	select {
	case c.adoptNudge <- struct{}{}:
	default:
	}
}

// reportAdoption proposes KeyringAdopted whenever this node's sealed
// keyring holds a version the replica has not recorded it adopting: after
// it took copies in, after a join (the transfer brings every version), and
// at start. Until then the copies stay in the FSM. It retries every
// adoptRetry while the report fails.
func (c *Cluster) reportAdoption() {
	defer c.wg.Done()
	for {
		retry, t := clock.After(c.cfg.Clock, adoptRetry)
		select {
		case <-c.stop:
			t.Stop()
			return
		case <-c.adoptNudge:
		case <-retry:
		}
		t.Stop()
		st := c.fsm.KeyringState()
		mine, member := st.Adopted[c.cfg.NodeID]
		held := c.heldUpTo(st.Version)
		if !member || held <= mine {
			continue
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.ApplyTimeout)
		cmd := &protocol.ClusterCommand{Body: &protocol.ClusterCommand_KeyringAdopted{KeyringAdopted: &protocol.ClusterKeyringAdopted{Version: held}}}
		_, err := c.Propose(ctx, cmd)
		cancel()
		if err != nil && !errors.Is(err, ErrClosed) {
			c.log.Warn("keyring adoption not recorded", "version", held, "err", err)
		}
	}
}

// adoptRetry is how often reportAdoption looks again without a nudge.
const adoptRetry = 2 * time.Second

// heldUpTo returns the highest version v ≤ upTo such that the local
// keyring holds every version from the first to v.
func (c *Cluster) heldUpTo(upTo uint32) uint32 {
	kr := c.cfg.Keys.Keyring
	var v uint32
	for v < upTo && kr.Holds(v+1) {
		v++
	}
	return v
}
