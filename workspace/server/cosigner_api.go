package server

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace/pki"
	"github.com/coterie-mpc/coterie/workspace/request"
	"github.com/coterie-mpc/coterie/workspace/store"
	"github.com/coterie-mpc/coterie/workspace/token"
	"github.com/coterie-mpc/coterie/workspace/verify"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// maxKeyLen bounds a registered public key (a 4096-bit RSA PKIX key is
// about 550 bytes).
const maxKeyLen = 4096

// Pair implements WsCosigner.
func (s *Server) Pair(_ context.Context, req *protocol.WsPairRequest) (*protocol.WsPairResponse, error) {
	tok, err := token.Parse(req.GetToken())
	if err != nil {
		return nil, err
	}
	if err := tok.Verify(s.cfg.TokenKey); err != nil {
		return nil, err
	}
	now := s.cfg.Clock.Now()
	if err := tok.CheckExpiry(now); err != nil {
		return nil, err
	}
	f := tok.Fields
	if err := checkKeys(f.GetRole(), req); err != nil {
		return nil, err
	}
	u, err := s.store.User(f.GetUserId())
	if err != nil {
		return nil, fmt.Errorf("%w: %v", store.ErrUnknownToken, err)
	}
	if u.GetRole() != f.GetRole() || u.GetWorkspaceId() != f.GetWorkspaceId() {
		return nil, fmt.Errorf("%w: token does not match user %s", store.ErrUnknownToken, u.GetId())
	}
	certDER, err := s.cfg.CA.IssueClient(req.GetCsr(), u.GetId(), pki.UnitUser, now, s.cfg.ClientCertValidity)
	if err != nil {
		return nil, err
	}
	paired, err := s.store.Pair(store.Pairing{
		TokenID:     tok.ID(),
		UserID:      u.GetId(),
		CertSHA256:  sha256.Sum256(certDER),
		ApprovalKey: req.GetApprovalPublicKey(),
		CallbackKey: req.GetCallbackPublicKey(),
	})
	if err != nil {
		return nil, err
	}
	s.log.Info("user paired", "user", paired.GetId(), "role", store.RoleName(paired.GetRole()), "state", store.StateName(paired.GetState()))
	plan := s.cfg.Cosigners.Plan()
	resp := &protocol.WsPairResponse{
		User:              paired,
		ClientCertificate: certDER,
		CaCertificate:     s.cfg.CA.Certificate().Raw,
	}
	if store.IsSigner(paired.GetRole()) {
		resp.NodePartyId = string(plan.NodeParty)
		resp.Threshold = uint32(plan.Threshold)
		for _, p := range plan.CloudParties {
			resp.CloudPartyIds = append(resp.CloudPartyIds, string(p))
		}
	}
	return resp, nil
}

// checkKeys validates the keys a pairing registers: an Ed25519 approval key
// (required for approver roles) and a PKIX callback key.
func checkKeys(role protocol.WsRole, req *protocol.WsPairRequest) error {
	var p []string
	ak := req.GetApprovalPublicKey()
	if store.IsApprover(role) && len(ak) == 0 {
		p = append(p, "an approver must register an approval public key")
	}
	if len(ak) > 0 && len(ak) != ed25519.PublicKeySize {
		p = append(p, fmt.Sprintf("approval public key must be %d bytes (Ed25519)", ed25519.PublicKeySize))
	}
	ck := req.GetCallbackPublicKey()
	if len(ck) == 0 || len(ck) > maxKeyLen {
		p = append(p, "callback public key is required (PKIX DER)")
	} else if _, err := x509.ParsePKIXPublicKey(ck); err != nil {
		p = append(p, "callback public key does not parse as PKIX DER")
	}
	if len(req.GetCsr()) == 0 || len(req.GetCsr()) > maxKeyLen {
		p = append(p, "a certificate request (CSR) is required")
	}
	if len(p) > 0 {
		return fmt.Errorf("%w: %v", request.ErrInvalid, p)
	}
	return nil
}

