package check_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/coterie-mpc/coterie/bench/check"
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
)

// testKey is a signing key whose private side the test holds, so that it
// can make the signatures the cluster would.
type testKey struct {
	priv  *secp256k1.PrivateKey
	chain []byte
}

func newTestKey() testKey {
	seed := sha256.Sum256([]byte("bench/check test key"))
	chain := sha256.Sum256([]byte("bench/check test chain code"))
	return testKey{priv: secp256k1.PrivKeyFromBytes(seed[:]), chain: chain[:]}
}

func (k testKey) public() check.SigningKey {
	return check.SigningKey{PublicKey: k.priv.PubKey().SerializeCompressed(), ChainCode: k.chain}
}

// sign signs digest with the private key at path, derived here by BIP-32
// CKDpriv (unhardened), independently of the library's CKDpub.
func (k testKey) sign(t *testing.T, digest []byte, path []uint32) []byte {
	t.Helper()
	var key secp256k1.ModNScalar
	key.Set(&k.priv.Key)
	chain := k.chain
	for _, i := range path {
		pub := secp256k1.NewPrivateKey(&key).PubKey().SerializeCompressed()
		mac := hmac.New(sha512.New, chain)
		mac.Write(pub)
		mac.Write(binary.BigEndian.AppendUint32(nil, i))
		sum := mac.Sum(nil)
		var il secp256k1.ModNScalar
		if il.SetByteSlice(sum[:32]) {
			t.Fatalf("index %d overflows", i)
		}
		key.Add(&il)
		chain = sum[32:]
	}
	sig := ecdsa.Sign(secp256k1.NewPrivateKey(&key), digest)
	r, s := sig.R(), sig.S()
	rb, sb := r.Bytes(), s.Bytes()
	return append(rb[:], sb[:]...)
}

func digest(s string) []byte {
	d := sha256.Sum256([]byte(s))
	return d[:]
}

// clean returns the records of a run that broke nothing: a signed
// two-digest transaction, an approved config change, a rejected and a
// failed transaction, seen by two nodes, with a handler that approved what
// was signed or approved.
func clean(t *testing.T) check.Records {
	k := newTestKey()
	d0, d1 := check.Digest{Digest: digest("tx-1 input 0"), Path: []uint32{0}}, check.Digest{Digest: digest("tx-1 input 1"), Path: []uint32{44, 7}}
	fsm := func(id string) check.Node {
		return check.Node{ID: id,
			Requests: []check.NodeRequest{
				{ID: "r1", Status: check.StatusCompleted, Attempt: 1, Reserved: []string{"p1", "p2"}, Outcome: "signed"},
				{ID: "r2", Status: check.StatusCompleted, Attempt: 1, Outcome: "approved"},
				{ID: "r3", Status: check.StatusCompleted, Attempt: 1, Outcome: "rejected"},
				{ID: "r4", Status: check.StatusCompleted, Attempt: 2, Outcome: "failed"},
			},
			Presignatures: []check.NodePresignature{
				{KeyID: "k", ID: "p1", Status: "used", RequestID: "r1"},
				{KeyID: "k", ID: "p2", Status: "used", RequestID: "r1"},
				{KeyID: "k", ID: "p3", Status: check.PresignatureAvailable},
			},
		}
	}
	return check.Records{
		Keys: map[string]check.SigningKey{"u": k.public()},
		Requests: []check.Request{
			{ID: "r1", UserID: "u", State: check.StateSigned, Digests: []check.Digest{d0, d1}, Signatures: []check.Signature{
				{Index: 0, Sig: k.sign(t, d0.Digest, d0.Path), PresignID: "p1"},
				{Index: 1, Sig: k.sign(t, d1.Digest, d1.Path), PresignID: "p2"},
			}},
			{ID: "r2", UserID: "u", State: check.StateApproved, Approved: true},
			{ID: "r3", UserID: "u", State: check.StateRejected, Reason: "policy", Digests: []check.Digest{d0}},
			{ID: "r4", UserID: "u", State: check.StateFailed, Reason: "retry budget spent", Digests: []check.Digest{d0}},
		},
		Ledger: []check.LedgerUse{{PresignID: "p1", RequestID: "r1"}, {PresignID: "p2", RequestID: "r1", DigestIndex: 1}},
		Nodes:  []check.Node{fsm("n1"), fsm("n2")},
		Callback: &check.CallbackLog{Decisions: []check.Decision{
			{RequestID: "r1", Action: "RETRY"}, {RequestID: "r1", Action: "APPROVE"}, {RequestID: "r2", Action: "APPROVE"},
			{RequestID: "r3", Action: "REJECT"}, {RequestID: "r4", Action: "RETRY"},
		}},
	}
}

