package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/coterie-mpc/coterie/actors"
	"github.com/coterie-mpc/coterie/cluster"
	"github.com/coterie-mpc/coterie/enclave"
)

// clusterOpTimeout bounds a cluster operation of the admin API other than
// leave: a few proposals through raft.
const clusterOpTimeout = time.Minute

// The roles a member has in raft, as MemberView.Role names them.
const (
	RoleLeader    = "leader"
	RoleVoter     = "voter"
	RoleNonvoter  = "nonvoter"
	RoleNotInRaft = "not in raft"
	// RoleUnknown: raft's configuration could not be read.
	RoleUnknown = "unknown"
)

// The liveness of a member, as MemberView.Liveness names it. Only the
// leader watches heartbeats, so only the leader's view tells the others'.
const (
	LivenessSelf        = "self"
	LivenessReachable   = "reachable"
	LivenessUnreachable = "unreachable"
	LivenessUnknown     = "unknown"
)

// ClusterView is the cluster's members as one node sees them: GET
// /v1/cluster/members, `coterie node cluster list`, and /v1/status's
// cluster. It holds no secret.
type ClusterView struct {
	ClusterID string `json:"cluster_id"`
	// ViewOf is the node whose view this is.
	ViewOf   string `json:"view_of"`
	LeaderID string `json:"leader_id"`
	// LivenessKnown is true on the leader, whose heartbeats tell which
	// members are unreachable; a follower knows only its own contact with
	// the leader: ask the leader for the rest.
	LivenessKnown bool         `json:"liveness_known"`
	Members       []MemberView `json:"members"`
}

// MemberView is one member: its member-table record, its role in raft,
// its liveness and load.
type MemberView struct {
	ID       string `json:"id"`
	Address  string `json:"address"`
	Location string `json:"location,omitempty"`
	// Enclave is what the member's attestation evidence proved.
	Enclave EnclaveView `json:"enclave"`
	// IdentityKey is the member's Ed25519 identity public key (its TLS
	// key), and IdentityPin its SHA-256, as join tokens pin it; hex.
	IdentityKey string `json:"identity_key,omitempty"`
	IdentityPin string `json:"identity_pin,omitempty"`
	// JoinedAt is when the member joined, to the second; JoinedWith the
	// id of its join token (empty for the node that bootstrapped).
	JoinedAt   *time.Time `json:"joined_at,omitempty"`
	JoinedWith string     `json:"joined_with,omitempty"`
	// InMemberTable is false for a raft server that the member table does
	// not list.
	InMemberTable bool `json:"in_member_table"`
	// Role is leader, voter, nonvoter, "not in raft", or unknown when
	// raft's configuration could not be read.
	Role string `json:"role"`
	// Liveness is self, reachable, unreachable or unknown.
	Liveness string `json:"liveness"`
	// UnreachableSince is when the leader's heartbeats to the member
	// first failed, by the leader's clock (a new leader starts counting
	// afresh).
	UnreachableSince *time.Time `json:"unreachable_since,omitempty"`
	// LastContact is, on a follower, its last contact with the leader (on
	// the leader's entry).
	LastContact *time.Time `json:"last_contact,omitempty"`
	Load        MemberLoad `json:"load"`
	// Raft is the member's own raft state: known for this node only.
	Raft *MemberRaft `json:"raft,omitempty"`
	// Reported is, in the leader's view, another member's raft state as
	// that member last reported it to the leader (about once a second),
	// and when the leader received the report: the member's own word,
	// relayed, since raft keeps the leader's replication state private.
	// Absent on a follower's view, and for a member that has not reported
	// to this leader.
	Reported *MemberReport `json:"reported,omitempty"`
}

// EnclaveView is an enclave identity, hex.
type EnclaveView struct {
	Kind            string `json:"kind"`
	Measurement     string `json:"measurement,omitempty"`
	Signer          string `json:"signer,omitempty"`
	Product         string `json:"product,omitempty"`
	SecurityVersion uint32 `json:"security_version"`
	Debug           bool   `json:"debug"`
}

// MemberLoad is a member's work: the unfinished requests the cluster
// state says it owns and, for this node, its sessions and capacity.
type MemberLoad struct {
	RequestsOwned int  `json:"requests_owned"`
	Sessions      *int `json:"sessions,omitempty"`
	Capacity      *int `json:"capacity,omitempty"`
}

