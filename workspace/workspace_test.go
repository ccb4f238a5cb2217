package workspace_test

import (
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/workspace/client"
	"github.com/coterie-mpc/coterie/workspace/store"
	"google.golang.org/grpc/codes"
)

// TestPairKeygenPresignSign pairs a signer with a live key generation,
// makes a presignature and signs a request with it: the whole MPC path with
// an in-process co-signer party built on protocol/mpc.
func TestPairKeygenPresignSign(t *testing.T) {
	if raceEnabled {
		t.Skip("key generation and presigning take minutes under the race detector; " +
			"TestSignVerifyRestart races the same relay from a pre-generated key")
	}
	e := serve(t, t.TempDir(), clock.Real())
	n := e.pair(protocol.WsRole_WS_ROLE_SIGNER)
	if n.key == nil || len(n.key.PublicKey) != 33 || n.key.NodePartyId != "cosigner" || n.key.Threshold != 1 {
		t.Fatalf("signing key = %v", n.key)
	}
	who, err := n.c.WhoAmI(ctx(t), &protocol.WsWhoAmIRequest{})
	if err != nil || who.State != protocol.WsUserState_WS_USER_STATE_ACTIVE || string(who.SigningKey.PublicKey) != string(n.share.PublicKey()) {
		t.Fatalf("WhoAmI = %v, %v", who, err)
	}
	n.presign(t, 1)
	r := e.submitTx(n.creds.UserID, "")
	_, res, err := n.c.Sign(ctx(t), n.engine, n.share, n.key, n.presigs, n.nextPresign(t), r, 0)
	if err != nil || !res.Recorded || res.Request.State != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED {
		t.Fatalf("sign = %v, %v", res, err)
	}
	v, err := e.admin.Verify(ctx(t), &protocol.WsVerifyRequest{})
	if err != nil || v.SignaturesChecked != 1 || len(v.Problems) != 0 {
		t.Fatalf("verify = %v, %v", v, err)
	}
}

