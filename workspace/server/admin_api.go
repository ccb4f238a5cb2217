package server

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/workspace/request"
	"github.com/coterie-mpc/coterie/workspace/store"
	"github.com/coterie-mpc/coterie/workspace/token"
	"github.com/coterie-mpc/coterie/workspace/verify"
)

func (s *Server) tokenTTL(seconds uint32) (time.Duration, error) {
	if seconds == 0 {
		return s.cfg.TokenTTL, nil
	}
	ttl := time.Duration(seconds) * time.Second
	if ttl > request.MaxTTL {
		return 0, fmt.Errorf("%w: token ttl longer than %s", request.ErrInvalid, request.MaxTTL)
	}
	return ttl, nil
}

// newGrant makes a token secret and its stored grant.
func (s *Server) newGrant(ttl time.Duration) ([]byte, store.Grant) {
	secret := make([]byte, token.SecretLen)
	_, _ = rand.Read(secret) // crypto/rand.Read never fails (Go 1.24+)
	return secret, store.Grant{TokenID: token.ID(secret), ExpiresAt: s.cfg.Clock.Now().Add(ttl)}
}

func (s *Server) encodeToken(u *protocol.WsUser, secret []byte, g store.Grant) (string, error) {
	pin := s.cfg.CA.Pin()
	return token.Encode(&protocol.WsPairingToken{
		Address:     s.cfg.Address,
		CaPin:       pin[:],
		WorkspaceId: u.GetWorkspaceId(),
		UserId:      u.GetId(),
		Role:        u.GetRole(),
		Secret:      secret,
		ExpiresAt:   g.ExpiresAt.UnixNano(),
	}, s.cfg.TokenKey)
}

// CreateUser implements WsAdmin.
func (s *Server) CreateUser(_ context.Context, req *protocol.WsCreateUserRequest) (*protocol.WsCreateUserResponse, error) {
	ws := req.GetWorkspaceId()
	if ws == "" {
		ws = s.cfg.WorkspaceID
	}
	if len(req.GetName()) > request.MaxTextLen {
		return nil, fmt.Errorf("%w: name longer than %d bytes", request.ErrInvalid, request.MaxTextLen)
	}
	ttl, err := s.tokenTTL(req.GetTokenTtlSeconds())
	if err != nil {
		return nil, err
	}
	secret, g := s.newGrant(ttl)
	u, err := s.store.CreateUser(ws, req.GetName(), req.GetRole(), g, store.ActorAdmin)
	if err != nil {
		return nil, err
	}
	tok, err := s.encodeToken(u, secret, g)
	if err != nil {
		return nil, err
	}
	s.log.Info("user created", "user", u.GetId(), "role", store.RoleName(u.GetRole()))
	return &protocol.WsCreateUserResponse{User: u, PairingToken: tok}, nil
}

// IssueToken implements WsAdmin.
func (s *Server) IssueToken(_ context.Context, req *protocol.WsIssueTokenRequest) (*protocol.WsCreateUserResponse, error) {
	ttl, err := s.tokenTTL(req.GetTokenTtlSeconds())
	if err != nil {
		return nil, err
	}
	secret, g := s.newGrant(ttl)
	u, err := s.store.IssueToken(req.GetUserId(), g, store.ActorAdmin)
	if err != nil {
		return nil, err
	}
	tok, err := s.encodeToken(u, secret, g)
	if err != nil {
		return nil, err
	}
	return &protocol.WsCreateUserResponse{User: u, PairingToken: tok}, nil
}

// ListUsers implements WsAdmin.
func (s *Server) ListUsers(context.Context, *protocol.WsListUsersRequest) (*protocol.WsListUsersResponse, error) {
	users, err := s.store.Users()
	return &protocol.WsListUsersResponse{Users: users}, err
}

// CreateVaultAccount implements WsAdmin.
func (s *Server) CreateVaultAccount(_ context.Context, req *protocol.WsCreateVaultAccountRequest) (*protocol.WsVaultAccount, error) {
	ws := req.GetWorkspaceId()
	if ws == "" {
		ws = s.cfg.WorkspaceID
	}
	if req.GetName() == "" || len(req.GetName()) > request.MaxTextLen {
		return nil, fmt.Errorf("%w: name must be 1 to %d bytes", request.ErrInvalid, request.MaxTextLen)
	}
	return s.store.CreateVaultAccount(ws, req.GetName(), store.ActorAdmin)
}