// MemberReport is a member's raft state as it reported it to the leader.
type MemberReport struct {
	Term         uint64    `json:"term"`
	CommitIndex  uint64    `json:"commit_index"`
	AppliedIndex uint64    `json:"applied_index"`
	At           time.Time `json:"at"`
}

// MemberRaft is this node's raft state.
type MemberRaft struct {
	State        string `json:"state"`
	Term         uint64 `json:"term"`
	CommitIndex  uint64 `json:"commit_index"`
	AppliedIndex uint64 `json:"applied_index"`
}

// ClusterView returns the members as this node sees them: the member
// table and raft's configuration from the local replica, liveness from
// the leader's heartbeats when this node leads. On an error reading raft's
// configuration, the view holds the member table alone.
func (n *Node) ClusterView() (ClusterView, error) {
	return clusterView(n.cluster, n.cfg.NodeID, n.sessionLoad)
}

// memberSource is what a cluster view is read from: a *cluster.Cluster,
// whose methods these are.
type memberSource interface {
	ClusterID() string
	Leader() (id, addr string)
	IsLeader() bool
	Status() cluster.Status
	Members() []cluster.Member
	Servers() ([]cluster.Server, error)
	Silent() map[string]time.Time
	Progress() map[string]cluster.Progress
	OwnedBy(node string) []string
}

var _ memberSource = (*cluster.Cluster)(nil)

// clusterView builds node self's view of src; selfLoad gives self's
// sessions and capacity.
func clusterView(src memberSource, self string, selfLoad func() (*int, *int)) (ClusterView, error) {
	leader, _ := src.Leader()
	isLeader := src.IsLeader()
	rs := src.Status()
	v := ClusterView{ClusterID: src.ClusterID(), ViewOf: self, LeaderID: leader, LivenessKnown: isLeader, Members: []MemberView{}}
	byID := map[string]*MemberView{}
	for _, m := range src.Members() {
		mv := memberView(m)
		byID[m.ID] = &mv
	}
	servers, err := src.Servers()
	inRaft := map[string]bool{}
	for _, s := range servers {
		mv, ok := byID[s.ID]
		if !ok {
			mv = &MemberView{ID: s.ID, Address: s.Address}
			byID[s.ID] = mv
		}
		inRaft[s.ID] = true
		switch {
		case s.ID == leader:
			mv.Role = RoleLeader
		case s.Voter:
			mv.Role = RoleVoter
		default:
			mv.Role = RoleNonvoter
		}
	}
	silent, reports := src.Silent(), src.Progress()
	for id, mv := range byID {
		if p, ok := reports[id]; ok && id != self {
			mv.Reported = &MemberReport{Term: p.Term, CommitIndex: p.CommitIndex, AppliedIndex: p.AppliedIndex, At: p.ReportedAt.UTC()}
		}
		switch {
		case err != nil:
			mv.Role = RoleUnknown
		case !inRaft[id]:
			mv.Role = RoleNotInRaft
		}
		mv.Load.RequestsOwned = len(src.OwnedBy(id))
		switch since, gone := silent[id]; {
		case id == self:
			mv.Liveness = LivenessSelf
			mv.Load.Sessions, mv.Load.Capacity = selfLoad()
			mv.Raft = &MemberRaft{State: rs.State, Term: rs.Term, CommitIndex: rs.CommitIndex, AppliedIndex: rs.AppliedIndex}
		case !inRaft[id]:
			mv.Liveness = LivenessUnknown
		case isLeader && gone:
			mv.Liveness, mv.UnreachableSince = LivenessUnreachable, utcTime(since)
		case isLeader:
			mv.Liveness = LivenessReachable
		case id == leader && !rs.LastContact.IsZero():
			mv.Liveness, mv.LastContact = LivenessReachable, utcTime(rs.LastContact)
		default:
			mv.Liveness = LivenessUnknown
		}
		v.Members = append(v.Members, *mv)
	}
	sort.Slice(v.Members, func(i, j int) bool { return v.Members[i].ID < v.Members[j].ID })
	return v, err
}

// memberView is a member-table record as the admin API shows it.
func memberView(m cluster.Member) MemberView {
	pin := cluster.IdentityPin(m.IdentityKey)
	mv := MemberView{
		ID: m.ID, Address: m.Address, Location: m.Location, Enclave: enclaveView(m.Enclave),
		IdentityKey: hex.EncodeToString(m.IdentityKey), IdentityPin: hex.EncodeToString(pin[:]),
		JoinedWith: m.JoinedWith, InMemberTable: true,
	}
	if !m.JoinedAt.IsZero() {
		t := m.JoinedAt.UTC().Truncate(time.Second)
		mv.JoinedAt = &t
	}
	return mv
}

