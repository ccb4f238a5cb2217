package cosigner

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/workspace/store"
	"google.golang.org/protobuf/proto"
)

// Run carries out the cloud co-signers' side of one relay session of user
// u, as start describes. in delivers the node's envelopes, decoded, in
// order; the caller closes it when the node hangs up. send delivers an
// envelope to the node; Run calls it from one goroutine at a time. Run
// returns when the session has finished or failed, or ctx ends (also when
// the node has stopped reading), and leaves no goroutine behind but a send
// that the node did not take, which returns when the caller ends the
// stream.
//
// The caller has authenticated u and checked its role and state. Errors:
// ErrBadStart, ErrEpochMismatch, ErrNodeMessage, ErrNodeGone, ErrBusy, ErrNotConfigured,
// ErrDisagree, the store's errors (for SIGN: store.ErrNotOpen,
// store.ErrDigestSigned, store.ErrPresignatureUsed, ...), verify's errors,
// and the MPC engine's (*mpc.AbortError, *mpc.PeerAbortError, ...).
func (c *Cosigners) Run(ctx context.Context, u *protocol.WsUser, start *protocol.WsMpcStart, in <-chan *protocol.MpcEnvelope, send func(*protocol.MpcEnvelope) error) (*protocol.WsMpcResult, error) {
	if n := len(start.GetSessionId()); n == 0 || n > mpc.MaxSessionIDLen {
		return nil, fmt.Errorf("%w: session ID of %d bytes, want 1 to %d", ErrBadStart, n, mpc.MaxSessionIDLen)
	}
	ctx, cancel := context.WithTimeout(ctx, c.cfg.SessionTimeout)
	defer cancel()
	if start.GetKind() != protocol.WsMpcKind_WS_MPC_KIND_KEYGEN {
		if err := c.useEpoch(u, start.GetKeyEpoch()); err != nil {
			return nil, err
		}
	}
	switch start.GetKind() {
	case protocol.WsMpcKind_WS_MPC_KIND_KEYGEN:
		return c.keygen(ctx, u, start, in, send)
	case protocol.WsMpcKind_WS_MPC_KIND_REFRESH:
		return c.refresh(ctx, u, start, in, send)
	case protocol.WsMpcKind_WS_MPC_KIND_PRESIGN:
		return c.presign(ctx, u, start, in, send)
	case protocol.WsMpcKind_WS_MPC_KIND_SIGN:
		return c.sign(ctx, u, start, in, send)
	default:
		return nil, fmt.Errorf("%w: kind %d", ErrBadStart, start.GetKind())
	}
}

func toParties(ids []string) []mpc.PartyID {
	out := make([]mpc.PartyID, len(ids))
	for i, id := range ids {
		out[i] = mpc.PartyID(id)
	}
	return out
}

func fromParties(ids []mpc.PartyID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = string(id)
	}
	return out
}

// cloudOf returns the configured cloud co-signers among ids.
func (c *Cosigners) cloudOf(ids []string, node string) ([]*party, error) {
	var out []*party
	for _, id := range ids {
		if id == node {
			continue
		}
		p, err := c.party(id)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: the user's key names no cloud co-signer", ErrNotConfigured)
	}
	return out, nil
}

// build constructs one session per cloud party, concurrently (each
// constructor may run seconds of key sampling), and closes them all if any
// fails.
func build[T any](parties []*party, mk func(p *party) (*mpc.Session[T], error)) (map[mpc.PartyID]*mpc.Session[T], error) {
	out := make(map[mpc.PartyID]*mpc.Session[T], len(parties))
	errs := make([]error, len(parties))
	sessions := make([]*mpc.Session[T], len(parties))
	var wg sync.WaitGroup
	for i, p := range parties {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sessions[i], errs[i] = mk(p)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		for _, s := range sessions {
			if s != nil {
				s.Close()
			}
		}
		return nil, err
	}
	for i, p := range parties {
		out[p.id] = sessions[i]
	}
	return out, nil
}

func closeAll[T any](sessions map[mpc.PartyID]*mpc.Session[T]) {
	for _, s := range sessions {
		s.Close()
	}
}

func machines[T any](sessions map[mpc.PartyID]*mpc.Session[T]) map[mpc.PartyID]mpc.Machine {
	out := make(map[mpc.PartyID]mpc.Machine, len(sessions))
	for id, s := range sessions {
		out[id] = s
	}
	return out
}

