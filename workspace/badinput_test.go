package workspace_test

import (
	"bytes"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace"
	"github.com/coterie-mpc/coterie/workspace/client"
	"github.com/coterie-mpc/coterie/workspace/pki"
	"github.com/coterie-mpc/coterie/workspace/token"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// rawConn dials the workspace without the client package's limits, with
// the given client certificate (or none).
func (e *env) rawConn(cert *tls.Certificate) *grpc.ClientConn {
	e.t.Helper()
	caPEM, err := os.ReadFile(filepath.Join(e.dir, workspace.FileCA))
	if err != nil {
		e.t.Fatal(err)
	}
	ca, err := pki.ParseCertPEM(caPEM)
	if err != nil {
		e.t.Fatal(err)
	}
	conn, err := grpc.NewClient(e.ws.Addr(), grpc.WithTransportCredentials(credentials.NewTLS(pki.ClientTLS(pki.Pin(ca), cert, time.Now))))
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return conn
}

func (e *env) adminCert() *tls.Certificate {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, workspace.FileAdmin))
	if err != nil {
		e.t.Fatal(err)
	}
	kp, err := pki.ParseKeyPair(b)
	if err != nil {
		e.t.Fatal(err)
	}
	return &kp
}

func userCert(t testing.TB, n *node) *tls.Certificate {
	t.Helper()
	kp, err := pki.KeyPairFromDER(n.creds.ClientCert, n.creds.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	return &kp
}

func configChange() *protocol.WsConfigChange {
	return &protocol.WsConfigChange{
		Type:    protocol.WsConfigChangeType_WS_CONFIG_CHANGE_TYPE_ENABLE_ONE_TIME_ADDRESS,
		Payload: &protocol.WsConfigChange_OneTimeAddress{OneTimeAddress: &protocol.WsOneTimeAddress{Enabled: true}},
	}
}

// TestBadInputs sends each kind of bad input the issue lists and checks the
// status, then that nothing was lost. It needs no key generation.
func TestBadInputs(t *testing.T) {
	clk := clock.NewFake(time.Now())
	e := serve(t, t.TempDir(), clk)
	c := ctx(t)
	approver := e.pair(protocol.WsRole_WS_ROLE_APPROVER)
	// A signer that paired but has not run key generation yet.
	_, signerTok := e.createUser(protocol.WsRole_WS_ROLE_SIGNER)
	signer := e.pairOnly(signerTok)
	signerID := signer.creds.UserID

	var submitted []string
	_, err := e.admin.SubmitTransaction(c, &protocol.WsSubmitTransactionRequest{UserId: signerID, Transaction: tx()})
	wantCode(t, "transaction before key generation", err, codes.FailedPrecondition, "is keygen")
	if _, err := e.ws.Store().CompleteKeygen(signerID, &protocol.WsSigningKey{
		PublicKey: []byte{2}, NodePartyId: "cosigner", CloudPartyIds: []string{"cloud-1"}, SignerPartyIds: []string{"cloud-1", "cosigner"}, Threshold: 1,
	}, nil); err != nil {
		t.Fatal(err) // stands in for key generation, which TestPairSignVerifyRestart runs
	}
	cc, err := e.admin.SubmitConfigChange(c, &protocol.WsSubmitConfigChangeRequest{UserId: approver.creds.UserID, IdempotencyKey: "cc-1", ConfigChange: configChange(), TtlSeconds: 7 * 24 * 3600})
	if err != nil {
		t.Fatal(err)
	}
	submitted = append(submitted, cc.Id)
	// A week, so that the clock moves below do not expire it.
	const week = 7 * 24 * 3600
	txr, err := e.admin.SubmitTransaction(c, &protocol.WsSubmitTransactionRequest{UserId: signerID, IdempotencyKey: "tx-1", Transaction: tx(), TtlSeconds: week})
	if err != nil {
		t.Fatal(err)
	}
	submitted = append(submitted, txr.Id)

	t.Run("malformed token", func(t *testing.T) {
		raw := protocol.NewWsCosignerClient(e.rawConn(nil))
		_, err := raw.Pair(c, &protocol.WsPairRequest{Token: "coterie-pair-v1.garbage"})
		wantCode(t, "garbage token", err, codes.InvalidArgument, "malformed pairing token")
		_, err = raw.Pair(c, &protocol.WsPairRequest{})
		wantCode(t, "empty pair request", err, codes.InvalidArgument, "malformed")
	})
	t.Run("altered token", func(t *testing.T) {
		_, tok := e.createUser(protocol.WsRole_WS_ROLE_APPROVER)
		parsed, err := token.Parse(tok)
		if err != nil {
			t.Fatal(err)
		}
		f := proto.Clone(parsed.Fields).(*protocol.WsPairingToken)
		f.ExpiresAt += int64(time.Hour)
		forged, _ := token.Encode(f, bytes.Repeat([]byte{1}, 32))
		_, _, err = client.Pair(c, client.PairConfig{Token: forged, CallbackKey: approver.creds.ClientKey.Public(), ApprovalKey: make([]byte, 32)})
		wantCode(t, "altered token", err, codes.Unauthenticated, "altered")
	})
	t.Run("reused token", func(t *testing.T) {
		_, tok := e.createUser(protocol.WsRole_WS_ROLE_APPROVER)
		e.pairToken(tok)
		_, _, err := client.Pair(c, client.PairConfig{Token: tok, CallbackKey: approver.creds.ClientKey.Public(), ApprovalKey: make([]byte, 32)})
		wantCode(t, "reused token", err, codes.Unauthenticated, "already used")
	})
	t.Run("expired token", func(t *testing.T) {
		_, tok := e.createUser(protocol.WsRole_WS_ROLE_APPROVER)
		clk.Advance(25 * time.Hour)
		// The client checks the expiry with its own clock first ...
		_, _, err := client.Pair(c, client.PairConfig{Token: tok, Clock: clk})
		if err == nil || !strings.Contains(err.Error(), "expired") {
			t.Errorf("client-side expiry: %v", err)
		}
		// ... and the workspace with its own.
		_, _, err = client.Pair(c, client.PairConfig{Token: tok, CallbackKey: approver.creds.ClientKey.Public(), ApprovalKey: make([]byte, 32)})
		wantCode(t, "expired token", err, codes.Unauthenticated, "expired")
	})
	t.Run("bad pairing keys", func(t *testing.T) {
		_, tok := e.createUser(protocol.WsRole_WS_ROLE_APPROVER)
		_, _, err := client.Pair(c, client.PairConfig{Token: tok})
		wantCode(t, "no keys", err, codes.InvalidArgument, "approval public key")
		// The refused attempt did not use the token up.
		e.pairToken(tok)
	})
	t.Run("unknown user", func(t *testing.T) {
		_, err := e.admin.SubmitTransaction(c, &protocol.WsSubmitTransactionRequest{UserId: "u-9999", Transaction: tx()})
		wantCode(t, "submit for unknown user", err, codes.NotFound, "unknown user")
	})
	t.Run("wrong role", func(t *testing.T) {
		_, err := e.admin.SubmitTransaction(c, &protocol.WsSubmitTransactionRequest{UserId: approver.creds.UserID, Transaction: tx()})
		wantCode(t, "transaction for an approver", err, codes.PermissionDenied, "need a signer")
		_, err = e.admin.SubmitConfigChange(c, &protocol.WsSubmitConfigChangeRequest{UserId: signerID, ConfigChange: configChange()})
		wantCode(t, "config change for a signer", err, codes.PermissionDenied, "need an approver")
		_, err = signer.c.SubmitApproval(c, &protocol.WsSubmitApprovalRequest{RequestId: cc.Id, Signature: make([]byte, 64)})
		wantCode(t, "approval by a signer", err, codes.PermissionDenied, "needs an approver")
		stream, err := approver.c.Mpc(c)
		if err != nil {
			t.Fatal(err)
		}
		_ = stream.Send(&protocol.WsMpcClientMessage{Msg: &protocol.WsMpcClientMessage_Start{Start: &protocol.WsMpcStart{Kind: protocol.WsMpcKind_WS_MPC_KIND_PRESIGN, SessionId: []byte("s")}}})
		_, err = stream.Recv()
		wantCode(t, "relay for an approver", err, codes.PermissionDenied, "needs a signer")
	})
	t.Run("wrong credential", func(t *testing.T) {
		_, err := protocol.NewWsCosignerClient(e.rawConn(nil)).WhoAmI(c, &protocol.WsWhoAmIRequest{})
		wantCode(t, "no certificate", err, codes.Unauthenticated, "client certificate")
		_, err = protocol.NewWsCosignerClient(e.rawConn(e.adminCert())).WhoAmI(c, &protocol.WsWhoAmIRequest{})
		wantCode(t, "admin as user", err, codes.PermissionDenied, "API user")
		_, err = protocol.NewWsAdminClient(e.rawConn(userCert(t, approver))).Stats(c, &protocol.WsStatsRequest{})
		wantCode(t, "user as admin", err, codes.PermissionDenied, "admin")
		_, err = protocol.NewWsAdminClient(e.rawConn(nil)).Stats(c, &protocol.WsStatsRequest{})
		wantCode(t, "admin without certificate", err, codes.Unauthenticated, "admin certificate")
	})
	t.Run("replayed submission", func(t *testing.T) {
		_, err := e.admin.SubmitTransaction(c, &protocol.WsSubmitTransactionRequest{UserId: signerID, IdempotencyKey: "tx-1", Transaction: tx(), TtlSeconds: week})
		wantCode(t, "replay", err, codes.AlreadyExists, txr.Id)
		st, _ := status.FromError(err)
		if d := st.Details(); len(d) != 1 || d[0].(*protocol.WsRequest).GetId() != txr.Id {
			t.Errorf("replay details = %v", d)
		}
		other := tx()
		other.Amount = "9"
		_, err = e.admin.SubmitTransaction(c, &protocol.WsSubmitTransactionRequest{UserId: signerID, IdempotencyKey: "tx-1", Transaction: other})
		wantCode(t, "key reuse", err, codes.AlreadyExists, "different submission")
	})
	t.Run("malformed submissions", func(t *testing.T) {
		bad := tx()
		bad.Amount = "1,5"
		bad.Destinations = nil
		_, err := e.admin.SubmitTransaction(c, &protocol.WsSubmitTransactionRequest{UserId: signerID, Transaction: bad})
		wantCode(t, "bad transaction", err, codes.InvalidArgument, "at least one destination")
		_, err = e.admin.SubmitConfigChange(c, &protocol.WsSubmitConfigChangeRequest{UserId: approver.creds.UserID, ConfigChange: &protocol.WsConfigChange{Type: 3}})
		wantCode(t, "payload mismatch", err, codes.InvalidArgument, "payload does not match")
		_, err = approver.c.RejectRequest(c, &protocol.WsRejectRequest{RequestId: cc.Id})
		wantCode(t, "rejection without reason", err, codes.InvalidArgument, "reason is required")
		_, err = signer.c.SubmitSignature(c, &protocol.WsSubmitSignatureRequest{RequestId: txr.Id, Signature: []byte{1}})
		wantCode(t, "short signature", err, codes.InvalidArgument, "64 bytes")
	})
	t.Run("oversize message", func(t *testing.T) {
		big := tx()
		big.Note = strings.Repeat("n", 5<<20)
		admin := protocol.NewWsAdminClient(e.rawConn(e.adminCert()))
		_, err := admin.SubmitTransaction(c, &protocol.WsSubmitTransactionRequest{UserId: signerID, Transaction: big})
		wantCode(t, "5 MiB submission", err, codes.ResourceExhausted, "larger than max")
		big.Note = strings.Repeat("n", 2000)
		_, err = admin.SubmitTransaction(c, &protocol.WsSubmitTransactionRequest{UserId: signerID, Transaction: big})
		wantCode(t, "long note", err, codes.InvalidArgument, "note is longer")
	})
	t.Run("malformed relay messages", func(t *testing.T) {
		stream, err := signer.c.Mpc(c)
		if err != nil {
			t.Fatal(err)
		}
		_ = stream.Send(&protocol.WsMpcClientMessage{Msg: &protocol.WsMpcClientMessage_Envelope{Envelope: []byte{1, 2}}})
		_, err = stream.Recv()
		wantCode(t, "envelope first", err, codes.InvalidArgument, "must be a start")

		// A signer waiting for key generation starts it, then sends garbage.
		_, tok := e.createUser(protocol.WsRole_WS_ROLE_SIGNER)
		fresh := e.pairOnly(tok)
		stream, err = fresh.c.Mpc(c)
		if err != nil {
			t.Fatal(err)
		}
		_ = stream.Send(&protocol.WsMpcClientMessage{Msg: &protocol.WsMpcClientMessage_Start{Start: &protocol.WsMpcStart{Kind: protocol.WsMpcKind_WS_MPC_KIND_KEYGEN, SessionId: []byte("s")}}})
		_ = stream.Send(&protocol.WsMpcClientMessage{Msg: &protocol.WsMpcClientMessage_Envelope{Envelope: []byte{0xff, 0xff, 0xff}}})
		var rerr error
		for rerr == nil {
			_, rerr = stream.Recv()
		}
		wantCode(t, "garbage envelope", rerr, codes.InvalidArgument, "envelope rejected")
		if u, _ := e.ws.Store().User(fresh.creds.UserID); u.State != protocol.WsUserState_WS_USER_STATE_KEYGEN {
			t.Errorf("user state after the failed key generation = %v", u.State)
		}

		stream, err = signer.c.Mpc(c)
		if err != nil {
			t.Fatal(err)
		}
		_ = stream.Send(&protocol.WsMpcClientMessage{Msg: &protocol.WsMpcClientMessage_Start{Start: &protocol.WsMpcStart{Kind: protocol.WsMpcKind_WS_MPC_KIND_SIGN, SessionId: []byte("s"), PresignId: "zz"}}})
		_, err = stream.Recv()
		wantCode(t, "bad presignature ID", err, codes.InvalidArgument, "presignature ID")

		stream, err = signer.c.Mpc(c)
		if err != nil {
			t.Fatal(err)
		}
		_ = stream.Send(&protocol.WsMpcClientMessage{Msg: &protocol.WsMpcClientMessage_Start{Start: &protocol.WsMpcStart{Kind: protocol.WsMpcKind_WS_MPC_KIND_KEYGEN, SessionId: []byte("s")}}})
		_, err = stream.Recv()
		wantCode(t, "second key generation", err, codes.FailedPrecondition, "needs keygen")

		stream, err = signer.c.Mpc(c)
		if err != nil {
			t.Fatal(err)
		}
		_ = stream.Send(&protocol.WsMpcClientMessage{Msg: &protocol.WsMpcClientMessage_Start{Start: &protocol.WsMpcStart{Kind: protocol.WsMpcKind_WS_MPC_KIND_SIGN, SessionId: []byte("s"), PresignId: strings.Repeat("00", 32), RequestId: txr.Id}}})
		_, err = stream.Recv()
		wantCode(t, "unknown presignature", err, codes.NotFound, "unknown presignature")
	})
	t.Run("unknown and foreign requests", func(t *testing.T) {
		_, err := approver.c.GetRequest(c, &protocol.WsGetRequestRequest{RequestId: "r-424242"})
		wantCode(t, "unknown request", err, codes.NotFound, "unknown request")
		_, err = approver.c.GetRequest(c, &protocol.WsGetRequestRequest{RequestId: txr.Id})
		wantCode(t, "another user's request", err, codes.NotFound, "unknown request")
		_, err = approver.c.FailRequest(c, &protocol.WsFailRequest{RequestId: txr.Id, Reason: "x"})
		wantCode(t, "failing another user's request", err, codes.NotFound, "unknown request")
	})
	t.Run("expiry", func(t *testing.T) {
		r, err := e.admin.SubmitConfigChange(c, &protocol.WsSubmitConfigChangeRequest{UserId: approver.creds.UserID, ConfigChange: configChange(), TtlSeconds: 60})
		if err != nil {
			t.Fatal(err)
		}
		submitted = append(submitted, r.Id)
		clk.Advance(61 * time.Second)
		e.ws.Sweep()
		_, err = approver.c.Approve(c, r, approver.approval)
		wantCode(t, "approval after expiry", err, codes.FailedPrecondition, "is expired")
	})

	// Nothing was lost: exactly the accepted submissions are stored.
	list, err := e.admin.ListRequests(c, &protocol.WsListRequestsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range list.Requests {
		got = append(got, r.Id)
	}
	if strings.Join(got, ",") != strings.Join(submitted, ",") {
		t.Fatalf("stored %v, submitted %v", got, submitted)
	}
}