func enclaveView(id enclave.Identity) EnclaveView {
	return EnclaveView{
		Kind: id.Kind.String(), Measurement: hex.EncodeToString(id.Measurement), Signer: hex.EncodeToString(id.Signer),
		Product: hex.EncodeToString(id.Product), SecurityVersion: id.SecurityVersion, Debug: id.Debug,
	}
}

// sessionLoad returns the sessions this node runs and its capacity; nil
// sessions before the actors run.
func (n *Node) sessionLoad() (*int, *int) {
	capacity := n.cfg.Sessions.Capacity
	n.mu.Lock()
	srv := n.serve
	n.mu.Unlock()
	if srv == nil {
		return nil, &capacity
	}
	st, ok := srv.status().(actors.Status)
	if !ok {
		return nil, &capacity
	}
	sessions := len(st.Sessions)
	return &sessions, &capacity
}

func utcTime(t time.Time) *time.Time {
	u := t.UTC()
	return &u
}

// JoinTokenRequest is the body of POST /v1/cluster/join-token.
type JoinTokenRequest struct {
	// TTL is the token's lifetime as a Go duration ("1h", "30m"); empty
	// means an hour.
	TTL string `json:"ttl,omitempty"`
}

// JoinTokenListing is the answer of POST /v1/cluster/join-token. Token is
// a secret until it is used: hand it over like a password.
type JoinTokenListing struct {
	Token     string    `json:"token"`
	TokenID   string    `json:"token_id"`
	ExpiresAt time.Time `json:"expires_at"`
	ClusterID string    `json:"cluster_id"`
	// Member and MemberAddress are the member the joiner contacts: the
	// node that issued the token.
	Member        string `json:"member"`
	MemberAddress string `json:"member_address"`
}

// RemoveRequest is the body of POST /v1/cluster/remove.
type RemoveRequest struct {
	Node string `json:"node"`
}

// TransferReport is the answer of POST /v1/cluster/transfer-leader.
type TransferReport struct {
	Previous string `json:"previous"`
	// Leader is the new leader, empty if it was not yet known.
	Leader string `json:"leader"`
}

// PolicyDocument is the cluster's attestation policy as GET and PUT
// /v1/cluster/policy carry it: rules in the config's cluster.policy
// format.
type PolicyDocument struct {
	Rules []PolicyRule `json:"rules"`
}

// policyRules returns p's rules in the config's format.
func policyRules(p enclave.Policy) []PolicyRule {
	out := make([]PolicyRule, 0, len(p.Allow))
	for _, r := range p.Allow {
		pr := PolicyRule{
			Kind: r.Kind.String(), Measurement: hex.EncodeToString(r.Measurement), Signer: hex.EncodeToString(r.Signer),
			Product: hex.EncodeToString(r.Product), MinSecurityVersion: r.MinSecurityVersion, AllowDebug: r.AllowDebug,
			Issuer: r.Issuer, HardwareModels: slices.Clone(r.HardwareModels),
		}
		for i, v := range r.PCRs {
			if pr.PCRs == nil {
				pr.PCRs = make(map[uint32]string)
			}
			pr.PCRs[i] = hex.EncodeToString(v)
		}
		out = append(out, pr)
	}
	return out
}

// decodeBody decodes a JSON body into v: at most maxAdminBody bytes, no
// unknown field; an empty body leaves v as it is.
func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

func (a *adminServer) joinToken(w http.ResponseWriter, r *http.Request) {
	var req JoinTokenRequest
	if err := decodeBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, "the body is not a join token request: "+err.Error())
		return
	}
	var ttl time.Duration
	if req.TTL != "" {
		var err error
		if ttl, err = time.ParseDuration(req.TTL); err != nil || ttl <= 0 {
			writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("ttl %q is not a positive duration such as 1h or 30m", req.TTL))
			return
		}
	}
	if !a.n.Ready() {
		writeError(w, http.StatusServiceUnavailable, codeNotReady, fmt.Sprintf("not serving (%s): a joiner could not count on this member", a.n.Phase()))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), clusterOpTimeout)
	defer cancel()
	t, err := a.n.cluster.IssueJoinToken(ctx, ttl)
	if err != nil {
		a.clusterError(w, "issue a join token", err)
		return
	}
	a.n.log.Info("join token issued", "token_id", t.TokenID, "expires_at", t.ExpiresAt)
	writeJSON(w, http.StatusOK, JoinTokenListing{
		Token: t.String(), TokenID: t.TokenID, ExpiresAt: t.ExpiresAt.UTC().Truncate(time.Second), ClusterID: t.ClusterID,
		Member: a.n.cfg.NodeID, MemberAddress: t.Address,
	})
}

