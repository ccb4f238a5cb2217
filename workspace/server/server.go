package server

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/workspace/cosigner"
	"github.com/coterie-mpc/coterie/workspace/pki"
	"github.com/coterie-mpc/coterie/workspace/store"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
)

// Config configures a Server.
type Config struct {
	Store     *store.Store
	Cosigners *cosigner.Cosigners
	CA        *pki.CA
	// ServerCert is the listener's certificate chain (from CA.IssueServer).
	ServerCert tls.Certificate
	// TokenKey is the MAC key of pairing tokens.
	TokenKey []byte
	// Address is the host:port that pairing tokens tell co-signers to dial.
	Address string
	// WorkspaceID is the workspace that admin calls naming none act on.
	WorkspaceID string
	// AdminCerts are the SHA-256 hashes of the admin certificates accepted
	// on WsAdmin.
	AdminCerts [][32]byte
	Clock      clock.Clock
	Logger     *slog.Logger
	// TokenTTL is the default lifetime of a pairing token.
	TokenTTL time.Duration
	// ClientCertValidity is the lifetime of a user's client certificate.
	ClientCertValidity time.Duration
	// PollBatch is how many requests Poll reads per store read.
	PollBatch int
	// SweepInterval is how often expired requests are swept and last-seen
	// times flushed.
	SweepInterval time.Duration
	// MaxMessageBytes bounds every incoming gRPC message; larger ones get
	// ResourceExhausted.
	MaxMessageBytes int
	// MaxSessionsPerUser bounds one user's concurrent relay sessions.
	MaxSessionsPerUser int
}

// DefaultConfig returns the defaults: 24-hour pairing tokens, ten-year
// client certificates, a one-second sweep, messages up to the MPC
// envelope limit plus 64 KiB, and 64 relay sessions per user.
func DefaultConfig() Config {
	return Config{
		Clock:              clock.Real(),
		TokenTTL:           24 * time.Hour,
		ClientCertValidity: 10 * 365 * 24 * time.Hour,
		PollBatch:          256,
		SweepInterval:      time.Second,
		MaxMessageBytes:    mpc.MaxEnvelopeSize + 64<<10,
		MaxSessionsPerUser: 64,
	}
}

// Validate reports every problem with c at once.
func (c Config) Validate() error {
	var errs []error
	if c.Store == nil {
		errs = append(errs, errors.New("server: Store is nil"))
	}
	if c.Cosigners == nil {
		errs = append(errs, errors.New("server: Cosigners is nil"))
	}
	if c.CA == nil {
		errs = append(errs, errors.New("server: CA is nil"))
	}
	if len(c.ServerCert.Certificate) == 0 {
		errs = append(errs, errors.New("server: ServerCert is empty"))
	}
	if len(c.TokenKey) < 32 {
		errs = append(errs, errors.New("server: TokenKey must be at least 32 bytes"))
	}
	if c.Address == "" {
		errs = append(errs, errors.New("server: Address is empty"))
	}
	if c.WorkspaceID == "" {
		errs = append(errs, errors.New("server: WorkspaceID is empty"))
	}
	if len(c.AdminCerts) == 0 {
		errs = append(errs, errors.New("server: AdminCerts is empty"))
	}
	if c.Clock == nil {
		errs = append(errs, errors.New("server: Clock is nil"))
	}
	if c.TokenTTL <= 0 {
		errs = append(errs, fmt.Errorf("server: TokenTTL must be positive, got %s", c.TokenTTL))
	}
	if c.ClientCertValidity <= 0 {
		errs = append(errs, fmt.Errorf("server: ClientCertValidity must be positive, got %s", c.ClientCertValidity))
	}
	if c.PollBatch < 1 {
		errs = append(errs, fmt.Errorf("server: PollBatch must be positive, got %d", c.PollBatch))
	}
	if c.SweepInterval <= 0 {
		errs = append(errs, fmt.Errorf("server: SweepInterval must be positive, got %s", c.SweepInterval))
	}
	if c.MaxMessageBytes < 64<<10 {
		errs = append(errs, fmt.Errorf("server: MaxMessageBytes must be at least 64 KiB, got %d", c.MaxMessageBytes))
	}
	if c.MaxSessionsPerUser < 1 {
		errs = append(errs, fmt.Errorf("server: MaxSessionsPerUser must be positive, got %d", c.MaxSessionsPerUser))
	}
	return errors.Join(errs...)
}

// Server implements WsCosigner and WsAdmin.
type Server struct {
	protocol.UnimplementedWsCosignerServer
	protocol.UnimplementedWsAdminServer

	cfg   Config
	log   *slog.Logger
	store *store.Store
	grpc  *grpc.Server

	stopping chan struct{}
	stopOnce sync.Once
	wg       sync.WaitGroup

	sessMu   sync.Mutex
	sessions map[string]int // running relay sessions per user
}

// New builds a Server and its gRPC server; Serve starts it.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{
		cfg: cfg, log: log, store: cfg.Store,
		stopping: make(chan struct{}),
		sessions: make(map[string]int),
	}
	tlsCfg := pki.ServerTLS(cfg.CA, cfg.ServerCert, cfg.Clock.Now)
	s.grpc = grpc.NewServer(
		grpc.Creds(credentials.NewTLS(tlsCfg)),
		grpc.MaxRecvMsgSize(cfg.MaxMessageBytes),
		grpc.UnaryInterceptor(s.unaryAuth),
		grpc.StreamInterceptor(s.streamAuth),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
	)
	protocol.RegisterWsCosignerServer(s.grpc, s)
	protocol.RegisterWsAdminServer(s.grpc, s)
	return s, nil
}