// WhoAmI implements WsCosigner.
func (s *Server) WhoAmI(ctx context.Context, _ *protocol.WsWhoAmIRequest) (*protocol.WsUser, error) {
	return s.store.User(userOf(ctx).GetId())
}

// Poll implements WsCosigner.
func (s *Server) Poll(req *protocol.WsPollRequest, stream grpc.ServerStreamingServer[protocol.WsPollEvent]) error {
	ctx := stream.Context()
	u := userOf(ctx)
	cursor := req.GetCursor()
	caughtUp := false
	var beat time.Duration
	if ms := req.GetHeartbeatMs(); ms > 0 {
		beat = max(time.Duration(ms)*time.Millisecond, minHeartbeat)
	}
	for {
		changed := s.store.Changed(u.GetId())
		open, err := s.store.OpenAfter(u.GetId(), cursor, s.cfg.PollBatch)
		if err != nil {
			return err
		}
		var fresh []uint64
		for _, r := range open {
			if err := stream.Send(&protocol.WsPollEvent{Request: r, Cursor: r.GetSeq()}); err != nil {
				return err
			}
			cursor = r.GetSeq()
			if r.GetState() == protocol.WsRequestState_WS_REQUEST_STATE_PENDING {
				fresh = append(fresh, r.GetSeq())
			}
		}
		if len(fresh) > 0 {
			if err := s.store.MarkDelivered(u.GetId(), fresh); err != nil {
				return err
			}
		}
		if len(open) == s.cfg.PollBatch {
			continue
		}
		if !caughtUp {
			if err := stream.Send(&protocol.WsPollEvent{Cursor: cursor, CaughtUp: true}); err != nil {
				return err
			}
			caughtUp = true
		}
		s.store.Touch(u.GetId())
		idle, err := s.wait(ctx, changed, beat)
		if err != nil {
			return err
		}
		if idle {
			if err := stream.Send(&protocol.WsPollEvent{Cursor: cursor}); err != nil {
				return err
			}
		}
	}
}

// minHeartbeat is the shortest heartbeat interval Poll keeps.
const minHeartbeat = 100 * time.Millisecond

// wait waits for a new request of the user's, for beat when it is not 0
// (idle is then true), or for the end of the stream.
func (s *Server) wait(ctx context.Context, changed <-chan struct{}, beat time.Duration) (idle bool, err error) {
	var tick <-chan time.Time
	if beat > 0 {
		c, t := clock.After(s.cfg.Clock, beat)
		defer t.Stop()
		tick = c
	}
	select {
	case <-changed:
		return false, nil
	case <-tick:
		return true, nil
	case <-ctx.Done():
		return false, ctx.Err()
	case <-s.stopping:
		return false, status.Error(codes.Unavailable, "workspace is shutting down; reconnect with the last cursor")
	}
}

// GetRequest implements WsCosigner.
func (s *Server) GetRequest(ctx context.Context, req *protocol.WsGetRequestRequest) (*protocol.WsRequest, error) {
	return s.store.UserRequest(userOf(ctx).GetId(), req.GetRequestId())
}

// ClaimRequest implements WsCosigner.
func (s *Server) ClaimRequest(ctx context.Context, req *protocol.WsClaimRequest) (*protocol.WsRequest, error) {
	if len(req.GetClaimant()) > request.MaxTextLen {
		return nil, fmt.Errorf("%w: claimant longer than %d bytes", request.ErrInvalid, request.MaxTextLen)
	}
	return s.store.Claim(userOf(ctx).GetId(), req.GetRequestId(), req.GetClaimant())
}

