package node

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/coterie-mpc/coterie/callback"
)

// maxAdminBody bounds a request body of the admin API.
const maxAdminBody = 16 << 10

// adminCallTimeout bounds an admin API call, on both sides: pairing
// answers after the key generation, leave after the shutdown grace and
// the proposals that end a departure.
const adminCallTimeout = max(pairTimeout, newLeaderTimeout+MaxShutdownGrace+2*handBackTimeout) + time.Minute

// The admin API's paths.
const (
	PathHealth    = "/v1/health"
	PathStatus    = "/v1/status"
	PathMetrics   = "/metrics"
	PathPair      = "/v1/pair"
	PathUsers     = "/v1/users"
	PathPublicKey = "/v1/callback-public-key"

	PathJoinToken      = "/v1/cluster/join-token"
	PathMembers        = "/v1/cluster/members"
	PathRemove         = "/v1/cluster/remove"
	PathTransferLeader = "/v1/cluster/transfer-leader"
	PathPolicy         = "/v1/cluster/policy"
	PathLeave          = "/v1/cluster/leave"
	// PathCallback shows (GET) or sets from this node's config (PUT) the
	// cluster's callback handler.
	PathCallback = "/v1/cluster/callback"
	// PathUserCallback + a user (WORKSPACE/USER, or a user id only one
	// workspace has) sets (PUT) or clears (DELETE) that API user's own
	// callback handler.
	PathUserCallback = "/v1/cluster/callback/users/"
	// PathRefresh + a user (WORKSPACE/USER, or a user id only one
	// workspace has) refreshes (POST) that user's MPC key shares.
	PathRefresh = "/v1/refresh/"
	// PathRequest + an id answers the cluster's record of one request.
	PathRequest = "/v1/cluster/requests/"
)

// Error codes the admin API answers with, which the client maps back to
// the sentinels.
const (
	codeNotReady      = "not_ready"
	codeUnauthorized  = "unauthorized"
	codeBadToken      = "bad_token"
	codeRoleMismatch  = "role_mismatch"
	codeAlreadyPaired = "already_paired"
	codeBadRequest    = "bad_request"
	codeFailed        = "failed"
	codeNotFound      = "not_found"
	// The cluster operations' refusals.
	codeRefused        = "refused"
	codeMember         = "member"
	codeNoLeader       = "no_leader"
	codeNotInitialized = "not_initialized"
	// A user's own callback handler's refusals.
	codeUnknownUser    = "unknown_user"
	codeNoUserCallback = "no_user_callback"
	codeBadHandler     = "bad_callback_handler"
	// A snapshot refused for restore.
	codeRestoreRefused = "restore_refused"
	// A keyring export to a key the config does not list.
	codeNotRecipient = "not_recipient"
)

// Status is the JSON that GET /v1/status answers. It names requests and
// users, so it needs the admin token.
type Status struct {
	NodeID string `json:"node_id"`
	Ready  bool   `json:"ready"`
	// Phase and Health are what /v1/health reports.
	Phase  string `json:"phase"`
	Health Health `json:"health"`
	Raft   struct {
		State        string `json:"state"`
		LeaderID     string `json:"leader_id"`
		LeaderAddr   string `json:"leader_addr"`
		Term         uint64 `json:"term"`
		LastIndex    uint64 `json:"last_index"`
		CommitIndex  uint64 `json:"commit_index"`
		AppliedIndex uint64 `json:"applied_index"`
		// LastContact is a follower's last contact with the leader.
		LastContact *time.Time `json:"last_contact,omitempty"`
	} `json:"raft"`
	// Cluster is the members as this node sees them.
	Cluster ClusterView `json:"cluster"`
	// Users names each paired API user as workspace/user.
	Users      []string       `json:"users"`
	PoolDepths map[string]int `json:"pool_depths"`
	// Requests counts the unfinished requests this node owns; Owned names
	// the first maxStatusOwned of them, sorted.
	Requests int      `json:"requests_owned"`
	Owned    []string `json:"owned,omitempty"`
	// Actors is the actor system's own snapshot (sessions, pools, ...).
	Actors any `json:"actors,omitempty"`
}

