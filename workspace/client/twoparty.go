package client

import (
	"bytes"
	"context"
	"fmt"

	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
)

// TwoParty is the node's side of the two-party form of a 2-of-2 key, set
// up with the cloud co-signer, and the ID the cloud co-signer keeps its
// side under.
type TwoParty struct {
	Share   *mpc.TwoPartyShare
	SetupID []byte
}

// TwoPartySetup sets up the two-party form of share's key (2-of-2, one
// cloud co-signer) with the cloud co-signer. Both sides keep it in memory
// only; when the cloud co-signer has lost its side, TwoPartySign fails
// with FAILED_PRECONDITION and the node sets up again.
func (c *Client) TwoPartySetup(ctx context.Context, e *mpc.Engine, share *mpc.KeyShare, key *protocol.WsSigningKey) (*TwoParty, error) {
	sid := SessionID()
	var s *mpc.Session[*mpc.TwoPartyShare]
	_, err := c.Relay(ctx, &protocol.WsMpcStart{Kind: protocol.WsMpcKind_WS_MPC_KIND_TWO_PARTY_SETUP, SessionId: sid}, func() (mpc.Machine, error) {
		var err error
		s, err = e.TwoPartySetup(mpc.Params{SessionID: sid, Self: share.Self(), Parties: parties(key.GetSignerPartyIds()), Threshold: 1}, share)
		return s, err
	})
	if s != nil {
		defer s.Close()
	}
	if err != nil {
		return nil, err
	}
	form, err := s.Result()
	if err != nil {
		return nil, err
	}
	return &TwoParty{Share: form, SetupID: sid}, nil
}

// TwoPartySign signs digest index of request req with the two-party form
// tp, no presignature. The workspace verifies the signature against the
// derived public key and records it; res.Recorded says so and res.Request
// is the updated request. As with Sign, when the relay fails after the
// node's session finished, sig comes back with the error.
func (c *Client) TwoPartySign(ctx context.Context, e *mpc.Engine, tp *TwoParty, req *protocol.WsRequest, index uint32) (sig *mpc.Signature, res *protocol.WsMpcResult, err error) {
	digests := req.GetTransaction().GetDigests()
	if int(index) >= len(digests) {
		return nil, nil, fmt.Errorf("%w: request %s has no digest %d", mpc.ErrInvalidParams, req.GetId(), index)
	}
	d := digests[index]
	sid := SessionID()
	start := &protocol.WsMpcStart{Kind: protocol.WsMpcKind_WS_MPC_KIND_TWO_PARTY_SIGN, SessionId: sid, SetupId: tp.SetupID,
		RequestId: req.GetId(), DigestIndex: index}
	var s *mpc.Session[*mpc.Signature]
	self, peer := tp.Share.Self(), tp.Share.Peer()
	res, err = c.Relay(ctx, start, func() (mpc.Machine, error) {
		var err error
		s, err = e.TwoPartySign(mpc.Params{SessionID: sid, Self: self, Parties: []mpc.PartyID{self, peer}, Threshold: 1},
			tp.Share, d.GetDigest(), mpc.Path(d.GetDerivationPath()))
		return s, err
	})
	if s == nil {
		return nil, nil, err
	}
	defer s.Close()
	if s.Done() {
		sig, _ = s.Result()
	}
	if err != nil {
		return sig, nil, err
	}
	if sig == nil || !bytes.Equal(sig.Bytes(), res.GetSignature()) {
		return sig, res, fmt.Errorf("%w: signature", ErrSessionMismatch)
	}
	return sig, res, nil
}
