package cluster

import (
	"crypto/ed25519"
	"maps"
	"slices"
	"time"

	"github.com/coterie-mpc/coterie/enclave"
	"github.com/coterie-mpc/coterie/protocol"
)

// Member is a node of the cluster as the member table records it. Every
// field is public.
type Member struct {
	ID string
	// Address is the node's cluster (raft) address.
	Address string
	// IdentityKey is the node's Ed25519 identity public key, the key of its
	// TLS certificate.
	IdentityKey ed25519.PublicKey
	// Enclave is what the node's attestation evidence proved (its
	// ReportData is empty).
	Enclave enclave.Identity
	// Location is an operator's label, such as "cloud:azure-westeurope".
	Location string
	JoinedAt time.Time
	// JoinedWith is the id of the join token the node joined with; empty
	// for the node that bootstrapped the cluster.
	JoinedWith string
}

func (m Member) proto() *protocol.ClusterMember {
	return &protocol.ClusterMember{
		Id: m.ID, Address: m.Address, IdentityKey: slices.Clone(m.IdentityKey),
		Enclave: enclaveProto(m.Enclave), Location: m.Location, JoinedWith: m.JoinedWith,
	}
}

func memberFromProto(p *protocol.ClusterMember) Member {
	return Member{
		ID: p.GetId(), Address: p.GetAddress(), IdentityKey: slices.Clone(p.GetIdentityKey()),
		Enclave: enclaveFromProto(p.GetEnclave()), Location: p.GetLocation(),
		JoinedAt: unixNano(p.GetJoinedAtUnixNano()), JoinedWith: p.GetJoinedWith(),
	}
}

func enclaveProto(id enclave.Identity) *protocol.ClusterEnclaveIdentity {
	return &protocol.ClusterEnclaveIdentity{
		Kind: id.Kind.String(), Measurement: slices.Clone(id.Measurement), Signer: slices.Clone(id.Signer),
		Product: slices.Clone(id.Product), SecurityVersion: id.SecurityVersion, Debug: id.Debug,
	}
}

func enclaveFromProto(p *protocol.ClusterEnclaveIdentity) enclave.Identity {
	kind, _ := enclave.ParseKind(p.GetKind()) // validateMember checked it
	return enclave.Identity{
		Kind: kind, Measurement: slices.Clone(p.GetMeasurement()), Signer: slices.Clone(p.GetSigner()),
		Product: slices.Clone(p.GetProduct()), SecurityVersion: p.GetSecurityVersion(), Debug: p.GetDebug(),
	}
}

// PolicyProto returns the wire form of an attestation policy.
func PolicyProto(p enclave.Policy) *protocol.ClusterPolicy {
	out := &protocol.ClusterPolicy{}
	for _, r := range p.Allow {
		pr := &protocol.ClusterPolicyRule{
			Kind: r.Kind.String(), Measurement: slices.Clone(r.Measurement), Signer: slices.Clone(r.Signer),
			Product: slices.Clone(r.Product), MinSecurityVersion: r.MinSecurityVersion, AllowDebug: r.AllowDebug,
			Issuer: r.Issuer, HardwareModels: slices.Clone(r.HardwareModels),
		}
		for _, i := range slices.Sorted(maps.Keys(r.PCRs)) {
			pr.Pcrs = append(pr.Pcrs, &protocol.ClusterPCR{Index: i, Value: slices.Clone(r.PCRs[i])})
		}
		out.Allow = append(out.Allow, pr)
	}
	return out
}

// policyFromProto returns the attestation policy a wire form describes;
// validatePolicy checked it.
func policyFromProto(p *protocol.ClusterPolicy) enclave.Policy {
	var out enclave.Policy
	for _, r := range p.GetAllow() {
		kind, _ := enclave.ParseKind(r.GetKind())
		rule := enclave.Rule{
			Kind: kind, Measurement: slices.Clone(r.GetMeasurement()), Signer: slices.Clone(r.GetSigner()),
			Product: slices.Clone(r.GetProduct()), MinSecurityVersion: r.GetMinSecurityVersion(), AllowDebug: r.GetAllowDebug(),
			Issuer: r.GetIssuer(), HardwareModels: slices.Clone(r.GetHardwareModels()),
		}
		for _, pcr := range r.GetPcrs() {
			if rule.PCRs == nil {
				rule.PCRs = make(map[uint32][]byte)
			}
			rule.PCRs[pcr.GetIndex()] = slices.Clone(pcr.GetValue())
		}
		out.Allow = append(out.Allow, rule)
	}
	return out
}

// clonePCRs deep-copies a rule's PCRs.
func clonePCRs(pcrs []*protocol.ClusterPCR) []*protocol.ClusterPCR {
	var out []*protocol.ClusterPCR
	for _, p := range pcrs {
		out = append(out, &protocol.ClusterPCR{Index: p.GetIndex(), Value: slices.Clone(p.GetValue())})
	}
	return out
}

// JoinToken is a join token as the FSM keeps it until it expires. Only the
// hash of its secret is known to the cluster.
type JoinToken struct {
	ID         string
	SecretHash []byte
	ExpiresAt  time.Time
	IssuedBy   string
	// UsedBy is the identity key of the node that joined with it, nil
	// while unused.
	UsedBy ed25519.PublicKey
}
