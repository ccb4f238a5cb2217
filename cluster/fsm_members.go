package cluster

import (
	"bytes"
	"maps"
	"slices"

	"github.com/coterie-mpc/coterie/protocol"
)

// Limits of the member table, constants like the command limits.
const (
	// maxMembers bounds the member table.
	maxMembers = 64
	// maxJoinTokens bounds the live join tokens.
	maxJoinTokens = 256
)

// init starts the member table: the cluster's id, policy and first member,
// which must be the proposer. It applies once.
func (s *state) init(node string, at int64, c *protocol.ClusterInit) ([]Event, error) {
	if s.clusterID != "" {
		return nil, errorf(ErrMember, "cluster %q is initialized already", s.clusterID)
	}
	m := c.GetMember()
	if m.GetId() != node {
		return nil, errorf(ErrMember, "node %q cannot initialize the cluster as %q", node, m.GetId())
	}
	s.clusterID = c.GetClusterId()
	s.policy = clonePolicy(c.GetPolicy())
	s.members = map[string]*protocol.ClusterMember{}
	s.putMember(m, at)
	return []Event{{Kind: EventInitialized, Node: node}, {Kind: EventMemberAdded, Node: node}}, nil
}

// member returns the proposer's member record, or why it may not change
// the member table.
func (s *state) member(node string) (*protocol.ClusterMember, error) {
	if s.clusterID == "" {
		return nil, errorf(ErrNotInitialized, "no member table yet")
	}
	m, ok := s.members[node]
	if !ok {
		return nil, errorf(ErrMember, "node %q is not a member", node)
	}
	return m, nil
}

// addMember records a node that joined with a join token, proposed by a
// member. The token must be live and unused, or used by the same identity
// key (a retried join, which then updates the address and location).
func (s *state) addMember(node string, at int64, c *protocol.ClusterMemberAdded) ([]Event, error) {
	if _, err := s.member(node); err != nil {
		return nil, err
	}
	m := c.GetMember()
	s.purgeTokens(at)
	t, ok := s.tokens[m.GetJoinedWith()]
	switch {
	case !ok:
		return nil, errorf(ErrBadToken, "join token %q is unknown or expired", m.GetJoinedWith())
	case len(t.GetUsedBy()) > 0 && !bytes.Equal(t.GetUsedBy(), m.GetIdentityKey()):
		return nil, errorf(ErrBadToken, "join token %q was used by another node", t.GetId())
	}
	for _, o := range s.members {
		switch {
		case o.GetId() == m.GetId() && !bytes.Equal(o.GetIdentityKey(), m.GetIdentityKey()):
			return nil, errorf(ErrMember, "member %q exists with another identity key", o.GetId())
		case o.GetId() != m.GetId() && bytes.Equal(o.GetIdentityKey(), m.GetIdentityKey()):
			return nil, errorf(ErrMember, "identity key belongs to member %q", o.GetId())
		case o.GetId() != m.GetId() && o.GetAddress() == m.GetAddress():
			return nil, errorf(ErrMember, "address %q belongs to member %q", m.GetAddress(), o.GetId())
		}
	}
	if _, exists := s.members[m.GetId()]; !exists && len(s.members) >= maxMembers {
		return nil, errorf(ErrMember, "the member table holds %d members, the most it may", maxMembers)
	}
	t.UsedBy = slices.Clone(m.GetIdentityKey())
	s.putMember(m, at)
	return []Event{{Kind: EventMemberAdded, Node: m.GetId()}}, nil
}

// putMember adds or replaces a member; a replaced member keeps the time it
// first joined.
func (s *state) putMember(m *protocol.ClusterMember, at int64) {
	out := &protocol.ClusterMember{
		Id: m.GetId(), Address: m.GetAddress(), IdentityKey: slices.Clone(m.GetIdentityKey()),
		Enclave: cloneEnclave(m.GetEnclave()), Location: m.GetLocation(), JoinedAtUnixNano: at, JoinedWith: m.GetJoinedWith(),
	}
	if old, ok := s.members[m.GetId()]; ok {
		out.JoinedAtUnixNano = old.GetJoinedAtUnixNano()
	}
	s.members[m.GetId()] = out
}