func TestCheckClean(t *testing.T) {
	rep := check.Check(clean(t))
	if !rep.OK() {
		t.Fatalf("a clean run reported:\n%s", rep)
	}
	if rep.Requests != 4 || rep.Signatures != 2 || rep.LedgerUses != 2 || rep.Nodes != 2 || rep.Presignatures != 6 || !rep.CallbackRead {
		t.Errorf("counts: %+v", rep)
	}
}

// want is a violation a doctored run must report: its invariant, its
// request, and a phrase of its detail.
type want struct {
	inv     check.Invariant
	request string
	detail  string
}

func TestCheckDoctored(t *testing.T) {
	tests := []struct {
		name   string
		doctor func(t *testing.T, r *check.Records)
		want   []want
	}{{
		name: "presignature reused in the FSM",
		doctor: func(_ *testing.T, r *check.Records) {
			r.Nodes[1].Requests[2].Reserved = []string{"p1"}
		},
		want: []want{
			{check.I1, "r1", "tied to 2 requests (r1, r3): here, node n1 reserved it for the request; node n1 records it used for the request"},
			{check.I1, "r3", "tied to 2 requests (r1, r3): here, node n2 reserved it for the request"},
		},
	}, {
		name: "presignature reused in the ledger",
		doctor: func(_ *testing.T, r *check.Records) {
			r.Ledger = append(r.Ledger, check.LedgerUse{PresignID: "p2", RequestID: "r4"})
		},
		want: []want{
			{check.I1, "r1", "tied to 2 requests (r1, r4): here, node n1 reserved it for the request"},
			{check.I1, "r4", "tied to 2 requests (r1, r4): here, the ledger used it for digest 0"},
			{check.I1, "r1", "used 2 times in the cloud co-signers' ledger: here, the ledger used it for digest 1"},
			{check.I1, "r4", "used 2 times in the cloud co-signers' ledger: here, the ledger used it for digest 0"},
		},
	}, {
		name: "presignature used twice by one request",
		doctor: func(_ *testing.T, r *check.Records) {
			r.Ledger[1].PresignID = "p1"
			r.Requests[0].Signatures[1].PresignID = "p1"
		},
		want: []want{
			{check.I1, "r1", "used 2 times in the cloud co-signers' ledger: here, the ledger used it for digest 0; the ledger used it for digest 1"},
			{check.I1, "r1", "used 2 times in the workspace's signatures: here, the workspace recorded it behind digest 0's signature; the workspace recorded it behind digest 1's"},
		},
	}, {
		name: "co-signers used a presignature the cluster holds available",
		doctor: func(_ *testing.T, r *check.Records) {
			r.Ledger = append(r.Ledger, check.LedgerUse{PresignID: "p3", RequestID: "r4"})
		},
		want: []want{{check.I1, "r4", "presignature p3 was used by the cloud co-signers while node(s) n1, n2 hold it available"}},
	}, {
		name: "signature with no APPROVE",
		doctor: func(_ *testing.T, r *check.Records) {
			r.Callback.Decisions = r.Callback.Decisions[:1] // r1 got RETRY only, r2 nothing
		},
		want: []want{
			{check.I5, "r1", "signed with 2 signatures"},
			{check.I5, "r2", "approved with 0 signatures and approval true"},
		},
	}, {
		name: "lost request",
		doctor: func(_ *testing.T, r *check.Records) {
			r.Requests = append(r.Requests,
				check.Request{ID: "r5", UserID: "u", State: check.StateClaimed},
				check.Request{ID: "r6", UserID: "u", State: check.StatePending},
				check.Request{ID: "r7", UserID: "u", State: check.StateExpired})
			r.Requests[3].Reason = ""
		},
		want: []want{
			{check.I3, "r4", "failed without a reason"},
			{check.I3, "r5", "lost: still claimed"},
			{check.I3, "r6", "lost: still pending"},
			{check.I3, "r7", "expired"},
		},
	}, {
		name: "signed request missing a digest's signature",
		doctor: func(_ *testing.T, r *check.Records) {
			r.Requests[0].Signatures = r.Requests[0].Signatures[:1]
		},
		want: []want{{check.I3, "r1", "signed with 1 of 2 digests"}},
	}, {
		name: "second signature for one digest",
		doctor: func(t *testing.T, r *check.Records) {
			d := r.Requests[0].Digests[0]
			r.Requests[0].Signatures = append(r.Requests[0].Signatures,
				check.Signature{Index: 0, Sig: newTestKey().sign(t, d.Digest, d.Path), PresignID: "p1"})
		},
		want: []want{{check.I2, "r1", "digest 0 has 2 signatures"}},
	}, {
		name: "request owned by two nodes",
		doctor: func(_ *testing.T, r *check.Records) {
			r.Nodes[0].Requests[3] = check.NodeRequest{ID: "r4", Status: check.StatusClaimed, Owner: "n1", Attempt: 2}
			r.Nodes[1].Requests[3] = check.NodeRequest{ID: "r4", Status: check.StatusClaimed, Owner: "n2", Attempt: 2}
		},
		want: []want{{check.I2, "r4", "attempt 2 is owned by 2 nodes: n1 by node(s) n1; n2 by node(s) n2"}},
	}, {
		name: "signature that does not verify",
		doctor: func(_ *testing.T, r *check.Records) {
			sig := r.Requests[0].Signatures[1].Sig
			sig[40] ^= 1
		},
		want: []want{{check.InvSignature, "r1", "digest 1: verify: signature does not verify"}},
	}, {
		name: "signature under another path's key",
		doctor: func(t *testing.T, r *check.Records) {
			d := r.Requests[0].Digests[1]
			r.Requests[0].Signatures[1].Sig = newTestKey().sign(t, d.Digest, []uint32{44, 8})
		},
		want: []want{{check.InvSignature, "r1", "digest 1: verify: signature does not verify"}},
	}, {
		name: "recorded public key is not the derived one",
		doctor: func(_ *testing.T, r *check.Records) {
			r.Requests[0].Signatures[0].PublicKey = newTestKey().public().PublicKey
		},
		want: []want{{check.InvSignature, "r1", "digest 0: the workspace recorded key"}},
	}, {
		name: "signature for a digest the request lacks, of a user with no key",
		doctor: func(_ *testing.T, r *check.Records) {
			r.Requests[0].Signatures[1].Index = 2
			r.Requests[2].UserID = "nobody"
			r.Requests[2].Signatures = []check.Signature{{Index: 0, Sig: make([]byte, 64)}}
		},
		want: []want{
			{check.I3, "r1", "signed with 1 of 2 digests"},
			{check.I5, "r3", "rejected with 1 signatures"},
			{check.InvSignature, "r1", "a signature for digest 2 of 2"},
			{check.InvSignature, "r3", `no signing key for user "nobody"`},
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs := clean(t)
			tt.doctor(t, &recs)
			rep := check.Check(recs)
			wantViolations(t, rep, tt.want)
		})
	}
}

