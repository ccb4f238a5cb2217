package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"io"

	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"google.golang.org/grpc"
)

var (
	// ErrRelay is returned by Relay when the workspace sent something the
	// node's session rejected, or closed the stream without a result.
	ErrRelay = errors.New("client: relay session failed")
	// ErrSessionMismatch is returned when the workspace's result does not
	// match the node's own: another key, another presignature ID, or a
	// result before the node's session finished.
	ErrSessionMismatch = errors.New("client: the workspace's result does not match the local session")
)

type relayStream = grpc.BidiStreamingClient[protocol.WsMpcClientMessage, protocol.WsMpcServerMessage]

// Relay runs one MPC session through the workspace's relay: it sends start,
// then calls newMachine to create the node's session (so that the
// workspace's parties start their own work at the same time), and then
// exchanges envelopes until the workspace sends its result. It returns the
// result once the node's machine is done too. The caller owns the machine
// and closes it.
//
// Relay runs the machine's Accept on the calling goroutine, which may take
// seconds of CPU (key generation): call it off an actor's mailbox.
func (c *Client) Relay(ctx context.Context, start *protocol.WsMpcStart, newMachine func() (mpc.Machine, error)) (*protocol.WsMpcResult, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stream, err := c.Mpc(ctx)
	if err != nil {
		return nil, err
	}
	if err := stream.Send(&protocol.WsMpcClientMessage{Msg: &protocol.WsMpcClientMessage_Start{Start: start}}); err != nil {
		return nil, sendErr(stream, err)
	}
	m, err := newMachine()
	if err != nil {
		return nil, err
	}
	if err := flush(stream, m); err != nil {
		return nil, err
	}
	for {
		msg, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: the workspace closed the stream without a result", ErrRelay)
		}
		if err != nil {
			return nil, err
		}
		switch v := msg.GetMsg().(type) {
		case *protocol.WsMpcServerMessage_Envelope:
			env, err := mpc.DecodeEnvelope(v.Envelope)
			if err != nil {
				return nil, fmt.Errorf("%w: bad envelope from the workspace: %v", ErrRelay, err)
			}
			if err := m.Accept(env); err != nil {
				var rejected *mpc.MessageError
				if !errors.As(err, &rejected) {
					_ = flush(stream, m) // the abort notice, so the cloud co-signers stop at once
				}
				return nil, fmt.Errorf("%w: %w", ErrRelay, err)
			}
			if err := flush(stream, m); err != nil {
				return nil, err
			}
		case *protocol.WsMpcServerMessage_Result:
			if err := m.Err(); err != nil {
				return nil, err
			}
			if !m.Done() {
				return nil, fmt.Errorf("%w: the workspace finished before the node's session", ErrSessionMismatch)
			}
			return v.Result, nil
		default:
			return nil, fmt.Errorf("%w: empty message from the workspace", ErrRelay)
		}
	}
}

// flush sends what the machine wants sent.
func flush(stream relayStream, m mpc.Machine) error {
	for _, env := range m.Outgoing() {
		b, err := mpc.EncodeEnvelope(env)
		if err != nil {
			return fmt.Errorf("client: encode envelope: %w", err)
		}
		if err := stream.Send(&protocol.WsMpcClientMessage{Msg: &protocol.WsMpcClientMessage_Envelope{Envelope: b}}); err != nil {
			return sendErr(stream, err)
		}
	}
	return nil
}

// sendErr turns the io.EOF that Send returns once the server ended the
// stream into the server's status.
func sendErr(stream relayStream, err error) error {
	if !errors.Is(err, io.EOF) {
		return err
	}
	for {
		if _, rerr := stream.Recv(); rerr != nil {
			if errors.Is(rerr, io.EOF) {
				return fmt.Errorf("%w: stream closed", ErrRelay)
			}
			return rerr
		}
	}
}

// SessionID returns a fresh random session ID.
func SessionID() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return b
}

func parties(ids []string) []mpc.PartyID {
	out := make([]mpc.PartyID, len(ids))
	for i, id := range ids {
		out[i] = mpc.PartyID(id)
	}
	return out
}

