package cluster

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/enclave/keyring"
	"github.com/coterie-mpc/coterie/protocol"
)

// Errors of the join handshake.
var (
	// ErrMalformedJoinToken is returned by ParseJoinToken (and Join) for a
	// token that is not one Coterie issued.
	ErrMalformedJoinToken = errors.New("cluster: malformed join token")
	// ErrJoinTokenExpired is returned by Join for a token whose expiry has
	// passed, before anything is sent.
	ErrJoinTokenExpired = errors.New("cluster: join token expired")
	// ErrMemberNotAttested is returned by Join when the member's evidence
	// does not verify, is not allowed by the joiner's policy, or does not
	// cover the member's key and this join: the joiner takes no keyring
	// from it.
	ErrMemberNotAttested = errors.New("cluster: the member's attestation is not acceptable")
	// ErrNotServingJoins is returned by ServeJoin on a node that has no
	// keyring or enclave to serve joins with.
	ErrNotServingJoins = errors.New("cluster: this node does not serve joins")
	// ErrKeyringBehind is returned by ServeJoin when this member's keyring
	// lacks a version the cluster rotated in (it has not taken its copy in
	// yet, or could not): the keyring it would hand over would miss it. The
	// join changed nothing; it may be run again, through this member or
	// another.
	ErrKeyringBehind = errors.New("cluster: this member has not taken in the cluster's latest keyring version")
)

const (
	joinTokenPrefix = "coterie-join-v1."
	// DefaultJoinTokenTTL is how long a join token lives by default.
	DefaultJoinTokenTTL = time.Hour
	// MaxJoinTokenTTL bounds a join token's life.
	MaxJoinTokenTTL = 7 * 24 * time.Hour
	joinLabel       = "coterie/join/v1"
)

// JoinTicket is what a join token tells the joiner: the cluster, a member's
// address and a pin of its identity key, and the token's id, secret and
// expiry.
type JoinTicket struct {
	ClusterID string
	Address   string
	MemberPin [32]byte
	TokenID   string
	Secret    []byte
	ExpiresAt time.Time
}