// Serve serves lis and runs the sweeper until Stop. It returns nil after
// Stop.
func (s *Server) Serve(lis net.Listener) error {
	s.wg.Add(1)
	go s.sweepLoop()
	err := s.grpc.Serve(lis)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Stop ends open streams, waits up to grace for unary calls to finish, and
// stops the sweeper. It does not close the store.
func (s *Server) Stop(grace time.Duration) {
	s.stopOnce.Do(func() {
		close(s.stopping)
		done := make(chan struct{})
		go func() {
			s.grpc.GracefulStop()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(grace):
			s.grpc.Stop()
			<-done
		}
		s.wg.Wait()
	})
}

func (s *Server) sweepLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.cfg.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.Sweep()
		case <-s.stopping:
			return
		}
	}
}

// Sweep expires due requests and flushes last-seen times. The server runs
// it every SweepInterval; tests call it after moving their clock.
func (s *Server) Sweep() {
	if n, err := s.store.ExpireDue(); err != nil {
		s.log.Warn("expiry sweep failed", "err", err)
	} else if n > 0 {
		s.log.Info("requests expired", "count", n)
	}
	if err := s.store.FlushLastSeen(); err != nil {
		s.log.Warn("last-seen flush failed", "err", err)
	}
}

// ---------------------------------------------------------------- authentication

type callerKey struct{}

// caller is who made a call.
type caller struct {
	admin bool
	user  *protocol.WsUser
}

func userOf(ctx context.Context) *protocol.WsUser {
	c, _ := ctx.Value(callerKey{}).(*caller)
	if c == nil {
		return nil
	}
	return c.user
}

const (
	cosignerPrefix = "/" + "coterie.v1.WsCosigner" + "/"
	adminPrefix    = "/" + "coterie.v1.WsAdmin" + "/"
)

func (s *Server) authenticate(ctx context.Context, method string) (context.Context, error) {
	if method == protocol.WsCosigner_Pair_FullMethodName {
		return ctx, nil
	}
	var id pki.Identity
	var ok bool
	if p, have := peer.FromContext(ctx); have {
		if info, isTLS := p.AuthInfo.(credentials.TLSInfo); isTLS {
			id, ok = pki.PeerIdentity(info.State)
		}
	}
	switch {
	case strings.HasPrefix(method, adminPrefix):
		if !ok {
			return nil, status.Error(codes.Unauthenticated, "the admin API needs the admin certificate from the workspace's data directory")
		}
		if id.Unit != pki.UnitAdmin || !s.isAdmin(id.CertSHA256) {
			return nil, status.Error(codes.PermissionDenied, "this certificate is not the workspace's admin credential")
		}
		return context.WithValue(ctx, callerKey{}, &caller{admin: true}), nil
	case strings.HasPrefix(method, cosignerPrefix):
		if !ok {
			return nil, status.Error(codes.Unauthenticated, "this method needs the client certificate issued at pairing")
		}
		if id.Unit != pki.UnitUser {
			return nil, status.Error(codes.PermissionDenied, "only an API user's certificate may call the co-signer API")
		}
		u, err := s.store.User(id.CommonName)
		if errors.Is(err, store.ErrUnknownUser) {
			return nil, status.Errorf(codes.Unauthenticated, "unknown user %q", id.CommonName)
		}
		if err != nil {
			return nil, toStatus(s.log, err)
		}
		if len(u.ClientCertSha256) != sha256.Size || [32]byte(u.ClientCertSha256) != id.CertSHA256 {
			return nil, status.Errorf(codes.Unauthenticated, "certificate of user %s was replaced by a later pairing", u.Id)
		}
		s.store.Touch(u.Id)
		return context.WithValue(ctx, callerKey{}, &caller{user: u}), nil
	default:
		return nil, status.Errorf(codes.Unimplemented, "unknown method %s", method)
	}
}

func (s *Server) isAdmin(h [32]byte) bool {
	for _, a := range s.cfg.AdminCerts {
		if a == h {
			return true
		}
	}
	return false
}

func (s *Server) unaryAuth(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, err := s.authenticate(ctx, info.FullMethod)
	if err != nil {
		return nil, err
	}
	resp, err := handler(ctx, req)
	return resp, toStatus(s.log, err)
}

type authStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (a authStream) Context() context.Context { return a.ctx }

func (s *Server) streamAuth(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, err := s.authenticate(ss.Context(), info.FullMethod)
	if err != nil {
		return err
	}
	return toStatus(s.log, handler(srv, authStream{ServerStream: ss, ctx: ctx}))
}

// needRole checks that the calling user has a role.
func needRole(u *protocol.WsUser, signer bool) error {
	if signer && !store.IsSigner(u.GetRole()) {
		return status.Errorf(codes.PermissionDenied, "user %s has role %s; this needs a signer", u.GetId(), store.RoleName(u.GetRole()))
	}
	if !signer && !store.IsApprover(u.GetRole()) {
		return status.Errorf(codes.PermissionDenied, "user %s has role %s; this needs an approver", u.GetId(), store.RoleName(u.GetRole()))
	}
	return nil
}