// wantViolations fails t unless rep holds exactly the violations want.
func wantViolations(t *testing.T, rep check.Report, want []want) {
	t.Helper()
	if len(rep.Violations) != len(want) {
		t.Errorf("got %d violations, want %d:\n%s", len(rep.Violations), len(want), rep)
	}
	for _, w := range want {
		if !reported(rep, w) {
			t.Errorf("missing %s %s %q in:\n%s", w.inv, w.request, w.detail, rep)
		}
	}
}

func reported(rep check.Report, w want) bool {
	for _, v := range rep.Violations {
		if v.Invariant == w.inv && v.RequestID == w.request && strings.Contains(v.Detail, w.detail) {
			return true
		}
	}
	return false
}

func TestCheckWithoutHandlerSkipsI5(t *testing.T) {
	recs := clean(t)
	recs.Callback = nil
	recs.Requests[0].State = check.StateSigned
	rep := check.Check(recs)
	if !rep.OK() || rep.CallbackRead {
		t.Fatalf("with no handler, I5 is not judged:\n%s", rep)
	}
	if !strings.Contains(rep.String(), "I5 not checked") {
		t.Errorf("the report does not say I5 was not checked:\n%s", rep)
	}
}

func ExampleReport_String() {
	rep := check.Check(check.Records{Requests: []check.Request{{ID: "r9", State: check.StatePending}}})
	fmt.Print(rep)
	// Output:
	// checked 1 requests, 0 signatures, 0 ledger uses, 0 presignatures on 0 nodes, no callback handler log (I5 not checked): 1 violations
	// I3 r9: lost: still pending at the end of the run
}