// String encodes the ticket as a join token. The token holds a secret:
// hand it over like a password.
func (t JoinTicket) String() string {
	b, _ := proto.Marshal(&protocol.ClusterJoinTicket{
		ClusterId: t.ClusterID, Address: t.Address, MemberPin: t.MemberPin[:], TokenId: t.TokenID,
		Secret: t.Secret, ExpiresAtUnixNano: t.ExpiresAt.UnixNano(),
	})
	return joinTokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

// ParseJoinToken decodes a join token. Errors wrap ErrMalformedJoinToken
// and never echo the token.
func ParseJoinToken(s string) (JoinTicket, error) {
	s = strings.TrimSpace(s)
	rest, ok := strings.CutPrefix(s, joinTokenPrefix)
	if !ok {
		return JoinTicket{}, fmt.Errorf("%w: it does not start with %q", ErrMalformedJoinToken, joinTokenPrefix)
	}
	b, err := base64.RawURLEncoding.DecodeString(rest)
	if err != nil || len(b) > 4096 {
		return JoinTicket{}, fmt.Errorf("%w: not base64url of a ticket", ErrMalformedJoinToken)
	}
	var p protocol.ClusterJoinTicket
	if err := proto.Unmarshal(b, &p); err != nil {
		return JoinTicket{}, fmt.Errorf("%w: not a ticket", ErrMalformedJoinToken)
	}
	if p.GetClusterId() == "" || p.GetAddress() == "" || len(p.GetMemberPin()) != 32 || p.GetTokenId() == "" || len(p.GetSecret()) != 32 {
		return JoinTicket{}, fmt.Errorf("%w: a field is missing", ErrMalformedJoinToken)
	}
	t := JoinTicket{ClusterID: p.GetClusterId(), Address: p.GetAddress(), TokenID: p.GetTokenId(),
		Secret: p.GetSecret(), ExpiresAt: unixNano(p.GetExpiresAtUnixNano())}
	copy(t.MemberPin[:], p.GetMemberPin())
	return t, nil
}

// IssueJoinToken mints a one-time join token that expires after ttl (0
// means DefaultJoinTokenTTL): it records the token's id and the hash of its
// secret through raft, and returns the token, which names this node as the
// member to join through. The cluster must be initialized.
func (c *Cluster) IssueJoinToken(ctx context.Context, ttl time.Duration) (JoinTicket, error) {
	if ttl == 0 {
		ttl = DefaultJoinTokenTTL
	}
	if ttl < 0 || ttl > MaxJoinTokenTTL {
		return JoinTicket{}, errorf(ErrBadToken, "lifetime %v is not in (0, %v]", ttl, MaxJoinTokenTTL)
	}
	cid := c.fsm.ClusterID()
	if cid == "" {
		return JoinTicket{}, errorf(ErrNotInitialized, "no cluster to join yet")
	}
	if c.cfg.Identity == nil {
		return JoinTicket{}, ErrNotServingJoins
	}
	var raw [8 + 32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return JoinTicket{}, fmt.Errorf("cluster: join token: %w", err)
	}
	t := JoinTicket{
		ClusterID: cid, Address: c.Addr(), MemberPin: IdentityPin(c.identityKey()),
		TokenID: "jt-" + hex.EncodeToString(raw[:8]), Secret: slices.Clone(raw[8:]),
		ExpiresAt: c.cfg.Clock.Now().Add(ttl),
	}
	clear(raw[:])
	h := sha256.Sum256(t.Secret)
	if _, err := c.Propose(ctx, JoinTokenIssuedCommand(t.TokenID, h[:], t.ExpiresAt)); err != nil {
		return JoinTicket{}, err
	}
	return t, nil
}

// identityKey returns this node's identity public key.
func (c *Cluster) identityKey() ed25519.PublicKey {
	return c.cfg.Identity.Public().(ed25519.PublicKey)
}

// memberReportData is what a member's evidence binds in a join: the pin of
// its identity key (the joiner knows it from the token) and the joiner's
// transfer request, which is fresh for each attempt.
func memberReportData(pin [32]byte, transfer []byte) []byte {
	h := sha512.New()
	h.Write([]byte(joinLabel + "/member\x00"))
	h.Write(pin[:])
	t := sha256.Sum256(transfer)
	h.Write(t[:])
	return h.Sum(nil)
}

// ServeJoin implements JoinServer: it answers one join request from the TLS
// peer whose identity key is peer. It checks the token (live, its secret,
// and unused or used by this same key), and the joiner's evidence against
// the cluster's policy and the peer's key, and answers with this member's
// own evidence. Only a request with commit set goes on: it records the
// joiner in the member table through raft, which spends the token; has the
// leader add it as a non-voter (node run promotes it once it caught up);
// and answers with the keyring wrapped to the joiner and the member table
// too. A join that fails after the member table recorded the joiner can be
// run again with the same token by the same node.
func (c *Cluster) ServeJoin(ctx context.Context, peer ed25519.PublicKey, body []byte) ([]byte, error) {
	if c.cfg.Keyring == nil || c.cfg.Attester == nil || c.cfg.Identity == nil {
		return nil, ErrNotServingJoins
	}
	var req protocol.ClusterJoinRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		return nil, errorf(ErrBadCommand, "not a join request")
	}
	cid := c.fsm.ClusterID()
	policy, ok := c.fsm.Policy()
	if !ok {
		return nil, errorf(ErrNotInitialized, "no cluster to join yet")
	}
	tok, ok := c.fsm.JoinToken(req.GetTokenId(), c.cfg.Clock.Now())
	h := sha256.Sum256(req.GetTokenSecret())
	switch {
	case !ok:
		return nil, errorf(ErrBadToken, "the join token is unknown or expired")
	case subtle.ConstantTimeCompare(h[:], tok.SecretHash) != 1:
		return nil, errorf(ErrBadToken, "the join token's secret is wrong")
	case tok.UsedBy != nil && !bytes.Equal(tok.UsedBy, peer):
		return nil, errorf(ErrBadToken, "the join token was used by another node")
	}
	kr := c.cfg.Keyring
	held := kr.Versions()
	wrapped, id, err := kr.Wrap(ctx, c.cfg.Attester, policy, req.GetTransfer(), peer)
	if err != nil {
		return nil, fmt.Errorf("cluster: the joiner's attestation: %w", err)
	}
	evidence, err := c.cfg.Attester.Evidence(ctx, memberReportData(IdentityPin(c.identityKey()), req.GetTransfer()))
	if err != nil {
		return nil, fmt.Errorf("cluster: this member's evidence: %w", err)
	}
	if !req.GetCommit() {
		// The first round changes nothing: the joiner checks this
		// member's evidence before it asks to be admitted.
		return proto.Marshal(&protocol.ClusterJoinResponse{ClusterId: cid, MemberEvidence: evidence})
	}
	// Refuse before anything is recorded when this member lacks a version:
	// the joiner is told at once, and nothing needs undoing.
	if err := c.awaitKeyringCurrent(ctx); err != nil {
		return nil, err
	}
	id.ReportData = nil
	m := Member{ID: req.GetNodeId(), Address: req.GetAddress(), IdentityKey: peer, Enclave: id,
		Location: req.GetLocation(), JoinedWith: req.GetTokenId()}
	index, err := c.Propose(ctx, MemberAddedCommand(m))
	if err != nil {
		return nil, err
	}
	if err := c.addServer(ctx, m.ID, m.Address, false); err != nil {
		return nil, err
	}
	// A rotation that committed before the entry that admitted the joiner
	// was wrapped to the member table without it: the joiner gets that
	// version only in the keyring sent now. So the keyring must hold every
	// version the replica knows of once it applied that entry (later
	// rotations carry a copy for the joiner), and the keyring is wrapped
	// again if it gained one since the wrap above.
	if err := c.fsm.WaitApplied(ctx, index); err != nil {
		return nil, err
	}
	if err := c.awaitKeyringCurrent(ctx); err != nil {
		return nil, err
	}
	if !slices.Equal(held, kr.Versions()) {
		if wrapped, _, err = kr.Wrap(ctx, c.cfg.Attester, policy, req.GetTransfer(), peer); err != nil {
			return nil, fmt.Errorf("cluster: the joiner's attestation: %w", err)
		}
	}
	c.log.Info("node joined", "member", m.ID, "addr", m.Address, "location", m.Location, "enclave", id.String())
	resp := &protocol.ClusterJoinResponse{ClusterId: cid, MemberEvidence: evidence, WrappedKeyring: wrapped}
	for _, mm := range c.fsm.Members() {
		resp.Members = append(resp.Members, mm.proto())
	}
	return proto.Marshal(resp)
}