// ListVaultAccounts implements WsAdmin.
func (s *Server) ListVaultAccounts(_ context.Context, req *protocol.WsListVaultAccountsRequest) (*protocol.WsListVaultAccountsResponse, error) {
	ws := req.GetWorkspaceId()
	if ws == "" {
		ws = s.cfg.WorkspaceID
	}
	accounts, err := s.store.VaultAccounts(ws)
	if err != nil {
		return nil, err
	}
	workspaces, err := s.store.Workspaces()
	return &protocol.WsListVaultAccountsResponse{Accounts: accounts, Workspaces: workspaces}, err
}

// SubmitTransaction implements WsAdmin.
func (s *Server) SubmitTransaction(_ context.Context, req *protocol.WsSubmitTransactionRequest) (*protocol.WsRequest, error) {
	if err := request.ValidateSubmitTransaction(req); err != nil {
		return nil, err
	}
	return s.store.Submit(store.Submission{
		UserID: req.GetUserId(), IdempotencyKey: req.GetIdempotencyKey(), Actor: store.ActorAdmin,
		TTL: time.Duration(req.GetTtlSeconds()) * time.Second, Transaction: req.GetTransaction(),
	})
}

// SubmitConfigChange implements WsAdmin.
func (s *Server) SubmitConfigChange(_ context.Context, req *protocol.WsSubmitConfigChangeRequest) (*protocol.WsRequest, error) {
	if err := request.ValidateSubmitConfigChange(req); err != nil {
		return nil, err
	}
	return s.store.Submit(store.Submission{
		UserID: req.GetUserId(), IdempotencyKey: req.GetIdempotencyKey(), Actor: store.ActorAdmin,
		TTL: time.Duration(req.GetTtlSeconds()) * time.Second, ConfigChange: req.GetConfigChange(),
	})
}

// ListRequests implements WsAdmin.
func (s *Server) ListRequests(_ context.Context, req *protocol.WsListRequestsRequest) (*protocol.WsListRequestsResponse, error) {
	reqs, next, err := s.store.List(store.ListFilter{
		State: req.GetState(), UserID: req.GetUserId(), AfterSeq: req.GetAfterSeq(), Limit: int(req.GetLimit()),
	})
	return &protocol.WsListRequestsResponse{Requests: reqs, NextAfterSeq: next}, err
}

// Verify implements WsAdmin: it re-verifies every stored signature and
// approval.
func (s *Server) Verify(context.Context, *protocol.WsVerifyRequest) (*protocol.WsVerifyResponse, error) {
	users, err := s.store.Users()
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*protocol.WsUser, len(users))
	for _, u := range users {
		byID[u.GetId()] = u
	}
	out := &protocol.WsVerifyResponse{}
	err = s.store.ForEachRequest(func(r *protocol.WsRequest) error {
		out.Requests++
		problems, sigs, approvals := verify.Stored(byID[r.GetUserId()], r)
		out.SignaturesChecked += uint64(sigs)
		out.ApprovalsChecked += uint64(approvals)
		for _, p := range problems {
			out.Problems = append(out.Problems, &protocol.WsVerifyProblem{RequestId: p.RequestID, DigestIndex: p.DigestIndex, Problem: p.Err.Error()})
		}
		return nil
	})
	return out, err
}

// ListAudit implements WsAdmin.
func (s *Server) ListAudit(_ context.Context, req *protocol.WsListAuditRequest) (*protocol.WsListAuditResponse, error) {
	limit := int(req.GetLimit())
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	entries, next, err := s.store.Audit(req.GetAfterSeq(), limit)
	return &protocol.WsListAuditResponse{Entries: entries, NextAfterSeq: next}, err
}

// Stats implements WsAdmin.
func (s *Server) Stats(context.Context, *protocol.WsStatsRequest) (*protocol.WsStatsResponse, error) {
	return s.store.Stats()
}