func (a *adminServer) members(w http.ResponseWriter, _ *http.Request) {
	v, err := a.n.ClusterView()
	if err != nil {
		a.clusterError(w, "read the raft configuration", err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (a *adminServer) remove(w http.ResponseWriter, r *http.Request) {
	var req RemoveRequest
	if err := decodeBody(r, &req); err != nil || req.Node == "" {
		writeError(w, http.StatusBadRequest, codeBadRequest, `the body must be {"node": ID}`)
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), clusterOpTimeout)
	defer cancel()
	if err := a.n.RemoveMember(ctx, req.Node); err != nil {
		a.clusterError(w, "remove "+req.Node, err)
		return
	}
	a.n.log.Info("member removed", "member", req.Node)
	writeJSON(w, http.StatusOK, req)
}

func (a *adminServer) transferLeader(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), clusterOpTimeout)
	defer cancel()
	leader, err := a.n.TransferLeadership(ctx)
	if err != nil {
		a.clusterError(w, "transfer leadership", err)
		return
	}
	writeJSON(w, http.StatusOK, TransferReport{Previous: a.n.cfg.NodeID, Leader: leader})
}

func (a *adminServer) policy(w http.ResponseWriter, _ *http.Request) {
	p, ok := a.n.cluster.Policy()
	if !ok {
		a.clusterError(w, "read the policy", fmt.Errorf("%w: no policy yet", cluster.ErrNotInitialized))
		return
	}
	writeJSON(w, http.StatusOK, PolicyDocument{Rules: policyRules(p)})
}

func (a *adminServer) setPolicy(w http.ResponseWriter, r *http.Request) {
	var doc PolicyDocument
	if err := decodeBody(r, &doc); err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, "the body is not a policy: "+err.Error())
		return
	}
	if len(doc.Rules) == 0 {
		writeError(w, http.StatusBadRequest, codeBadRequest, "a policy needs at least one rule: an empty one would admit no node")
		return
	}
	p, err := ClusterConfig{Policy: doc.Rules}.policy()
	if err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, "policy: "+err.Error())
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), clusterOpTimeout)
	defer cancel()
	if err := a.n.cluster.SetPolicy(ctx, p); err != nil {
		a.clusterError(w, "set the policy", err)
		return
	}
	a.n.log.Info("attestation policy set", "rules", len(p.Allow))
	a.policy(w, r)
}