// Keygen runs the key generation that pairing a signer requires, with the
// layout from the pairing answer. It returns the node's key share (secret:
// store it only encrypted) and the key the workspace recorded.
func (c *Client) Keygen(ctx context.Context, e *mpc.Engine, plan *protocol.WsPairResponse) (*mpc.KeyShare, *protocol.WsSigningKey, error) {
	all := append([]mpc.PartyID{mpc.PartyID(plan.GetNodePartyId())}, parties(plan.GetCloudPartyIds())...)
	sid := SessionID()
	var s *mpc.Session[*mpc.KeyShare]
	res, err := c.Relay(ctx, &protocol.WsMpcStart{Kind: protocol.WsMpcKind_WS_MPC_KIND_KEYGEN, SessionId: sid}, func() (mpc.Machine, error) {
		var err error
		s, err = e.Keygen(mpc.Params{SessionID: sid, Self: mpc.PartyID(plan.GetNodePartyId()), Parties: all, Threshold: int(plan.GetThreshold())})
		return s, err
	})
	if s != nil {
		defer s.Close()
	}
	if err != nil {
		return nil, nil, err
	}
	share, err := s.Result()
	if err != nil {
		return nil, nil, err
	}
	if !bytes.Equal(share.PublicKey(), res.GetSigningKey().GetPublicKey()) || !bytes.Equal(share.ChainCode(), res.GetSigningKey().GetChainCode()) {
		return nil, nil, fmt.Errorf("%w: public key or chain code", ErrSessionMismatch)
	}
	return share, res.GetSigningKey(), nil
}

// Refresh runs a key refresh and returns the node's new share. The cloud
// co-signers stage theirs and go on using the old ones until a session
// names the new shares' epoch (every session names its share's epoch): so
// the caller commits the new share durably first, and a refresh abandoned
// before that leaves the old shares working on both sides. Activation burns
// the cloud co-signers' presignatures of the old shares.
func (c *Client) Refresh(ctx context.Context, e *mpc.Engine, share *mpc.KeyShare, key *protocol.WsSigningKey) (*mpc.KeyShare, error) {
	all := append([]mpc.PartyID{mpc.PartyID(key.GetNodePartyId())}, parties(key.GetCloudPartyIds())...)
	sid := SessionID()
	var s *mpc.Session[*mpc.KeyShare]
	res, err := c.Relay(ctx, &protocol.WsMpcStart{Kind: protocol.WsMpcKind_WS_MPC_KIND_REFRESH, SessionId: sid, KeyEpoch: share.Epoch()}, func() (mpc.Machine, error) {
		var err error
		s, err = e.Refresh(mpc.Params{SessionID: sid, Self: share.Self(), Parties: all, Threshold: int(key.GetThreshold())}, share)
		return s, err
	})
	if s != nil {
		defer s.Close()
	}
	if err != nil {
		return nil, err
	}
	fresh, err := s.Result()
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(fresh.PublicKey(), res.GetSigningKey().GetPublicKey()) {
		return nil, fmt.Errorf("%w: public key", ErrSessionMismatch)
	}
	return fresh, nil
}

// Presign runs the offline phase with the cloud co-signers. The workspace
// has stored its shares when this returns; the caller puts the node's share
// into its PresignStore.
func (c *Client) Presign(ctx context.Context, e *mpc.Engine, share *mpc.KeyShare, key *protocol.WsSigningKey) (*mpc.Presignature, error) {
	sid := SessionID()
	var s *mpc.Session[*mpc.Presignature]
	res, err := c.Relay(ctx, &protocol.WsMpcStart{Kind: protocol.WsMpcKind_WS_MPC_KIND_PRESIGN, SessionId: sid, KeyEpoch: share.Epoch()}, func() (mpc.Machine, error) {
		var err error
		s, err = e.Presign(mpc.Params{SessionID: sid, Self: share.Self(), Parties: parties(key.GetSignerPartyIds()), Threshold: int(key.GetThreshold())}, share)
		return s, err
	})
	if s != nil {
		defer s.Close()
	}
	if err != nil {
		return nil, err
	}
	pre, err := s.Result()
	if err != nil {
		return nil, err
	}
	if pre.ID().String() != res.GetPresignId() {
		return nil, fmt.Errorf("%w: presignature ID", ErrSessionMismatch)
	}
	return pre, nil
}

