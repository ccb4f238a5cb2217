package actors

import (
	"context"
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

// presignOne runs the offline phase for u's key with the cloud co-signers,
// seals the node's share under the keyring and adds it to the key's pool
// through raft, and returns its id. With hold, the presignature is held
// for the caller (slowPath.hold) before it enters the pool; the caller
// releases it. On cluster.ErrUncertain the presignature is discarded, never
// proposed again (it may be in the pool already).
func (s *System) presignOne(ctx context.Context, u *userState, hold bool) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.MPCTimeout)
	defer cancel()
	share, err := s.share(u)
	if err != nil {
		return "", err
	}
	key := u.SigningKey
	sid := client.SessionID()
	var sess *mpc.Session[*mpc.Presignature]
	res, err := u.Workspace.Relay(ctx, &protocol.WsMpcStart{Kind: protocol.WsMpcKind_WS_MPC_KIND_PRESIGN, SessionId: sid},
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
		return "", fmt.Errorf("presign: %w", err)
	}
	pre, err := sess.Result()
	if err != nil {
		return "", fmt.Errorf("presign: %w", err)
	}
	id := pre.ID().String()
	if id != res.GetPresignId() {
		return "", fmt.Errorf("presign: %w: presignature id", client.ErrSessionMismatch)
	}
	plain, err := pre.MarshalBinary()
	if err != nil {
		return "", fmt.Errorf("presign: encode: %w", err)
	}
	ct, err := s.cfg.Cipher.Encrypt(cluster.PresignatureRecordID(u.ShareRecordID, id), plain)
	clear(plain)
	if err != nil {
		return "", fmt.Errorf("presign: seal: %w", err)
	}
	ref := cluster.PresignatureRef{KeyID: u.ShareRecordID, ID: id}
	if hold {
		s.slow.hold(ref)
	}
	cctx, ccancel := context.WithTimeout(ctx, s.cfg.CallTimeout)
	defer ccancel()
	if err := s.cfg.Cluster.AddPresignatures(cctx, u.ShareRecordID, []cluster.SealedPresignature{{ID: id, Sealed: ct}}); err != nil {
		if hold {
			s.slow.release(ref)
		}
		return "", fmt.Errorf("presign: add to pool: %w", err)
	}
	return id, nil
}

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
// share from the FSM and runs the one online round through the relay; the
// engine takes the presignature from a one-use store, so it can sign once.
func (s *System) onlineRound(ctx context.Context, u *userState, req *protocol.WsRequest, index uint32, ref cluster.PresignatureRef) (signOutcome, error) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.MPCTimeout)
	defer cancel()
	var out signOutcome
	info, ok := s.cfg.Cluster.Presignature(ref.KeyID, ref.ID)
	if !ok || info.Status != cluster.PresignatureReserved || info.RequestID != req.GetId() || len(info.Sealed) == 0 {
		// The Reserve committed, so this replica must show it reserved
		// for req; anything else means the FSM broke I1.
		return out, &InvariantError{What: fmt.Sprintf("presignature %s is not reserved for request %s after its Reserve committed", ref.ID, req.GetId())}
	}
	share, err := s.share(u)
	if err != nil {
		return out, err
	}
	plain, err := s.cfg.Cipher.Decrypt(cluster.PresignatureRecordID(ref.KeyID, ref.ID), info.Sealed)
	if err != nil {
		return out, fmt.Errorf("%w: presignature %s: %w", ErrKeyRecord, ref.ID, err)
	}
	pre, err := mpc.UnmarshalPresignature(plain)
	clear(plain)
	if err != nil {
		return out, fmt.Errorf("%w: presignature %s: %w", ErrKeyRecord, ref.ID, err)
	}
	once := mpc.NewMemPresignStore()
	if err := once.Put(ctx, pre); err != nil {
		return out, err
	}
	d := req.GetTransaction().GetDigests()[index]
	key := u.SigningKey
	sid := client.SessionID()
	t0 := s.cfg.Clock.Now()
	sess, err := s.cfg.Engine.PresignOnline(ctx, mpc.Params{SessionID: sid, Self: share.Self(),
		Parties: partyIDs(key.GetSignerPartyIds()), Threshold: int(key.GetThreshold())},
		mpc.SignInput{Share: share, Digest: d.GetDigest(), Path: mpc.Path(d.GetDerivationPath())}, once, pre.ID())
	if err != nil {
		return out, fmt.Errorf("online round: %w", err)
	}
	defer sess.Close()
	tm := &timedMachine{Machine: sess, clock: s.cfg.Clock}
	start := &protocol.WsMpcStart{Kind: protocol.WsMpcKind_WS_MPC_KIND_SIGN, SessionId: sid, PresignId: ref.ID,
		RequestId: req.GetId(), DigestIndex: index}
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
