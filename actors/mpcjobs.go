package actors

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/workspace/client"
)

// These are the MPC jobs. They run on the worker pools, never on a
// mailbox.

func partyIDs(ids []string) []mpc.PartyID {
	out := make([]mpc.PartyID, len(ids))
	for i, id := range ids {
		out[i] = mpc.PartyID(id)
	}
	return out
}

// made is a presignature presignOne added to its key's pool: its ref and
// the time its commit took.
type made struct {
	ref  cluster.PresignatureRef
	took time.Duration
}

// presignOne runs the offline phase for u's key with the cloud co-signers
// and adds the node's share, sealed under the keyring, to the key's pool
// through raft. With a non-empty reserveFor the same commit reserves it for
// that request (the slow path). On cluster.ErrUncertain the presignature is
// discarded, never proposed again (it may be in the pool already).
func (s *System) presignOne(ctx context.Context, u *userState, reserveFor string) (made, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.MPCTimeout)
	defer cancel()
	share, err := s.share(u)
	if err != nil {
		return made{}, err
	}
	key := u.SigningKey
	sid := client.SessionID()
	var sess *mpc.Session[*mpc.Presignature]
	res, err := u.Workspace.Relay(ctx, &protocol.WsMpcStart{Kind: protocol.WsMpcKind_WS_MPC_KIND_PRESIGN, SessionId: sid, KeyEpoch: share.Epoch()},
		func() (mpc.Machine, error) {
			var err error
			sess, err = s.cfg.Engine.Presign(mpc.Params{SessionID: sid, Self: share.Self(),
				Parties: partyIDs(key.GetSignerPartyIds()), Threshold: int(key.GetThreshold())}, share)
			return sess, err
		})
	if sess != nil {
		defer sess.Close()
	}
	if err != nil {
		return made{}, fmt.Errorf("presign: %w", err)
	}
	pre, err := sess.Result()
	if err != nil {
		return made{}, fmt.Errorf("presign: %w", err)
	}
	if pre.ID().String() != res.GetPresignId() {
		return made{}, fmt.Errorf("presign: %w: presignature id", client.ErrSessionMismatch)
	}
	cctx, ccancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer ccancel()
	t0 := s.cfg.Clock.Now()
	if err := u.pool.Add(cctx, pre, reserveFor); err != nil {
		return made{}, fmt.Errorf("presign: add to pool: %w", err)
	}
	return made{ref: cluster.PresignatureRef{KeyID: u.ShareRecordID, ID: pre.ID().String()}, took: s.cfg.Clock.Now().Sub(t0)}, nil
}

// errRefreshBurned says a key refresh burned the presignature an online
// round was to use, while the request stayed this node's.
var errRefreshBurned = errors.New("actors: a key refresh burned the reserved presignature")

// signOutcome is what an online round produced.
type signOutcome struct {
	// res is the workspace's result: the signature it combined, verified
	// and recorded, and the updated request.
	res *protocol.WsMpcResult
	// sig is the node's own signature (r||s) when its session finished,
	// even if the relay failed afterwards.
	sig []byte
	// online is the time until the node's session finished; verify is the
	// time from then until the workspace's verified result arrived.
	online, verify time.Duration
}

// onlineRound signs digest index of req with presignature ref, which this
// node reserved for req (the Reserve committed: I6). It opens the sealed
// share from the pool and runs the one online round through the relay; the
// engine takes the presignature from a one-use store, so it can sign once.
func (s *System) onlineRound(ctx context.Context, u *userState, req *protocol.WsRequest, index uint32, ref cluster.PresignatureRef) (signOutcome, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.MPCTimeout)
	defer cancel()
	var out signOutcome
	share, err := s.share(u)
	if err != nil {
		return out, err
	}
	pre, err := u.pool.Open(req.GetId(), ref)
	switch {
	case errors.Is(err, cluster.ErrNotReserved):
		// The Reserve committed, so this replica shows ref reserved for
		// req unless a Release of this node burned it since (ownership
		// lost, an ordinary event) or a key refresh did (the request is
		// still this node's: reserve another). Anything else means the FSM
		// broke I1.
		if p, ok := s.cfg.Cluster.Presignature(ref.KeyID, ref.ID); ok && p.Status == cluster.PresignatureBurned {
			if r, ok := s.cfg.Cluster.Request(req.GetId()); ok && r.Status == cluster.StatusClaimed && r.Owner == s.self {
				return out, fmt.Errorf("%w: presignature %s, reserved for request %s", errRefreshBurned, ref.ID, req.GetId())
			}
			return out, fmt.Errorf("%w: a release burned presignature %s, reserved for request %s", ErrLostOwnership, ref.ID, req.GetId())
		}
		return out, &InvariantError{What: fmt.Sprintf("presignature %s is not reserved for request %s after its Reserve committed", ref.ID, req.GetId())}
	case err != nil:
		return out, fmt.Errorf("%w: %w", ErrKeyRecord, err)
	}
	d := req.GetTransaction().GetDigests()[index]
	key := u.SigningKey
	sid := client.SessionID()
	t0 := s.cfg.Clock.Now()
	sess, err := s.cfg.Engine.PresignOnline(ctx, mpc.Params{SessionID: sid, Self: share.Self(),
		Parties: partyIDs(key.GetSignerPartyIds()), Threshold: int(key.GetThreshold())},
		mpc.SignInput{Share: share, Digest: d.GetDigest(), Path: mpc.Path(d.GetDerivationPath())}, mpc.OneUse(pre), pre.ID())
	if err != nil {
		return out, fmt.Errorf("online round: %w", err)
	}
	defer sess.Close()
	tm := &timedMachine{Machine: sess, clock: s.cfg.Clock}
	start := &protocol.WsMpcStart{Kind: protocol.WsMpcKind_WS_MPC_KIND_SIGN, SessionId: sid, PresignId: ref.ID,
		RequestId: req.GetId(), DigestIndex: index, KeyEpoch: share.Epoch()}
	res, err := u.Workspace.Relay(ctx, start, func() (mpc.Machine, error) { return tm, nil })
	end := s.cfg.Clock.Now()
	if done, at := tm.doneAt(); done {
		out.online, out.verify = at.Sub(t0), end.Sub(at)
		if sig, rerr := sess.Result(); rerr == nil {
			out.sig = sig.Bytes()
		}
	}
	if err != nil {
		return out, fmt.Errorf("online round: %w", err)
	}
	if !res.GetRecorded() {
		return out, fmt.Errorf("online round: %w: the workspace did not record the signature", client.ErrSessionMismatch)
	}
	out.res = res
	return out, nil
}

// timedMachine notes when the node's own session finished, which splits
// the online round from the workspace's combining and verification.
type timedMachine struct {
	mpc.Machine
	clock clock.Clock
	mu    sync.Mutex
	at    time.Time
}

func (m *timedMachine) Accept(env *protocol.MpcEnvelope) error {
	err := m.Machine.Accept(env)
	if m.Machine.Done() {
		m.mu.Lock()
		if m.at.IsZero() {
			m.at = m.clock.Now()
		}
		m.mu.Unlock()
	}
	return err
}

func (m *timedMachine) doneAt() (bool, time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return !m.at.IsZero(), m.at
}