// removeMember removes a member, proposed by a member. The last member
// cannot be removed. The join tokens the member used are revoked with it:
// addMember takes a token used by the same key as a retried join, so a
// removed node holding its old token could otherwise join again, and be
// handed the keyring, without any operator minting it a new token.
func (s *state) removeMember(node string, c *protocol.ClusterMemberRemoved) ([]Event, error) {
	if _, err := s.member(node); err != nil {
		return nil, err
	}
	gone, ok := s.members[c.GetId()]
	if !ok {
		return nil, errorf(ErrMember, "node %q is not a member", c.GetId())
	}
	if len(s.members) == 1 {
		return nil, errorf(ErrMember, "node %q is the last member", c.GetId())
	}
	delete(s.members, c.GetId())
	maps.DeleteFunc(s.tokens, func(_ string, t *protocol.ClusterJoinToken) bool {
		return len(t.GetUsedBy()) > 0 && bytes.Equal(t.GetUsedBy(), gone.GetIdentityKey())
	})
	s.forgetKeyringMember(c.GetId())
	return []Event{{Kind: EventMemberRemoved, Node: c.GetId()}}, nil
}

// setPolicy replaces the attestation policy, proposed by a member.
func (s *state) setPolicy(node string, c *protocol.ClusterPolicySet) ([]Event, error) {
	if _, err := s.member(node); err != nil {
		return nil, err
	}
	s.policy = clonePolicy(c.GetPolicy())
	return []Event{{Kind: EventPolicySet, Node: node}}, nil
}

// issueToken records a join token, proposed by a member.
func (s *state) issueToken(node string, at int64, c *protocol.ClusterJoinTokenIssued) ([]Event, error) {
	if _, err := s.member(node); err != nil {
		return nil, err
	}
	s.purgeTokens(at)
	switch {
	case c.GetExpiresAtUnixNano() <= at:
		return nil, errorf(ErrBadToken, "join token %q expires before it is issued", c.GetId())
	case s.tokens[c.GetId()] != nil:
		return nil, errorf(ErrBadToken, "join token %q exists", c.GetId())
	case len(s.tokens) >= maxJoinTokens:
		return nil, errorf(ErrBadToken, "%d join tokens are live, the most the cluster keeps", maxJoinTokens)
	}
	s.tokens[c.GetId()] = &protocol.ClusterJoinToken{
		Id: c.GetId(), SecretHash: slices.Clone(c.GetSecretHash()), ExpiresAtUnixNano: c.GetExpiresAtUnixNano(), IssuedBy: node,
	}
	return []Event{{Kind: EventJoinTokenIssued, Node: node}}, nil
}

// purgeTokens forgets the join tokens that expired before at. It runs on
// the commands that read or add tokens, with their proposer's time, so
// every replica forgets the same tokens at the same entry.
func (s *state) purgeTokens(at int64) {
	for _, id := range slices.Sorted(maps.Keys(s.tokens)) {
		if s.tokens[id].GetExpiresAtUnixNano() <= at {
			delete(s.tokens, id)
		}
	}
}

func clonePolicy(p *protocol.ClusterPolicy) *protocol.ClusterPolicy {
	out := &protocol.ClusterPolicy{}
	for _, r := range p.GetAllow() {
		out.Allow = append(out.Allow, &protocol.ClusterPolicyRule{
			Kind: r.GetKind(), Measurement: slices.Clone(r.GetMeasurement()), Signer: slices.Clone(r.GetSigner()),
			Product: slices.Clone(r.GetProduct()), MinSecurityVersion: r.GetMinSecurityVersion(), AllowDebug: r.GetAllowDebug(),
			Pcrs: clonePCRs(r.GetPcrs()), Issuer: r.GetIssuer(), HardwareModels: slices.Clone(r.GetHardwareModels()),
		})
	}
	return out
}

func cloneEnclave(e *protocol.ClusterEnclaveIdentity) *protocol.ClusterEnclaveIdentity {
	return &protocol.ClusterEnclaveIdentity{
		Kind: e.GetKind(), Measurement: slices.Clone(e.GetMeasurement()), Signer: slices.Clone(e.GetSigner()),
		Product: slices.Clone(e.GetProduct()), SecurityVersion: e.GetSecurityVersion(), Debug: e.GetDebug(),
	}
}