func (a *adminServer) leave(w http.ResponseWriter, r *http.Request) {
	// A client that hangs up must not stop a departure half way.
	rep, err := a.n.Leave(context.WithoutCancel(r.Context()))
	if err != nil {
		a.clusterError(w, "leave", err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// clusterError answers a failed cluster operation: refusals with their
// explanation and a code the admin client maps back to the sentinel.
// Cluster errors name ids only, never secrets.
func (a *adminServer) clusterError(w http.ResponseWriter, what string, err error) {
	switch {
	case errors.Is(err, ErrNotReady):
		writeError(w, http.StatusServiceUnavailable, codeNotReady, err.Error())
	case errors.Is(err, ErrRefused):
		writeError(w, http.StatusConflict, codeRefused, err.Error())
	case errors.Is(err, cluster.ErrMember):
		writeError(w, http.StatusConflict, codeMember, err.Error())
	case errors.Is(err, cluster.ErrNotInitialized):
		writeError(w, http.StatusServiceUnavailable, codeNotInitialized, err.Error())
	case errors.Is(err, cluster.ErrNotLeader):
		writeError(w, http.StatusServiceUnavailable, codeNoLeader, err.Error())
	case errors.Is(err, cluster.ErrBadToken), errors.Is(err, cluster.ErrBadCommand):
		writeError(w, http.StatusBadRequest, codeBadRequest, err.Error())
	default:
		a.n.log.Warn("cluster operation failed", "operation", what, "err", err)
		writeError(w, http.StatusInternalServerError, codeFailed, fmt.Sprintf("%s: %v", what, err))
	}
}

// maxStatusOwned bounds the request ids /v1/status lists.
const maxStatusOwned = 100

// RequestListing is the cluster's record of one request, as GET
// /v1/cluster/requests/{id} answers it: who owns it, how often it was
// claimed, its reservations and its outcome. It holds no secret.
type RequestListing struct {
	ID        string     `json:"id"`
	APIUser   string     `json:"api_user"`
	Status    string     `json:"status"`
	Owner     string     `json:"owner,omitempty"`
	LastOwner string     `json:"last_owner,omitempty"`
	Attempt   int        `json:"attempt"`
	ClaimedAt *time.Time `json:"claimed_at,omitempty"`
	// Reserved names the presignatures of the current attempt as key/id.
	Reserved    []string   `json:"reserved,omitempty"`
	Burned      int        `json:"burned"`
	Outcome     string     `json:"outcome,omitempty"`
	Reason      string     `json:"reason,omitempty"`
	CompletedAt *time.Time `json:"completed_at,omitempty"`
}

func requestListing(r cluster.RequestInfo) RequestListing {
	out := RequestListing{ID: r.ID, APIUser: r.APIUserID, Status: r.Status.String(), Owner: r.Owner,
		LastOwner: r.LastOwner, Attempt: r.Attempt, Burned: r.Burned, Reason: r.Reason}
	if !r.ClaimedAt.IsZero() {
		t := r.ClaimedAt
		out.ClaimedAt = &t
	}
	if r.Outcome != cluster.OutcomeUnspecified {
		out.Outcome = r.Outcome.String()
	}
	if !r.CompletedAt.IsZero() {
		t := r.CompletedAt
		out.CompletedAt = &t
	}
	for _, p := range r.Reserved {
		out.Reserved = append(out.Reserved, p.KeyID+"/"+p.ID)
	}
	return out
}

func (a *adminServer) request(w http.ResponseWriter, r *http.Request) {
	info, ok := a.n.cluster.Request(r.PathValue("id"))
	if !ok {
		writeError(w, http.StatusNotFound, codeNotFound, "the cluster has no record of that request")
		return
	}
	writeJSON(w, http.StatusOK, requestListing(info))
}

// CallbackListing is the cluster's callback handler as GET and PUT
// /v1/cluster/callback answer it: its URL and the SHA-256 of its public key
// (both empty when the cluster approves by itself), whether this node's
// config names the same, and the API users that have a handler of their
// own, which their requests go to instead.
type CallbackListing struct {
	Recorded  bool                  `json:"recorded"`
	URL       string                `json:"url"`
	KeySHA256 string                `json:"key_sha256,omitempty"`
	ThisNode  bool                  `json:"this_node_agrees"`
	Users     []UserCallbackListing `json:"users"`
}

func (a *adminServer) callbackListing() CallbackListing {
	url, key, ok := a.n.cluster.FSM().Callback()
	out := CallbackListing{Recorded: ok, URL: url}
	if len(key) > 0 {
		out.KeySHA256 = fmt.Sprintf("%x", sha256.Sum256(key))
	}
	_, err := a.n.checkCallback()
	out.ThisNode = ok && err == nil
	out.Users = userCallbackListings(a.n.cluster.FSM().UserCallbacks())
	return out
}

func (a *adminServer) callbackHandler(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.callbackListing())
}

// setCallbackHandler records this node's configured handler as the
// cluster's: how an operator moves the cluster to a new handler (then
// updates the other nodes' configs and restarts them; until then they do
// not sign).
func (a *adminServer) setCallbackHandler(w http.ResponseWriter, r *http.Request) {
	url, key, err := a.n.callbackHandler()
	if err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, err.Error())
		return
	}
	if err := a.n.cluster.SetCallback(r.Context(), url, key); err != nil {
		a.clusterError(w, "record the callback handler", err)
		return
	}
	writeJSON(w, http.StatusOK, a.callbackListing())
}

// The listings of the cluster state, for outside checkers (bench/check):
// every request and every presignature this node's FSM retains, a page at
// a time, in a stable order.
const (
	// PathRequests lists requests by id: ?after=ID&limit=N.
	PathRequests = "/v1/cluster/requests"
	// PathPresignatures lists presignatures by key and seq:
	// ?after_key=KEY&after_seq=N&limit=N.
	PathPresignatures = "/v1/cluster/presignatures"
	// PathLog lists the committed raft log by index: ?after=N&limit=N.
	PathLog = "/v1/cluster/log"
	// maxListing is a listing page's default and largest size: about 300
	// bytes a request keeps a page well inside maxAdminAnswer.
	maxListing = 1000
)