// adminError is the JSON body of an error answer.
type adminError struct {
	Code  string `json:"code"`
	Error string `json:"error"`
}

// adminServer serves the admin API: health, metrics and the callback
// public key without authentication; the status, the stage histograms,
// pairing, the user list and the cluster operations with the admin token;
// the status console (package console) behind a login with that token.
type adminServer struct {
	n      *Node
	token  string
	ln     net.Listener
	scheme string // http or https
	srv    *http.Server
	done   chan struct{}
}

// newAdminServer serves the admin API on cfg.Listen: over TLS 1.3 when cfg
// names a certificate.
func newAdminServer(n *Node, cfg AdminConfig, token string) (*adminServer, error) {
	var tcfg *tls.Config
	if cfg.tls() {
		cert, err := cfg.loadTLS()
		if err != nil {
			return nil, fmt.Errorf("%w: admin.tls_cert, admin.tls_key: %v", ErrInvalidConfig, err)
		}
		tcfg = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}}
	}
	con, err := n.newConsole(token, tcfg != nil)
	if err != nil {
		return nil, err
	}
	ln, err := n.cfg.Network.net().Listen(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("node: admin API: %w", err)
	}
	a := &adminServer{n: n, token: token, ln: ln, scheme: "http", done: make(chan struct{})}
	if tcfg != nil {
		a.ln, a.scheme = tls.NewListener(ln, tcfg), "https"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+PathHealth, a.health)
	mux.Handle("GET "+PathMetrics, promhttp.HandlerFor(n.metrics.registry, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET "+PathPublicKey, a.publicKey)
	mux.HandleFunc("GET "+PathStatus, a.auth(a.status))
	mux.HandleFunc("GET "+PathStages, a.auth(a.stages))
	mux.HandleFunc("POST "+PathPair, a.auth(a.pair))
	mux.HandleFunc("GET "+PathUsers, a.auth(a.users))
	mux.HandleFunc("POST "+PathJoinToken, a.auth(a.joinToken))
	mux.HandleFunc("GET "+PathMembers, a.auth(a.members))
	mux.HandleFunc("POST "+PathRemove, a.auth(a.remove))
	mux.HandleFunc("POST "+PathTransferLeader, a.auth(a.transferLeader))
	mux.HandleFunc("POST "+PathRotateKeyring, a.auth(a.rotateKeyring))
	mux.HandleFunc("GET "+PathKeyring, a.auth(a.keyring))
	mux.HandleFunc("GET "+PathPolicy, a.auth(a.policy))
	mux.HandleFunc("PUT "+PathPolicy, a.auth(a.setPolicy))
	mux.HandleFunc("POST "+PathLeave, a.auth(a.leave))
	mux.HandleFunc("GET "+PathRequest+"{id}", a.auth(a.request))
	mux.HandleFunc("GET "+PathRequests, a.auth(a.requests))
	mux.HandleFunc("GET "+PathPresignatures, a.auth(a.presignatures))
	mux.HandleFunc("GET "+PathLog, a.auth(a.log))
	mux.HandleFunc("GET "+PathSnapshot, a.auth(a.snapshot))
	mux.HandleFunc("POST "+PathRestore, a.auth(a.restore))
	mux.HandleFunc("POST "+PathKeyringExport, a.auth(a.keyringExport))
	mux.HandleFunc("GET "+PathAudit, a.auth(a.audit))
	mux.HandleFunc("POST "+PathAuditTruncate, a.auth(a.truncateAudit))
	mux.HandleFunc("GET "+PathCallback, a.auth(a.callbackHandler))
	mux.HandleFunc("PUT "+PathCallback, a.auth(a.setCallbackHandler))
	mux.HandleFunc("PUT "+PathUserCallback+"{user...}", a.auth(a.setUserCallback))
	mux.HandleFunc("DELETE "+PathUserCallback+"{user...}", a.auth(a.clearUserCallback))
	mux.HandleFunc("POST "+PathRefresh+"{user...}", a.auth(a.refresh))
	// The status console: its page, the login form and its state JSON,
	// which takes its own session cookie; no other path does.
	con.Register(mux)
	a.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      adminCallTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(n.log.Handler(), slog.LevelWarn),
	}
	go func() {
		defer close(a.done)
		if err := a.srv.Serve(a.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("admin API stopped", "err", err)
		}
	}()
	return a, nil
}

