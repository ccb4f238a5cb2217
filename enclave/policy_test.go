package enclave_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/coterie-mpc/coterie/enclave"
)

func TestKindNames(t *testing.T) {
	for _, tc := range []struct {
		kind enclave.Kind
		name string
	}{
		{enclave.KindSim, "sim"},
		{enclave.KindSGX, "sgx"},
		{enclave.KindNitro, "nitro"},
		{enclave.KindConfidentialSpace, "confidential-space"},
	} {
		if got := tc.kind.String(); got != tc.name {
			t.Errorf("%d.String() = %q, want %q", tc.kind, got, tc.name)
		}
		got, err := enclave.ParseKind(tc.name)
		if err != nil || got != tc.kind {
			t.Errorf("ParseKind(%q) = %v, %v", tc.name, got, err)
		}
	}
	for _, bad := range []string{"", "unknown", "SGX", "tdx"} {
		if _, err := enclave.ParseKind(bad); !errors.Is(err, enclave.ErrUnknownKind) {
			t.Errorf("ParseKind(%q) error = %v, want ErrUnknownKind", bad, err)
		}
	}
	if s := enclave.Kind(200).String(); s != "kind(200)" {
		t.Errorf("Kind(200).String() = %q", s)
	}
}

func TestKeyPolicyNames(t *testing.T) {
	for _, p := range []enclave.KeyPolicy{enclave.KeyPolicyCode, enclave.KeyPolicyProduct} {
		got, err := enclave.ParseKeyPolicy(p.String())
		if err != nil || got != p {
			t.Errorf("ParseKeyPolicy(%q) = %v, %v", p, got, err)
		}
	}
	for _, bad := range []string{"", "unique", "key-policy(0)"} {
		if _, err := enclave.ParseKeyPolicy(bad); !errors.Is(err, enclave.ErrUnknownKeyPolicy) {
			t.Errorf("ParseKeyPolicy(%q) error = %v, want ErrUnknownKeyPolicy", bad, err)
		}
	}
}

// pcr returns a 48-byte PCR value filled with b.
func pcr(b byte) []byte { return bytes.Repeat([]byte{b}, enclave.NitroPCRSize) }

func TestPolicyValidate(t *testing.T) {
	m := []byte("measurement")
	digest := bytes.Repeat([]byte{7}, enclave.ImageDigestSize)
	for _, tc := range []struct {
		name     string
		policy   enclave.Policy
		problems []string // substrings, one per expected problem
	}{
		{"measurement rule", enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindSGX, Measurement: m}}}, nil},
		{"signer and product rule", enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindSim, Signer: m, Product: m}}}, nil},
		{"empty", enclave.Policy{}, []string{"no rules"}},
		{"unknown kind", enclave.Policy{Allow: []enclave.Rule{{Measurement: m}}}, []string{"unknown enclave kind"}},
		{"pins nothing", enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindSim}}}, []string{"pins neither"}},
		{"signer without product", enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindSim, Signer: m}}},
			[]string{"pins neither", "without a product"}},
		{"nitro PCR0 rule", enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindNitro, Measurement: pcr(1),
			PCRs: map[uint32][]byte{1: pcr(2), 2: pcr(3)}}}}, nil},
		{"nitro PCR8 rule", enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindNitro, Signer: pcr(1)}}}, nil},
		{"nitro pins nothing", enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindNitro, PCRs: map[uint32][]byte{1: pcr(1)}}}},
			[]string{"neither PCR0"}},
		{"nitro short PCR0", enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindNitro, Measurement: m}}}, []string{"want 48"}},
		{"nitro PCR0 in PCRs", enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindNitro, Measurement: pcr(1),
			PCRs: map[uint32][]byte{0: pcr(1), 8: pcr(1), 9: pcr(1), 2: m}}}},
			[]string{"PCR0 goes in the rule's measurement", "PCR8 goes in the rule's signer", "PCR9 is not one", "PCR2 has 11 bytes"}},
		{"nitro zero pins", enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindNitro, Measurement: make([]byte, 48), Signer: make([]byte, 48),
			PCRs: map[uint32][]byte{2: make([]byte, 48)}}}},
			[]string{"measurement (PCR0) is all zeros", "signer (PCR8) is all zeros", "PCR2 is all zeros"}},
		{"nitro allow_debug", enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindNitro, Measurement: pcr(1), AllowDebug: true}}},
			[]string{"allow_debug would admit any code"}},
		{"nitro product", enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindNitro, Measurement: pcr(1), Product: m}}},
			[]string{"no product"}},
		{"PCRs on sgx", enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindSGX, Measurement: m, PCRs: map[uint32][]byte{1: pcr(1)}}}},
			[]string{"PCRs are for nitro"}},
		{"confidential space digest", enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindConfidentialSpace, Measurement: digest}}}, nil},
		{"confidential space short digest", enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindConfidentialSpace, Measurement: m}}},
			[]string{"want 32"}},
		{"confidential space signer", enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindConfidentialSpace, Measurement: digest, Signer: m}}},
			[]string{"image digest only"}},
		{"confidential space issuer and models", enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindConfidentialSpace, Measurement: digest,
			Issuer: "https://attest.example/tenant", HardwareModels: []string{"GCP_INTEL_TDX"}}}}, nil},
		{"confidential space issuer not https", enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindConfidentialSpace, Measurement: digest,
			Issuer: "http://attest.example"}}}, []string{"not an https URL"}},
		{"confidential space issuer with a query", enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindConfidentialSpace, Measurement: digest,
			Issuer: "https://attest.example?x=1"}}}, []string{"a query"}},
		{"confidential space empty model", enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindConfidentialSpace, Measurement: digest,
			HardwareModels: []string{"GCP_AMD_SEV", ""}}}}, []string{"hardware model \"\""}},
		{"issuer on nitro", enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindNitro, Measurement: pcr(1), Issuer: "https://attest.example"}}},
			[]string{"for confidential-space rules, not nitro"}},
		{"hardware models on sgx", enclave.Policy{Allow: []enclave.Rule{{Kind: enclave.KindSGX, Measurement: m, HardwareModels: []string{"GCP_AMD_SEV"}}}},
			[]string{"for confidential-space rules, not sgx"}},
		{"all at once", enclave.Policy{Allow: []enclave.Rule{{Measurement: m}, {Kind: enclave.KindSGX, Signer: m}}},
			[]string{"rule 0: unknown enclave kind", "rule 1: pins neither", "rule 1: a signer without"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.Validate()
			if len(tc.problems) == 0 {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, enclave.ErrInvalidPolicy) {
				t.Fatalf("Validate() = %v, want ErrInvalidPolicy", err)
			}
			if got := strings.Count(err.Error(), "invalid attestation policy"); got != len(tc.problems) {
				t.Errorf("Validate() reported %d problems, want %d: %v", got, len(tc.problems), err)
			}
			for _, p := range tc.problems {
				if !strings.Contains(err.Error(), p) {
					t.Errorf("Validate() = %v, missing %q", err, p)
				}
			}
		})
	}
}