// RequestPage is a page of GET /v1/cluster/requests. Next is the after
// to ask for the next page with, empty on the last one.
type RequestPage struct {
	Requests []RequestListing `json:"requests"`
	Next     string           `json:"next,omitempty"`
}

// PresignatureListing is the cluster's record of one presignature. It
// holds no secret: the sealed share is left out.
type PresignatureListing struct {
	KeyID  string `json:"key_id"`
	ID     string `json:"id"`
	Seq    uint64 `json:"seq"`
	Origin string `json:"origin"`
	// Status is available, reserved, used or burned.
	Status    string `json:"status"`
	RequestID string `json:"request_id,omitempty"`
}

// PresignaturePage is a page of GET /v1/cluster/presignatures. When More
// is set, the next page is asked for after the last entry's key and seq.
type PresignaturePage struct {
	Presignatures []PresignatureListing `json:"presignatures"`
	More          bool                  `json:"more,omitempty"`
}

// listingLimit reads ?limit, 1 to maxListing, maxListing when absent.
func listingLimit(r *http.Request) (int, error) {
	s := r.URL.Query().Get("limit")
	if s == "" {
		return maxListing, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > maxListing {
		return 0, fmt.Errorf("limit %q: want 1 to %d", s, maxListing)
	}
	return n, nil
}

func (a *adminServer) requests(w http.ResponseWriter, r *http.Request) {
	limit, err := listingLimit(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, err.Error())
		return
	}
	all := a.n.cluster.FSM().Requests()
	after := r.URL.Query().Get("after")
	i, found := sort.Find(len(all), func(i int) int { return strings.Compare(after, all[i].ID) })
	if found {
		i++
	}
	page := RequestPage{Requests: []RequestListing{}}
	for _, info := range all[i:min(len(all), i+limit)] {
		page.Requests = append(page.Requests, requestListing(info))
	}
	if i+limit < len(all) {
		page.Next = page.Requests[len(page.Requests)-1].ID
	}
	writeJSON(w, http.StatusOK, page)
}

func (a *adminServer) presignatures(w http.ResponseWriter, r *http.Request) {
	limit, err := listingLimit(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, err.Error())
		return
	}
	q := r.URL.Query()
	afterKey := q.Get("after_key")
	var afterSeq uint64
	if s := q.Get("after_seq"); s != "" {
		if afterSeq, err = strconv.ParseUint(s, 10, 64); err != nil {
			writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("after_seq %q is not a number", s))
			return
		}
	}
	all := a.n.cluster.FSM().Presignatures()
	// all is sorted by key, then seq: skip to the first entry past the
	// cursor.
	i := sort.Search(len(all), func(i int) bool {
		return all[i].KeyID > afterKey || (all[i].KeyID == afterKey && all[i].Seq > afterSeq)
	})
	page := PresignaturePage{Presignatures: []PresignatureListing{}, More: i+limit < len(all)}
	for _, p := range all[i:min(len(all), i+limit)] {
		page.Presignatures = append(page.Presignatures, PresignatureListing{KeyID: p.KeyID, ID: p.ID, Seq: p.Seq,
			Origin: p.Origin, Status: p.Status.String(), RequestID: p.RequestID})
	}
	writeJSON(w, http.StatusOK, page)
}

// LogPage is a page of GET /v1/cluster/log: the committed entries this
// node's FSM has applied, by index, without any secret (see
// cluster.LogEntry). First is the lowest index the node's log still holds;
// entries below it were compacted into a snapshot. When More is set, the
// next page is asked for after the last entry's index.
type LogPage struct {
	First   uint64             `json:"first"`
	Entries []cluster.LogEntry `json:"entries"`
	More    bool               `json:"more,omitempty"`
}

func (a *adminServer) log(w http.ResponseWriter, r *http.Request) {
	limit, err := listingLimit(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, codeBadRequest, err.Error())
		return
	}
	var after uint64
	if s := r.URL.Query().Get("after"); s != "" {
		if after, err = strconv.ParseUint(s, 10, 64); err != nil {
			writeError(w, http.StatusBadRequest, codeBadRequest, fmt.Sprintf("after %q is not a number", s))
			return
		}
	}
	entries, first, more, err := a.n.cluster.LogEntries(after, limit)
	if err != nil {
		writeError(w, http.StatusInternalServerError, codeFailed, "read the raft log")
		a.n.log.Error("read the raft log", "err", err)
		return
	}
	writeJSON(w, http.StatusOK, LogPage{First: first, Entries: entries, More: more})
}
