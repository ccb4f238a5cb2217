package enclave_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/coterie-mpc/coterie/enclave"
)

func testScope() enclave.SealScope {
	return enclave.SealScope{
		Kind:           enclave.KindSim,
		Machine:        enclave.HashID("test", []byte("machine")),
		CodeBinding:    enclave.HashID("test", []byte("code")),
		ProductBinding: enclave.HashID("test", []byte("product")),
	}
}

func TestParseSealed(t *testing.T) {
	h := testScope().Header(enclave.KeyPolicyCode, []byte("ad"))
	good := h.Append(nil)
	good = append(good, "payload"...)
	got, header, payload, err := enclave.ParseSealed(good)
	if err != nil || got != h || !bytes.Equal(header, good[:enclave.SealedHeaderSize]) || string(payload) != "payload" {
		t.Fatalf("ParseSealed(good) = %+v, %x, %q, %v", got, header, payload, err)
	}
	with := func(i int, b byte) []byte {
		c := bytes.Clone(good)
		c[i] = b
		return c
	}
	for _, tc := range []struct {
		name string
		blob []byte
	}{
		{"nil", nil},
		{"header only", good[:enclave.SealedHeaderSize]},
		{"short", good[:10]},
		{"magic", with(0, 'X')},
		{"version", with(4, 2)},
		{"kind zero", with(5, 0)},
		{"kind unknown", with(5, 99)},
		{"policy zero", with(6, 0)},
		{"policy unknown", with(6, 3)},
	} {
		if _, _, _, err := enclave.ParseSealed(tc.blob); !errors.Is(err, enclave.ErrMalformedBlob) {
			t.Errorf("%s: ParseSealed = %v, want ErrMalformedBlob", tc.name, err)
		}
	}
}

func TestSealScopeCheck(t *testing.T) {
	s := testScope()
	ad := []byte("record-1")
	other := s
	other.Machine = enclave.HashID("test", []byte("other machine"))
	otherKind := s
	otherKind.Kind = enclave.KindSGX
	newCode := s
	newCode.CodeBinding = enclave.HashID("test", []byte("code v2"))
	for _, tc := range []struct {
		name   string
		sealer enclave.SealScope
		policy enclave.KeyPolicy
		ad     []byte
		want   error
	}{
		{"same", s, enclave.KeyPolicyCode, ad, nil},
		{"other machine", other, enclave.KeyPolicyProduct, ad, enclave.ErrForeignEnclave},
		{"other kind", otherKind, enclave.KeyPolicyProduct, ad, enclave.ErrForeignEnclave},
		{"new code, code policy", newCode, enclave.KeyPolicyCode, ad, enclave.ErrOtherBuild},
		{"new code, product policy", newCode, enclave.KeyPolicyProduct, ad, nil},
		{"other record", s, enclave.KeyPolicyCode, []byte("record-2"), enclave.ErrWrongAssociatedData},
	} {
		h := tc.sealer.Header(tc.policy, tc.ad)
		err := s.Check(h, ad)
		if (tc.want == nil && err != nil) || !errors.Is(err, tc.want) {
			t.Errorf("%s: Check = %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestHashIDSeparatesParts(t *testing.T) {
	if enclave.HashID("d", []byte("ab"), []byte("c")) == enclave.HashID("d", []byte("a"), []byte("bc")) {
		t.Fatal("HashID does not separate its parts")
	}
	if enclave.HashID("d1", []byte("x")) == enclave.HashID("d2", []byte("x")) {
		t.Fatal("HashID does not separate domains")
	}
}

func TestParseEvidence(t *testing.T) {
	good := enclave.AppendEvidence(nil, enclave.KindSGX, []byte("quote"))
	kind, payload, err := enclave.ParseEvidence(good)
	if err != nil || kind != enclave.KindSGX || string(payload) != "quote" {
		t.Fatalf("ParseEvidence = %v, %q, %v", kind, payload, err)
	}
	for _, bad := range [][]byte{
		nil,
		good[:5],
		good[:6],
		enclave.AppendEvidence(nil, enclave.KindUnknown, []byte("x")),
		enclave.AppendEvidence(nil, enclave.Kind(77), []byte("x")),
		append([]byte("XXEV\x01\x02"), 'x'),
		append([]byte("CTEV\x02\x02"), 'x'),
		enclave.AppendEvidence(nil, enclave.KindSim, make([]byte, enclave.MaxEvidenceSize)),
	} {
		if _, _, err := enclave.ParseEvidence(bad); !errors.Is(err, enclave.ErrMalformedEvidence) {
			t.Errorf("ParseEvidence(%.12q) = %v, want ErrMalformedEvidence", bad, err)
		}
	}
}

func TestPadReportData(t *testing.T) {
	rd, err := enclave.PadReportData([]byte{1, 2})
	if err != nil || len(rd) != enclave.MaxReportData || rd[0] != 1 || rd[1] != 2 || rd[2] != 0 {
		t.Fatalf("PadReportData = %x, %v", rd, err)
	}
	if _, err := enclave.PadReportData(make([]byte, 65)); !errors.Is(err, enclave.ErrReportDataTooLong) {
		t.Fatalf("PadReportData(65 bytes) = %v, want ErrReportDataTooLong", err)
	}
}

// FuzzParseSealed checks that the sealed-blob header decoder never panics,
// fails only with ErrMalformedBlob, and round-trips what it accepts.
func FuzzParseSealed(f *testing.F) {
	f.Add(append(testScope().Header(enclave.KeyPolicyCode, nil).Append(nil), 1, 2, 3))
	f.Add([]byte("CTSB"))
	f.Fuzz(func(t *testing.T, blob []byte) {
		h, header, payload, err := enclave.ParseSealed(blob)
		if err != nil {
			if !errors.Is(err, enclave.ErrMalformedBlob) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		again := append(h.Append(nil), payload...)
		if !bytes.Equal(again, blob) || !bytes.Equal(header, blob[:enclave.SealedHeaderSize]) {
			t.Fatalf("round trip: %x != %x", again, blob)
		}
	})
}

// FuzzParseEvidence checks that the evidence frame decoder never panics,
// fails only with ErrMalformedEvidence, and round-trips what it accepts.
func FuzzParseEvidence(f *testing.F) {
	f.Add(enclave.AppendEvidence(nil, enclave.KindSim, []byte("statement")))
	f.Add([]byte("CTEV\x01"))
	f.Fuzz(func(t *testing.T, evidence []byte) {
		kind, payload, err := enclave.ParseEvidence(evidence)
		if err != nil {
			if !errors.Is(err, enclave.ErrMalformedEvidence) {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if again := enclave.AppendEvidence(nil, kind, payload); !bytes.Equal(again, evidence) {
			t.Fatalf("round trip: %x != %x", again, evidence)
		}
	})
}