// results collects every session's result, all of which must exist.
func results[T any](sessions map[mpc.PartyID]*mpc.Session[T]) (map[mpc.PartyID]T, error) {
	out := make(map[mpc.PartyID]T, len(sessions))
	for id, s := range sessions {
		r, err := s.Result()
		if err != nil {
			return nil, err
		}
		out[id] = r
	}
	return out, nil
}

func (c *Cosigners) keygen(ctx context.Context, u *protocol.WsUser, start *protocol.WsMpcStart, in <-chan *protocol.MpcEnvelope, send func(*protocol.MpcEnvelope) error) (*protocol.WsMpcResult, error) {
	plan := c.Plan()
	all := append([]mpc.PartyID{plan.NodeParty}, plan.CloudParties...)
	cloud, err := c.cloudOf(fromParties(plan.CloudParties), "")
	if err != nil {
		return nil, err
	}
	sessions, err := build(cloud, func(p *party) (*mpc.Session[*mpc.KeyShare], error) {
		return c.engine.Keygen(mpc.Params{SessionID: start.SessionId, Self: p.id, Parties: all, Threshold: plan.Threshold})
	})
	if err != nil {
		return nil, err
	}
	defer closeAll(sessions)
	if err := c.drive(ctx, plan.NodeParty, machines(sessions), in, send); err != nil {
		return nil, err
	}
	shares, err := results(sessions)
	if err != nil {
		return nil, err
	}
	key, sealed, err := c.sealShares(u.Id, cloud, shares)
	if err != nil {
		return nil, err
	}
	key.NodePartyId = string(plan.NodeParty)
	key.CloudPartyIds = fromParties(plan.CloudParties)
	key.SignerPartyIds = fromParties(plan.Signers)
	key.Threshold = uint32(plan.Threshold)
	saved, err := c.store.CompleteKeygen(u.Id, key, sealed)
	c.shares.drop(u.Id)
	if err != nil {
		return nil, err
	}
	c.log.Info("key generated", "user", u.Id, "public_key", fmt.Sprintf("%x", key.PublicKey))
	return &protocol.WsMpcResult{SigningKey: saved.SigningKey}, nil
}

// sealShares checks that every cloud co-signer got the same public key and
// chain code, and encrypts each share under its co-signer's keyring.
func (c *Cosigners) sealShares(userID string, cloud []*party, shares map[mpc.PartyID]*mpc.KeyShare) (*protocol.WsSigningKey, map[string][]byte, error) {
	key := &protocol.WsSigningKey{}
	sealed := make(map[string][]byte, len(cloud))
	for _, p := range cloud {
		s := shares[p.id]
		if key.PublicKey == nil {
			key.PublicKey, key.ChainCode = s.PublicKey(), s.ChainCode()
		} else if !bytes.Equal(key.PublicKey, s.PublicKey()) || !bytes.Equal(key.ChainCode, s.ChainCode()) {
			return nil, nil, fmt.Errorf("%w: public key or chain code", ErrDisagree)
		}
		ct, err := c.sealShare(userID, p, s)
		if err != nil {
			return nil, nil, err
		}
		sealed[string(p.id)] = ct
	}
	return key, sealed, nil
}

func (c *Cosigners) refresh(ctx context.Context, u *protocol.WsUser, start *protocol.WsMpcStart, in <-chan *protocol.MpcEnvelope, send func(*protocol.MpcEnvelope) error) (*protocol.WsMpcResult, error) {
	key := u.GetSigningKey()
	all := toParties(append([]string{key.GetNodePartyId()}, key.GetCloudPartyIds()...))
	cloud, err := c.cloudOf(key.GetCloudPartyIds(), "")
	if err != nil {
		return nil, err
	}
	sessions, err := build(cloud, func(p *party) (*mpc.Session[*mpc.KeyShare], error) {
		share, err := c.loadShare(u.Id, p)
		if err != nil {
			return nil, err
		}
		return c.engine.Refresh(mpc.Params{SessionID: start.SessionId, Self: p.id, Parties: all, Threshold: int(key.GetThreshold())}, share)
	})
	if err != nil {
		return nil, err
	}
	defer closeAll(sessions)
	if err := c.drive(ctx, mpc.PartyID(key.GetNodePartyId()), machines(sessions), in, send); err != nil {
		return nil, err
	}
	shares, err := results(sessions)
	if err != nil {
		return nil, err
	}
	fresh, sealed, err := c.sealShares(u.Id, cloud, shares)
	if err != nil {
		return nil, err
	}
	epoch := shares[cloud[0].id].Epoch()
	if err := c.store.StageRefresh(u.Id, fresh, epoch, sealed); err != nil {
		return nil, err
	}
	c.log.Info("key refreshed, awaiting the node's commit", "user", u.Id, "epoch", fmt.Sprintf("%x", epoch[:min(8, len(epoch))]))
	next := proto.Clone(key).(*protocol.WsSigningKey)
	next.PublicKey, next.ChainCode = fresh.PublicKey, fresh.ChainCode
	return &protocol.WsMpcResult{SigningKey: next}, nil
}

