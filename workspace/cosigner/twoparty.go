package cosigner

import (
	"context"
	"fmt"

	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/workspace/store"
	"github.com/coterie-mpc/coterie/workspace/verify"
)

// twoPartySetups bounds the two-party forms kept: one per node of a
// cluster and user, set up again after a node restarts. An evicted one
// costs its node a setup (tens of milliseconds).
const twoPartySetups = 4096

// twoPartyKey names a two-party form: its user and its setup's session ID.
type twoPartyKey struct{ user, setup string }

// twoPartyCloud returns the one cloud co-signer of u's key, which must be
// 2-of-2: the node and one cloud co-signer.
func (c *Cosigners) twoPartyCloud(u *protocol.WsUser) (*party, []mpc.PartyID, error) {
	key := u.GetSigningKey()
	signers := toParties(key.GetSignerPartyIds())
	cloud, err := c.cloudOf(key.GetSignerPartyIds(), key.GetNodePartyId())
	if err != nil {
		return nil, nil, err
	}
	if len(signers) != 2 || len(cloud) != 1 || key.GetThreshold() != 1 || len(key.GetCloudPartyIds()) != 1 {
		return nil, nil, fmt.Errorf("%w: the two-party mode needs a 2-of-2 key with one cloud co-signer", ErrBadStart)
	}
	return cloud[0], signers, nil
}

// twoPartySetup runs the cloud co-signer's side of a two-party setup and
// keeps its result under the session's ID.
func (c *Cosigners) twoPartySetup(ctx context.Context, u *protocol.WsUser, start *protocol.WsMpcStart, in <-chan *protocol.MpcEnvelope, send func(*protocol.MpcEnvelope) error) (*protocol.WsMpcResult, error) {
	cloud, signers, err := c.twoPartyCloud(u)
	if err != nil {
		return nil, err
	}
	sessions, err := build([]*party{cloud}, func(p *party) (*mpc.Session[*mpc.TwoPartyShare], error) {
		share, err := c.loadShare(u.Id, p)
		if err != nil {
			return nil, err
		}
		return c.engine.TwoPartySetup(mpc.Params{SessionID: start.SessionId, Self: p.id, Parties: signers, Threshold: 1}, share)
	})
	if err != nil {
		return nil, err
	}
	defer closeAll(sessions)
	if err := c.drive(ctx, mpc.PartyID(u.GetSigningKey().GetNodePartyId()), machines(sessions), in, send); err != nil {
		return nil, err
	}
	forms, err := results(sessions)
	if err != nil {
		return nil, err
	}
	c.twoParty.put(twoPartyKey{u.Id, string(start.SessionId)}, forms[cloud.id])
	c.log.Info("two-party setup", "user", u.Id)
	return &protocol.WsMpcResult{}, nil
}

// twoPartySign runs the cloud co-signer's side of a two-party signing of
// one digest, with the two-party form the start names, and records the
// signature once it verifies, as sign does.
func (c *Cosigners) twoPartySign(ctx context.Context, u *protocol.WsUser, start *protocol.WsMpcStart, in <-chan *protocol.MpcEnvelope, send func(*protocol.MpcEnvelope) error) (*protocol.WsMpcResult, error) {
	cloud, signers, err := c.twoPartyCloud(u)
	if err != nil {
		return nil, err
	}
	form, ok := c.twoParty.get(twoPartyKey{u.Id, string(start.GetSetupId())})
	if !ok {
		return nil, ErrNoTwoPartySetup
	}
	unclaim, err := c.claimDigest(start)
	if err != nil {
		return nil, err
	}
	defer unclaim()
	index := start.GetDigestIndex()
	r, err := c.store.AwaitingSignature(u.Id, start.GetRequestId(), index)
	if err != nil {
		return nil, err
	}
	digest := r.GetTransaction().GetDigests()[index]
	pub, err := c.derived.get(u.GetSigningKey(), digest)
	if err != nil {
		return nil, err
	}
	sess, err := c.engine.TwoPartySign(mpc.Params{SessionID: start.SessionId, Self: cloud.id, Parties: signers, Threshold: 1},
		form, digest.GetDigest(), mpc.Path(digest.GetDerivationPath()))
	if err != nil {
		return nil, err
	}
	defer sess.Close()
	c.log.Info("two-party signing", "user", u.Id, "request", r.Id, "digest", index)
	if err := c.drive(ctx, mpc.PartyID(u.GetSigningKey().GetNodePartyId()), map[mpc.PartyID]mpc.Machine{cloud.id: sess}, in, send); err != nil {
		return nil, err
	}
	sig, err := sess.Result()
	if err != nil {
		return nil, err
	}
	b := sig.Bytes()
	recoveryID, err := verify.SignatureUnder(pub, digest, b)
	if err != nil {
		return nil, err
	}
	rec, _, err := c.store.RecordSignature(u.Id, r.Id, index, store.Signed{Signature: b, RecoveryID: recoveryID, PublicKey: pub}, "cosigner")
	if err != nil {
		return nil, err
	}
	return &protocol.WsMpcResult{Signature: b, Recorded: true, Request: rec}, nil
}
