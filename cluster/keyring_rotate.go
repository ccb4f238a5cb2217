package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/enclave/keyring"
	"github.com/coterie-mpc/coterie/protocol"
)

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
// Config.SaveKeyring. It wraps to the member table of a caught-up replica, and
// when the table changes before the entry commits (the FSM refuses a
// rotation that misses a member or names a former one) it tries again with
// a fresh key, up to rotateAttempts times. Errors: ErrKeyring (also when
// this node's keyring holds a version the cluster never rotated in),
// ErrNotInitialized, and Propose's.
func (c *Cluster) RotateKeyring(ctx context.Context) (Rotation, error) {
	if c.cfg.SaveKeyring == nil {
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
	if local := c.cfg.Keyring.Version(); local > cur {
		return Rotation{}, errorf(ErrKeyring, "this node's keyring holds version %d, which the cluster (at version %d) never rotated in; "+
			"it is not this cluster's keyring, or the replica is behind", local, cur)
	}
	version := cur + 1
	v := keyring.NewVersionKey(version)
	defer v.Destroy()
	rot := &protocol.ClusterKeyringRotated{Version: version, Check: v.Check()}
	out := Rotation{Version: version}
	members := c.fsm.Members()
	slices.SortFunc(members, func(a, b Member) int { return cmp.Compare(a.ID, b.ID) })
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

// sealMark is how far the keyring sealed on the node's disk reaches: every
// version from the first to upTo is in it. Adoption is reported from this
// mark, never from the keyring in memory, which holds a version from the
// moment it is taken in: a node that reported a version before sealing it
// would lose it on a restart, while the FSM, which drops a member's copies
// once it adopted them, would no longer hold a copy to bring it back. The
// mark moves only after a successful SaveKeyring; dirty says the keyring
// in memory holds versions the disk lacks, so the save is due again (a
// failed one is retried by reportAdoption). mu orders the additions, the
// saves and the mark.
type sealMark struct {
	mu    sync.Mutex
	upTo  uint32
	dirty bool
}

// takeInCopies opens every copy the replica holds for this node whose
// version the keyring lacks, adds it, and seals the keyring again. It runs
// on raft's apply goroutine after an entry that rotated the keyring and
// after a Restore, so that a node holds a version before it applies any
// later entry sealed under it. The copies stay in the FSM until the node
// reports them adopted, which it does from the sealed mark only, so a
// crash or a failed save before the keyring is sealed loses nothing: the
// replay or the snapshot brings the copy again, and a failed save is
// retried (reportAdoption). Failures are logged, never the key; the
// node's adoption then stays behind and status shows it.
func (c *Cluster) takeInCopies() {
	kr := c.cfg.Keyring
	copies, cid := c.fsm.copiesFor(c.cfg.NodeID)
	c.sealed.mu.Lock()
	for _, cp := range copies {
		if kr.Holds(cp.version) {
			continue
		}
		v, err := keyring.UnwrapVersion(c.cfg.Identity, cp.version, cp.check, rotationBind(cid, c.cfg.NodeID), cp.wrapped)
		if err != nil {
			c.log.Error("keyring version not taken in", "version", cp.version, "err", err)
			continue
		}
		err = kr.Add(v)
		v.Destroy()
		if err != nil {
			c.log.Error("keyring version not taken in", "version", cp.version, "err", err)
			continue
		}
		c.sealed.dirty = true
	}
	c.sealLocked()
	c.sealed.mu.Unlock()
	select {
	case c.adoptNudge <- struct{}{}:
	default:
	}
}

// sealLocked seals the keyring when it holds versions the disk lacks, and
// moves the mark on success. c.sealed.mu is held.
func (c *Cluster) sealLocked() {
	if !c.sealed.dirty {
		return
	}
	kr := c.cfg.Keyring
	if err := c.cfg.SaveKeyring(kr); err != nil {
		c.log.Error("keyring not sealed after rotation", "version", kr.Version(), "err", err)
		return
	}
	c.sealed.dirty = false
	c.sealed.upTo = heldUpTo(kr)
	c.log.Info("keyring rotated", "version", kr.Version())
}

// sealedUpTo seals the keyring first if a save is due, and returns the
// sealed mark.
func (c *Cluster) sealedUpTo() uint32 {
	c.sealed.mu.Lock()
	defer c.sealed.mu.Unlock()
	c.sealLocked()
	return c.sealed.upTo
}

// reportAdoption proposes KeyringAdopted whenever this node's sealed
// keyring holds a version the replica has not recorded it adopting: after
// it took copies in and sealed them, after a join (the transfer brings
// every version, sealed before the node starts), and at start. Until then
// the copies stay in the FSM. Every adoptRetry without a nudge it looks
// again: it retries a save that failed, and a report that failed.
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
		sealed := c.sealedUpTo()
		st := c.fsm.KeyringState()
		mine, member := st.Adopted[c.cfg.NodeID]
		held := min(sealed, st.Version)
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

// heldUpTo returns the highest version v such that kr holds every version
// from the first to v.
func heldUpTo(kr *keyring.Keyring) uint32 {
	var v uint32
	for kr.Holds(v + 1) {
		v++
	}
	return v
}