// useEpoch makes sure the cloud co-signers' shares of u are those of
// epoch, the node's: the active ones, or a staged refresh, which the node
// naming it activates (it has committed its own new share, so the old
// shares will not be used again). An empty epoch means the active shares.
func (c *Cosigners) useEpoch(u *protocol.WsUser, epoch []byte) error {
	if len(epoch) == 0 {
		return nil
	}
	cloud, err := c.cloudOf(u.GetSigningKey().GetCloudPartyIds(), "")
	if err != nil {
		return err
	}
	active := func() (bool, error) {
		share, err := c.loadShare(u.Id, cloud[0])
		if err != nil {
			return false, err
		}
		return bytes.Equal(share.Epoch(), epoch), nil
	}
	if ok, err := active(); ok || err != nil {
		return err
	}
	err = c.store.ActivateRefresh(u.Id, epoch)
	c.shares.drop(u.Id)
	if err == nil {
		c.log.Info("refreshed key shares activated", "user", u.Id, "epoch", fmt.Sprintf("%x", epoch[:min(8, len(epoch))]))
		return nil
	}
	if !errors.Is(err, store.ErrUnknownEpoch) {
		return err
	}
	// A concurrent session may have activated it in between.
	if ok, aerr := active(); ok || aerr != nil {
		return aerr
	}
	return fmt.Errorf("%w: the node's key shares are of epoch %x, which is neither the co-signers' nor a refresh awaiting activation",
		ErrEpochMismatch, epoch[:min(8, len(epoch))])
}

func (c *Cosigners) presign(ctx context.Context, u *protocol.WsUser, start *protocol.WsMpcStart, in <-chan *protocol.MpcEnvelope, send func(*protocol.MpcEnvelope) error) (*protocol.WsMpcResult, error) {
	key := u.GetSigningKey()
	signers := toParties(key.GetSignerPartyIds())
	cloud, err := c.cloudOf(key.GetSignerPartyIds(), key.GetNodePartyId())
	if err != nil {
		return nil, err
	}
	sessions, err := build(cloud, func(p *party) (*mpc.Session[*mpc.Presignature], error) {
		share, err := c.loadShare(u.Id, p)
		if err != nil {
			return nil, err
		}
		return c.engine.Presign(mpc.Params{SessionID: start.SessionId, Self: p.id, Parties: signers, Threshold: int(key.GetThreshold())}, share)
	})
	if err != nil {
		return nil, err
	}
	defer closeAll(sessions)
	if err := c.drive(ctx, mpc.PartyID(key.GetNodePartyId()), machines(sessions), in, send); err != nil {
		return nil, err
	}
	pres, err := results(sessions)
	if err != nil {
		return nil, err
	}
	var id mpc.PresignatureID
	sealed := make(map[string][]byte, len(cloud))
	for i, p := range cloud {
		pre := pres[p.id]
		if i == 0 {
			id = pre.ID()
		} else if pre.ID() != id {
			return nil, fmt.Errorf("%w: presignature ID", ErrDisagree)
		}
		plain, err := pre.MarshalBinary()
		if err != nil {
			return nil, err
		}
		ct, err := p.kr.Encrypt(presigRecord(u.Id, id, p.id), plain)
		clear(plain)
		if err != nil {
			return nil, err
		}
		sealed[string(p.id)] = ct
	}
	if err := c.store.PutPresignature(u.Id, id, sealed); err != nil {
		return nil, err
	}
	return &protocol.WsMpcResult{PresignId: id.String()}, nil
}

// IsNodeFault reports whether err from Run blames the node: a bad message,
// or an identifiable abort that names the node's party.
func IsNodeFault(err error, node string) bool {
	if errors.Is(err, ErrNodeMessage) {
		return true
	}
	var abort *mpc.AbortError
	return errors.As(err, &abort) && string(abort.Party) == node
}