// keyringWait bounds how long ServeJoin waits for this member to take in
// a version its replica has applied: the copy is opened on raft's apply
// goroutine right after the entry, so a member that has not done so
// within this bound failed to (the log says why).
const keyringWait = 2 * time.Second

// awaitKeyringCurrent waits, at most keyringWait, until the keyring this
// member wraps to joiners holds every version from the first to the
// cluster's, as the replica knows it; else ErrKeyringBehind. The waits
// are for raft's apply goroutine, which runs on real time.
func (c *Cluster) awaitKeyringCurrent(ctx context.Context) error {
	deadline := time.Now().Add(keyringWait)
	for {
		want := c.fsm.keyringVersion()
		missing := uint32(0)
		for v := uint32(firstKeyringVersion); v <= want && missing == 0; v++ {
			if !c.cfg.Keyring.Holds(v) {
				missing = v
			}
		}
		if missing == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%w: it lacks version %d of the cluster's %d; run the join again in a moment, or with a token from another member",
				ErrKeyringBehind, missing, want)
		}
		t := time.NewTimer(retryMax)
		select {
		case <-ctx.Done():
			t.Stop()
			return context.Cause(ctx)
		case <-t.C:
		}
	}
}

// JoinParams is what a node needs to join a cluster.
type JoinParams struct {
	// Token is the join token an operator minted on a member.
	Token string
	// NodeID, Address and Location describe the joiner; Address is its
	// cluster address, which other members dial.
	NodeID, Address, Location string
	// Identity is the joiner's identity key (its TLS key, recorded in the
	// member table).
	Identity ed25519.PrivateKey
	// Attester is the joiner's enclave: it makes the joiner's evidence and
	// verifies the member's.
	Attester enclave.Attester
	// Policy is what the joiner accepts the member's enclave as: a keyring
	// is taken only from an attested member it allows.
	Policy enclave.Policy
	// Network dials the member; nil means plain TCP.
	Network Network
	// UnverifiableKinds are the kinds of member this joiner joins through
	// without checking their evidence, because its build cannot (SGX
	// quotes need the host's DCAP collateral, which a Nitro or Confidential
	// Space node lacks). The join token's pin of the member's identity key
	// is then all it checks, so whoever hands it the token chooses the
	// cluster it joins; it brings no secret of its own there. The cluster
	// still checks the joiner's evidence before it hands over its keyring.
	UnverifiableKinds []enclave.Kind
	// MaxBytes bounds the member's answer; 0 means DefaultConfig's
	// MaxCommandBytes.
	MaxBytes int
	// Clock tells whether the token expired; nil means real time.
	Now func() time.Time
}