// TestSignVerifyRestart is the main path from a paired signer (the
// generated fixture): a request delivered to two pollers, signing through
// the relay, verification, idempotent completion, each bad completion, then
// a restart that keeps everything, including the cloud co-signer's sealed
// state.
func TestSignVerifyRestart(t *testing.T) {
	dir := fixtureDir(t)
	e := serve(t, dir, clock.Real())
	n := e.fixtureSigner()

	// Two pollers, both connected before the submission.
	var polls []chan *protocol.WsPollEvent
	for range 2 {
		stream, err := n.c.Poll(ctx(t), &protocol.WsPollRequest{})
		if err != nil {
			t.Fatal(err)
		}
		ev, err := stream.Recv()
		if err != nil || !ev.CaughtUp {
			t.Fatalf("first event = %v, %v", ev, err)
		}
		ch := make(chan *protocol.WsPollEvent, 16)
		go func() {
			defer close(ch)
			for {
				ev, err := stream.Recv()
				if err != nil {
					return
				}
				ch <- ev
			}
		}()
		polls = append(polls, ch)
	}
	r := e.submitTx(n.creds.UserID, "tx-1")
	for i, ch := range polls {
		select {
		case ev := <-ch:
			if ev.GetRequest().GetId() != r.Id || ev.Cursor != r.Seq {
				t.Fatalf("poller %d got %v", i, ev)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("poller %d did not receive the request", i)
		}
	}

	first := n.nextPresign(t)
	sig, res, err := n.c.Sign(ctx(t), n.engine, n.share, n.key, n.presigs, first, r, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Recorded || res.Request.State != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED || len(sig.Bytes()) != 64 {
		t.Fatalf("result = %v", res)
	}
	got, err := n.c.GetRequest(ctx(t), &protocol.WsGetRequestRequest{RequestId: r.Id})
	if err != nil || got.State != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED || string(got.Signatures[0].Signature) != string(sig.Bytes()) {
		t.Fatalf("request after signing = %v, %v", got, err)
	}

	// Completion by the node, after the workspace recorded it: a duplicate.
	dup, err := n.c.SubmitSignature(ctx(t), &protocol.WsSubmitSignatureRequest{RequestId: r.Id, Signature: sig.Bytes()})
	if err != nil || !dup.Duplicate || dup.Request.DuplicateCompletions != 1 {
		t.Fatalf("duplicate completion = %v, %v", dup, err)
	}

	pending := e.submitTx(n.creds.UserID, "tx-2")
	t.Run("second use of a presignature", func(t *testing.T) {
		// A node that kept a copy of a used presignature share.
		replay := mpc.NewMemPresignStore()
		pre, err := mpc.UnmarshalPresignature(n.copies[first])
		if err != nil {
			t.Fatal(err)
		}
		if err := replay.Put(ctx(t), pre); err != nil {
			t.Fatal(err)
		}
		_, _, err = n.c.Sign(ctx(t), n.engine, n.share, n.key, replay, first, pending, 0)
		wantCode(t, "second presignature use", err, codes.FailedPrecondition, "presignature already used")
	})
	t.Run("invalid signature", func(t *testing.T) {
		_, err := n.c.SubmitSignature(ctx(t), &protocol.WsSubmitSignatureRequest{RequestId: pending.Id, Signature: sig.Bytes()})
		wantCode(t, "signature of another digest", err, codes.InvalidArgument, "does not verify")
		got, _ := n.c.GetRequest(ctx(t), &protocol.WsGetRequestRequest{RequestId: pending.Id})
		if store.Terminal(got.GetState()) || len(got.GetSignatures()) != 0 {
			t.Fatalf("request after an invalid signature = %v", got)
		}
	})
	t.Run("signature for a digest that is not pending", func(t *testing.T) {
		rejected := e.submitTx(n.creds.UserID, "tx-3")
		if _, err := n.c.RejectRequest(ctx(t), &protocol.WsRejectRequest{RequestId: rejected.Id, Reason: "policy: destination not allowed"}); err != nil {
			t.Fatal(err)
		}
		_, err := n.c.SubmitSignature(ctx(t), &protocol.WsSubmitSignatureRequest{RequestId: rejected.Id, Signature: sig.Bytes()})
		wantCode(t, "signature for a rejected request", err, codes.FailedPrecondition, "is rejected")
		stream, err := n.c.Mpc(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		_ = stream.Send(&protocol.WsMpcClientMessage{Msg: &protocol.WsMpcClientMessage_Start{Start: &protocol.WsMpcStart{
			Kind: protocol.WsMpcKind_WS_MPC_KIND_SIGN, SessionId: client.SessionID(), PresignId: n.presignIDs[0].String(), RequestId: rejected.Id,
		}}})
		_, err = stream.Recv()
		wantCode(t, "signing session for a rejected request", err, codes.FailedPrecondition, "is rejected")
	})

	v, err := e.admin.Verify(ctx(t), &protocol.WsVerifyRequest{})
	if err != nil || v.SignaturesChecked != 1 || len(v.Problems) != 0 {
		t.Fatalf("verify = %v, %v", v, err)
	}

	// Restart: everything stays, and the cloud co-signer still signs with
	// its sealed key share and presignature share.
	addr := e.ws.Addr()
	e.stop()
	e = serveAt(t, dir, addr, clock.Real())
	list, err := e.admin.ListRequests(ctx(t), &protocol.WsListRequestsRequest{})
	if err != nil || len(list.Requests) != 3 {
		t.Fatalf("requests after restart = %v, %v", list, err)
	}
	if list.Requests[0].State != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED || list.Requests[0].DuplicateCompletions != 1 {
		t.Fatalf("signed request after restart = %v", list.Requests[0])
	}
	_, res, err = n.c.Sign(ctx(t), n.engine, n.share, n.key, n.presigs, n.nextPresign(t), pending, 0)
	if err != nil || !res.Recorded {
		t.Fatalf("sign after restart: %v, %v", res, err)
	}
	stats, err := e.admin.Stats(ctx(t), &protocol.WsStatsRequest{})
	if err != nil || stats.RequestsByState["signed"] != 2 || stats.RequestsByState["rejected"] != 1 || stats.PresignaturesUsed != 2 || stats.PresignaturesStored != 1 || stats.DuplicateCompletions != 1 {
		t.Fatalf("stats = %v, %v", stats, err)
	}
	v, err = e.admin.Verify(ctx(t), &protocol.WsVerifyRequest{})
	if err != nil || v.SignaturesChecked != 2 || len(v.Problems) != 0 {
		t.Fatalf("verify after restart = %v, %v", v, err)
	}
}

// TestRefresh refreshes the fixture signer's key through the relay after a
// signature. The cloud co-signers stage the new shares: until the node's
// first session with its new share, the old shares sign (a refresh the node
// never committed changes nothing, and a second refresh can replace it).
// That session activates the new shares and burns the presignatures made
// before; a new presignature, made and used with the new shares, signs
// under the same key.
func TestRefresh(t *testing.T) {
	if raceEnabled {
		t.Skip("a refresh takes minutes under the race detector")
	}
	e := serve(t, fixtureDir(t), clock.Real())
	n := e.fixtureSigner()
	// A signature first, so that the cloud co-signer holds the old key
	// share in memory: the refresh must replace it there too.
	warm := e.submitTx(n.creds.UserID, "")
	if _, res, err := n.c.Sign(ctx(t), n.engine, n.share, n.key, n.presigs, n.nextPresign(t), warm, 0); err != nil || !res.Recorded {
		t.Fatalf("sign before refresh: %v, %v", res, err)
	}
	abandoned, err := n.c.Refresh(ctx(t), n.engine, n.share, n.key)
	if err != nil {
		t.Fatal(err)
	}
	old := n.share
	r1 := e.submitTx(n.creds.UserID, "")
	if _, res, err := n.c.Sign(ctx(t), n.engine, old, n.key, n.presigs, n.nextPresign(t), r1, 0); err != nil || !res.Recorded {
		t.Fatalf("sign with the old shares after a refresh the node did not commit: %v, %v", res, err)
	}
	fresh, err := n.c.Refresh(ctx(t), n.engine, old, n.key)
	if err != nil {
		t.Fatalf("refresh again: %v", err)
	}
	if string(fresh.PublicKey()) != string(old.PublicKey()) {
		t.Fatal("refresh changed the public key")
	}
	n.share = fresh
	n.presign(t, 1) // activates the second refresh
	oldPresig := n.presignIDs[0]
	r := e.submitTx(n.creds.UserID, "")
	start := func(epoch []byte) error {
		stream, err := n.c.Mpc(ctx(t))
		if err != nil {
			t.Fatal(err)
		}
		_ = stream.Send(&protocol.WsMpcClientMessage{Msg: &protocol.WsMpcClientMessage_Start{Start: &protocol.WsMpcStart{
			Kind: protocol.WsMpcKind_WS_MPC_KIND_SIGN, SessionId: client.SessionID(), PresignId: oldPresig.String(), RequestId: r.Id,
			KeyEpoch: epoch,
		}}})
		_, err = stream.Recv()
		return err
	}
	wantCode(t, "presignature from before the refresh", start(nil), codes.FailedPrecondition, "burned, key refreshed")
	wantCode(t, "the old shares' epoch", start(old.Epoch()), codes.FailedPrecondition, "epoch mismatch")
	wantCode(t, "the abandoned refresh's epoch", start(abandoned.Epoch()), codes.FailedPrecondition, "epoch mismatch")

	_, res, err := n.c.Sign(ctx(t), n.engine, n.share, n.key, n.presigs, n.presignIDs[len(n.presignIDs)-1], r, 0)
	if err != nil || !res.Recorded {
		t.Fatalf("sign after refresh: %v, %v", res, err)
	}
	v, err := e.admin.Verify(ctx(t), &protocol.WsVerifyRequest{})
	if err != nil || v.SignaturesChecked != 3 || len(v.Problems) != 0 {
		t.Fatalf("verify = %v, %v", v, err)
	}
}