// addr returns the address the API listens on, in the form of
// admin.listen.
func (a *adminServer) addr() string {
	if la := a.ln.Addr(); la.Network() == "unix" {
		return "unix:" + la.String()
	}
	return a.ln.Addr().String()
}

func (a *adminServer) url() string { return a.scheme + "://" + a.addr() }

func (a *adminServer) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := a.srv.Shutdown(ctx)
	if err != nil {
		_ = a.srv.Close()
	}
	<-a.done
	return err
}

func (a *adminServer) auth(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(a.token)) != 1 {
			writeError(w, http.StatusUnauthorized, codeUnauthorized, "missing or wrong admin token (see admin.token in the data directory)")
			return
		}
		h(w, r)
	}
}

func (a *adminServer) status(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.n.Status())
}

func (a *adminServer) publicKey(w http.ResponseWriter, _ *http.Request) {
	pub := a.n.CallbackPublicKey()
	if pub == nil {
		writeError(w, http.StatusServiceUnavailable, codeNotReady, "not ready")
		return
	}
	pem, err := callback.MarshalPublicKeyPEM(pub)
	if err != nil {
		writeError(w, http.StatusInternalServerError, codeFailed, err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, _ = w.Write(pem)
}

func (a *adminServer) users(w http.ResponseWriter, _ *http.Request) {
	if !a.n.Ready() {
		writeError(w, http.StatusServiceUnavailable, codeNotReady, "not ready")
		return
	}
	writeJSON(w, http.StatusOK, userListings(a.n.Users()))
}

func (a *adminServer) pair(w http.ResponseWriter, r *http.Request) {
	var req PairRequest
	dec := json.NewDecoder(io.LimitReader(r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, "the body is not a pairing request")
		return
	}
	info, err := a.n.Pair(r.Context(), req)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, info.Listing())
	case errors.Is(err, ErrNotReady):
		writeError(w, http.StatusServiceUnavailable, codeNotReady, err.Error())
	case errors.Is(err, ErrBadToken):
		writeError(w, http.StatusBadRequest, codeBadToken, err.Error())
	case errors.Is(err, ErrRoleMismatch):
		writeError(w, http.StatusBadRequest, codeRoleMismatch, err.Error())
	case errors.Is(err, ErrAlreadyPaired):
		writeError(w, http.StatusConflict, codeAlreadyPaired, err.Error())
	default:
		a.n.log.Warn("pairing failed", "err", err)
		writeError(w, http.StatusBadGateway, codeFailed, err.Error())
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, adminError{Code: code, Error: msg})
}

// Status returns the node's status: its phase and health, raft, the
// members, users, pools and the actors' snapshot.
func (n *Node) Status() Status {
	var s Status
	s.NodeID = n.cfg.NodeID
	s.Ready = n.Ready()
	s.Phase = n.Phase().String()
	_, s.Health = n.Health()
	rs := n.cluster.Status()
	s.Raft.State, s.Raft.LeaderID, s.Raft.Term = rs.State, rs.LeaderID, rs.Term
	s.Raft.LastIndex, s.Raft.CommitIndex, s.Raft.AppliedIndex = rs.LastIndex, rs.CommitIndex, rs.AppliedIndex
	if !n.cluster.IsLeader() && !rs.LastContact.IsZero() {
		s.Raft.LastContact = utcTime(rs.LastContact)
	}
	_, s.Raft.LeaderAddr = n.cluster.Leader()
	s.Cluster, _ = n.ClusterView() // on error, what the member table says
	s.Users = []string{}
	for _, u := range n.Users() {
		s.Users = append(s.Users, userRecordID(u.WorkspaceID, u.ID))
	}
	s.PoolDepths = n.cluster.PoolDepths()
	owned := n.cluster.OwnedBy(n.cfg.NodeID)
	s.Requests = len(owned)
	s.Owned = owned[:min(len(owned), maxStatusOwned)]
	n.mu.Lock()
	srv := n.serve
	n.mu.Unlock()
	if srv != nil {
		s.Actors = srv.status()
	}
	return s
}