// JoinResult is what a successful join gives the joiner.
type JoinResult struct {
	ClusterID string
	// Keyring is the cluster keyring, to seal with the joiner's enclave.
	Keyring *keyring.Keyring
	// Members is the member table, the joiner included.
	Members []Member
	// Member is the admitting member's verified enclave identity.
	Member enclave.Identity
}

// Join runs the join handshake with the member a token names: over TLS 1.3
// with the joiner's identity key, accepting only the member the token pins.
// It sends evidence over a fresh transfer key and its identity key, checks
// the member's evidence against p.Policy, and unwraps the keyring. It
// changes nothing on the joiner's side: the caller seals the keyring.
func Join(ctx context.Context, p JoinParams) (JoinResult, error) {
	t, err := ParseJoinToken(p.Token)
	if err != nil {
		return JoinResult{}, err
	}
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	if !t.ExpiresAt.After(now()) {
		return JoinResult{}, fmt.Errorf("%w at %s", ErrJoinTokenExpired, t.ExpiresAt.UTC().Format(time.RFC3339))
	}
	max := p.MaxBytes
	if max == 0 {
		max = DefaultConfig().MaxCommandBytes
	}
	pub := p.Identity.Public().(ed25519.PublicKey)
	recv, err := keyring.NewReceiver(ctx, p.Attester, pub)
	if err != nil {
		return JoinResult{}, err
	}
	exchange := func(commit bool) (*protocol.ClusterJoinResponse, enclave.Identity, error) {
		req, err := proto.Marshal(&protocol.ClusterJoinRequest{
			TokenId: t.TokenID, TokenSecret: t.Secret, NodeId: p.NodeID, Address: p.Address, Location: p.Location,
			Transfer: recv.Request(), Commit: commit,
		})
		if err != nil {
			return nil, enclave.Identity{}, fmt.Errorf("cluster: encode join request: %w", err)
		}
		b, err := DialJoin(ctx, p.Network, t.Address, p.Identity, t.MemberPin, req, max)
		if err != nil {
			return nil, enclave.Identity{}, err
		}
		var resp protocol.ClusterJoinResponse
		if err := proto.Unmarshal(b, &resp); err != nil {
			return nil, enclave.Identity{}, fmt.Errorf("%w: the member's answer does not decode", ErrJoinRefused)
		}
		if resp.GetClusterId() != t.ClusterID {
			return nil, enclave.Identity{}, fmt.Errorf("%w: the member is in cluster %q, the token names %q", ErrMemberNotAttested, resp.GetClusterId(), t.ClusterID)
		}
		id, err := p.Attester.Verify(ctx, resp.GetMemberEvidence(), p.Policy)
		if errors.Is(err, enclave.ErrUnsupportedKind) {
			if kind, _, perr := enclave.ParseEvidence(resp.GetMemberEvidence()); perr == nil && slices.Contains(p.UnverifiableKinds, kind) {
				return &resp, enclave.Identity{Kind: kind}, nil
			}
		}
		if err != nil {
			return nil, enclave.Identity{}, fmt.Errorf("%w: %w", ErrMemberNotAttested, err)
		}
		if !bytes.Equal(id.ReportData, memberReportData(t.MemberPin, recv.Request())) {
			return nil, enclave.Identity{}, fmt.Errorf("%w: its evidence does not cover its key and this join", ErrMemberNotAttested)
		}
		return &resp, id, nil
	}
	// First a dry run, which changes nothing on the member: the member
	// checks the token and this node's evidence, this node checks the
	// member's. Only then is this node admitted.
	if _, _, err := exchange(false); err != nil {
		return JoinResult{}, err
	}
	resp, id, err := exchange(true)
	if err != nil {
		return JoinResult{}, err
	}
	kr, err := recv.Unwrap(resp.GetWrappedKeyring())
	if err != nil {
		return JoinResult{}, err
	}
	out := JoinResult{ClusterID: t.ClusterID, Keyring: kr, Member: id}
	for _, m := range resp.GetMembers() {
		if err := validateMember(m, false); err != nil {
			return JoinResult{}, fmt.Errorf("%w: the member table it sent: %w", ErrJoinRefused, err)
		}
		out.Members = append(out.Members, memberFromProto(m))
	}
	return out, nil
}