// SubmitSignature implements WsCosigner: it verifies the signature against
// the key derived for the digest's path before recording it.
func (s *Server) SubmitSignature(ctx context.Context, req *protocol.WsSubmitSignatureRequest) (*protocol.WsSubmitSignatureResponse, error) {
	u := userOf(ctx)
	if err := needRole(u, true); err != nil {
		return nil, err
	}
	if err := request.ValidateSignature(req); err != nil {
		return nil, err
	}
	r, err := s.store.UserRequest(u.GetId(), req.GetRequestId())
	if err != nil {
		return nil, err
	}
	digests := r.GetTransaction().GetDigests()
	if r.GetKind() != protocol.WsRequestKind_WS_REQUEST_KIND_TRANSACTION {
		return nil, fmt.Errorf("%w: %s is a config change; submit an approval", store.ErrWrongKind, r.GetId())
	}
	if int(req.GetDigestIndex()) >= len(digests) {
		return nil, fmt.Errorf("%w: %s has %d digests, index %d", store.ErrDigestIndex, r.GetId(), len(digests), req.GetDigestIndex())
	}
	if store.Terminal(r.GetState()) && !hasSignature(r, req.GetDigestIndex()) {
		return nil, fmt.Errorf("%w: %s is %s; digest %d takes no signature", store.ErrNotOpen, r.GetId(), store.RequestStateName(r.GetState()), req.GetDigestIndex())
	}
	d := digests[req.GetDigestIndex()]
	pub, recoveryID, err := verify.Signature(u.GetSigningKey(), d, req.GetSignature())
	if err != nil {
		return nil, fmt.Errorf("%w (path %v); %s stays %s", err, d.GetDerivationPath(), r.GetId(), store.RequestStateName(r.GetState()))
	}
	done, dup, err := s.store.RecordSignature(u.GetId(), r.GetId(), req.GetDigestIndex(),
		store.Signed{Signature: req.GetSignature(), RecoveryID: recoveryID, PublicKey: pub}, store.ActorUser(u.GetId()))
	if err != nil {
		return nil, err
	}
	return &protocol.WsSubmitSignatureResponse{Request: done, Duplicate: dup}, nil
}

// SubmitApproval implements WsCosigner.
func (s *Server) SubmitApproval(ctx context.Context, req *protocol.WsSubmitApprovalRequest) (*protocol.WsSubmitApprovalResponse, error) {
	u := userOf(ctx)
	if err := needRole(u, false); err != nil {
		return nil, err
	}
	if err := request.ValidateApproval(req); err != nil {
		return nil, err
	}
	r, err := s.store.UserRequest(u.GetId(), req.GetRequestId())
	if err != nil {
		return nil, err
	}
	if r.GetKind() != protocol.WsRequestKind_WS_REQUEST_KIND_CONFIG_CHANGE {
		return nil, fmt.Errorf("%w: %s is a transaction; it takes signatures", store.ErrWrongKind, r.GetId())
	}
	if err := verify.Approval(u, r, req.GetSignature()); err != nil {
		return nil, fmt.Errorf("%w; %s stays %s", err, r.GetId(), store.RequestStateName(r.GetState()))
	}
	done, dup, err := s.store.RecordApproval(u.GetId(), r.GetId(), req.GetSignature())
	if err != nil {
		return nil, err
	}
	return &protocol.WsSubmitApprovalResponse{Request: done, Duplicate: dup}, nil
}

// RejectRequest implements WsCosigner.
func (s *Server) RejectRequest(ctx context.Context, req *protocol.WsRejectRequest) (*protocol.WsRequest, error) {
	r, _, err := s.store.Reject(userOf(ctx).GetId(), req.GetRequestId(), req.GetReason())
	return r, err
}

// FailRequest implements WsCosigner.
func (s *Server) FailRequest(ctx context.Context, req *protocol.WsFailRequest) (*protocol.WsRequest, error) {
	r, _, err := s.store.Fail(userOf(ctx).GetId(), req.GetRequestId(), req.GetReason())
	return r, err
}

// IgnoreRequest implements WsCosigner: only an approver answers config
// changes, so only an approver may ignore one.
func (s *Server) IgnoreRequest(ctx context.Context, req *protocol.WsIgnoreRequest) (*protocol.WsRequest, error) {
	u := userOf(ctx)
	if err := needRole(u, false); err != nil {
		return nil, err
	}
	r, _, err := s.store.Ignore(u.GetId(), req.GetRequestId(), req.GetReason())
	return r, err
}

func hasSignature(r *protocol.WsRequest, index uint32) bool {
	for _, s := range r.GetSignatures() {
		if s.GetIndex() == index {
			return true
		}
	}
	return false
}