func TestPolicyCheck(t *testing.T) {
	id := enclave.Identity{
		Kind:            enclave.KindSGX,
		Measurement:     []byte("m1"),
		Signer:          []byte("s1"),
		Product:         []byte("p1"),
		SecurityVersion: 3,
	}
	debug := id
	debug.Debug = true
	for _, tc := range []struct {
		name    string
		rule    enclave.Rule
		id      enclave.Identity
		allowed bool
	}{
		{"measurement", enclave.Rule{Kind: enclave.KindSGX, Measurement: []byte("m1")}, id, true},
		{"other measurement", enclave.Rule{Kind: enclave.KindSGX, Measurement: []byte("m2")}, id, false},
		{"other kind", enclave.Rule{Kind: enclave.KindSim, Measurement: []byte("m1")}, id, false},
		{"signer and product", enclave.Rule{Kind: enclave.KindSGX, Signer: []byte("s1"), Product: []byte("p1")}, id, true},
		{"other product", enclave.Rule{Kind: enclave.KindSGX, Signer: []byte("s1"), Product: []byte("p2")}, id, false},
		{"other signer", enclave.Rule{Kind: enclave.KindSGX, Signer: []byte("s2"), Product: []byte("p1")}, id, false},
		{"version ok", enclave.Rule{Kind: enclave.KindSGX, Measurement: []byte("m1"), MinSecurityVersion: 3}, id, true},
		{"version too old", enclave.Rule{Kind: enclave.KindSGX, Measurement: []byte("m1"), MinSecurityVersion: 4}, id, false},
		{"debug refused", enclave.Rule{Kind: enclave.KindSGX, Measurement: []byte("m1")}, debug, false},
		{"debug allowed", enclave.Rule{Kind: enclave.KindSGX, Measurement: []byte("m1"), AllowDebug: true}, debug, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := enclave.Policy{Allow: []enclave.Rule{tc.rule}}.Check(tc.id)
			if tc.allowed && err != nil {
				t.Fatalf("Check = %v, want allowed", err)
			}
			if !tc.allowed && !errors.Is(err, enclave.ErrNotAllowed) {
				t.Fatalf("Check = %v, want ErrNotAllowed", err)
			}
		})
	}
	nitro := enclave.Identity{Kind: enclave.KindNitro, Measurement: pcr(1), Signer: pcr(8),
		PCRs: map[uint32][]byte{1: pcr(2), 2: pcr(3)}}
	for _, tc := range []struct {
		name    string
		rule    enclave.Rule
		allowed bool
	}{
		{"nitro PCR0", enclave.Rule{Kind: enclave.KindNitro, Measurement: pcr(1)}, true},
		{"nitro PCR0 and PCR2", enclave.Rule{Kind: enclave.KindNitro, Measurement: pcr(1), PCRs: map[uint32][]byte{2: pcr(3)}}, true},
		{"nitro other PCR2", enclave.Rule{Kind: enclave.KindNitro, Measurement: pcr(1), PCRs: map[uint32][]byte{2: pcr(4)}}, false},
		{"nitro PCR3 absent", enclave.Rule{Kind: enclave.KindNitro, Measurement: pcr(1), PCRs: map[uint32][]byte{3: pcr(3)}}, false},
		{"nitro PCR8", enclave.Rule{Kind: enclave.KindNitro, Signer: pcr(8)}, true},
		{"nitro other PCR8", enclave.Rule{Kind: enclave.KindNitro, Signer: pcr(9)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := enclave.Policy{Allow: []enclave.Rule{tc.rule}}.Check(nitro)
			if tc.allowed != (err == nil) || (err != nil && !errors.Is(err, enclave.ErrNotAllowed)) {
				t.Fatalf("Check = %v, want allowed %t", err, tc.allowed)
			}
		})
	}
	// Any matching rule admits.
	p := enclave.Policy{Allow: []enclave.Rule{
		{Kind: enclave.KindSGX, Measurement: []byte("m2")},
		{Kind: enclave.KindSGX, Measurement: []byte("m1")},
	}}
	if err := p.Check(id); err != nil {
		t.Fatalf("Check with a matching second rule = %v", err)
	}
	if err := (enclave.Policy{}).Check(id); !errors.Is(err, enclave.ErrInvalidPolicy) {
		t.Fatalf("Check with an empty policy = %v, want ErrInvalidPolicy", err)
	}
}