// KnownMembers is a member table as a node last saw it: from the member
// that admitted it, or from its own replica at raft index Index. A node
// keeps it sealed (Config.SaveMembers) and authenticates its peers by it
// after a restart until its replica has replayed past Index, since raft
// applies the log again only once a leader is known, and the leader must
// first be let in.
type KnownMembers struct {
	ClusterID string
	Index     uint64
	Members   []Member
}

// Known returns what a joiner knows of the member table after its join.
func (r JoinResult) Known() KnownMembers {
	return KnownMembers{ClusterID: r.ClusterID, Members: r.Members}
}

// Encode returns the encoding DecodeKnownMembers reads.
func (k KnownMembers) Encode() ([]byte, error) {
	st := &protocol.ClusterState{Version: StateVersion, ClusterId: k.ClusterID, AppliedIndex: k.Index}
	for _, m := range k.Members {
		st.Members = append(st.Members, m.proto())
	}
	return proto.Marshal(st)
}

// DecodeKnownMembers decodes what KnownMembers.Encode wrote.
func DecodeKnownMembers(b []byte) (KnownMembers, error) {
	var st protocol.ClusterState
	if err := proto.Unmarshal(b, &st); err != nil {
		return KnownMembers{}, errorf(ErrBadCommand, "member table record does not decode")
	}
	k := KnownMembers{ClusterID: st.GetClusterId(), Index: st.GetAppliedIndex()}
	for _, m := range st.GetMembers() {
		if err := validateMember(m, false); err != nil {
			return KnownMembers{}, err
		}
		k.Members = append(k.Members, memberFromProto(m))
	}
	return k, nil
}