// Sign runs the online round for digest index of request req with
// presignature id. It takes id out of store before the workspace hears of
// the session, having first refused a digest or path that PresignOnline
// would refuse; once taken, id is spent whether or not the round succeeds.
// The workspace combines the signature, verifies it against the derived
// public key and records it; res.Recorded says so and res.Request is the
// updated request.
//
// sig is the node's own combined signature. When the relay fails after the
// node's session finished, Sign returns sig with the error: the caller can
// still complete the request with SubmitSignature.
func (c *Client) Sign(ctx context.Context, e *mpc.Engine, share *mpc.KeyShare, key *protocol.WsSigningKey, store mpc.PresignStore, id mpc.PresignatureID, req *protocol.WsRequest, index uint32) (sig *mpc.Signature, res *protocol.WsMpcResult, err error) {
	digests := req.GetTransaction().GetDigests()
	if int(index) >= len(digests) {
		return nil, nil, fmt.Errorf("%w: request %s has no digest %d", mpc.ErrInvalidParams, req.GetId(), index)
	}
	d := digests[index]
	sid := SessionID()
	// The node takes its presignature out of store before the workspace
	// takes its own, so that a presignature the node no longer holds costs
	// the workspace nothing. It builds its session only after the start has
	// gone out, so that the work overlaps the workspace's durable mark of
	// its own presignature. (Should PresignOnline still refuse the taken
	// presignature, for another key or epoch, the workspace's half is lost
	// with it; it was of no use without the node's half.)
	in := mpc.SignInput{Share: share, Digest: d.GetDigest(), Path: mpc.Path(d.GetDerivationPath())}
	if err := checkSignInput(in); err != nil {
		return nil, nil, err
	}
	pre, err := store.Take(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	start := &protocol.WsMpcStart{Kind: protocol.WsMpcKind_WS_MPC_KIND_SIGN, SessionId: sid, PresignId: id.String(), RequestId: req.GetId(), DigestIndex: index,
		KeyEpoch: share.Epoch()}
	var s *mpc.Session[*mpc.Signature]
	res, err = c.Relay(ctx, start, func() (mpc.Machine, error) {
		var err error
		s, err = e.PresignOnline(ctx, mpc.Params{SessionID: sid, Self: share.Self(), Parties: parties(key.GetSignerPartyIds()), Threshold: int(key.GetThreshold())}, in, mpc.OneUse(pre), id)
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

// checkSignInput refuses, before the presignature is taken, the inputs that
// PresignOnline would refuse after: a digest that is not 32 bytes, and a
// path that is too deep or hardened.
func checkSignInput(in mpc.SignInput) error {
	if len(in.Digest) != 32 {
		return fmt.Errorf("%w: digest of %d bytes, want 32", mpc.ErrInvalidParams, len(in.Digest))
	}
	if len(in.Path) > mpc.MaxPathDepth {
		return fmt.Errorf("%w: deeper than %d", mpc.ErrInvalidPath, mpc.MaxPathDepth)
	}
	for _, i := range in.Path {
		if i >= 1<<31 {
			return fmt.Errorf("%w: hardened index %d", mpc.ErrInvalidPath, i)
		}
	}
	return nil
}

// Approve signs the approval digest of config-change request req with the
// approval key and submits it.
func (c *Client) Approve(ctx context.Context, req *protocol.WsRequest, key ed25519.PrivateKey) (*protocol.WsSubmitApprovalResponse, error) {
	d, err := protocol.ApprovalDigest(req)
	if err != nil {
		return nil, err
	}
	return c.SubmitApproval(ctx, &protocol.WsSubmitApprovalRequest{RequestId: req.GetId(), Signature: ed25519.Sign(key, d[:])})
}
