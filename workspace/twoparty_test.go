package workspace_test

import (
	"testing"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/protocol"
	"google.golang.org/grpc/codes"
)

// TestTwoPartyMode: the fixture signer (2-of-2, one cloud co-signer) sets up
// the two-party form of its key through the relay and signs a request with
// it, no presignature: the workspace verifies and records the signature
// under the derived key. A second signing of the digest is refused; a
// signing that names a setup the cloud co-signer does not hold (after a
// restart, which forgets every setup) gets FAILED_PRECONDITION, and a new
// setup signs again.
func TestTwoPartyMode(t *testing.T) {
	dir := fixtureDir(t)
	e := serve(t, dir, clock.Real())
	n := e.fixtureSigner()
	tp, err := n.c.TwoPartySetup(ctx(t), n.engine, n.share, n.key)
	if err != nil {
		t.Fatal(err)
	}
	r := e.submitTx(n.creds.UserID, "two-party")
	sig, res, err := n.c.TwoPartySign(ctx(t), n.engine, tp, r, 0)
	if err != nil {
		t.Fatal(err)
	}
	if !res.Recorded || res.Request.State != protocol.WsRequestState_WS_REQUEST_STATE_SIGNED || len(sig.Bytes()) != 64 {
		t.Fatalf("result = %v", res)
	}
	if got := res.Request.Signatures[0]; got.PresignId != "" || string(got.Signature) != string(sig.Bytes()) {
		t.Fatalf("recorded %v, want the signature with no presignature", got)
	}
	v, err := e.admin.Verify(ctx(t), &protocol.WsVerifyRequest{})
	if err != nil || v.SignaturesChecked != 1 || len(v.Problems) != 0 {
		t.Fatalf("verify = %v, %v", v, err)
	}
	_, _, err = n.c.TwoPartySign(ctx(t), n.engine, tp, r, 0)
	wantCode(t, "a second two-party signing", err, codes.FailedPrecondition, "")

	addr := e.ws.Addr()
	e.stop()
	e = serveAt(t, dir, addr, clock.Real())
	next := e.submitTx(n.creds.UserID, "after a restart")
	_, _, err = n.c.TwoPartySign(ctx(t), n.engine, tp, next, 0)
	wantCode(t, "a setup the workspace forgot", err, codes.FailedPrecondition, "two-party setup")
	if tp, err = n.c.TwoPartySetup(ctx(t), n.engine, n.share, n.key); err != nil {
		t.Fatal(err)
	}
	if _, res, err := n.c.TwoPartySign(ctx(t), n.engine, tp, next, 0); err != nil || !res.Recorded {
		t.Fatalf("signing after a new setup: %v, %v", res, err)
	}
}
