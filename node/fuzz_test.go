package node

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/cluster"
)

// FuzzDecodeUserInfo feeds arbitrary public parts of API-user records (they
// come from the raft log) to the decoder: it must not panic, must refuse
// with ErrBadRecord, and what it accepts must encode and decode to itself.
func FuzzDecodeUserInfo(f *testing.F) {
	good, _ := json.Marshal(UserInfo{ID: "u-1", WorkspaceID: "w", Role: "both", PublicKey: "02ab", ApprovalPublicKey: "cd",
		CloudPartyIDs: []string{"cloud-1"}, Threshold: 1, PairedAt: time.Unix(1, 0).UTC()})
	f.Add("u-1", good)
	f.Add("u-2", good)
	f.Add("x", []byte(`{"id":"x","paired_at":"not a time"}`))
	f.Add("x", []byte(`[]`))
	f.Fuzz(func(t *testing.T, id string, public []byte) {
		u, err := decodeUserInfo(cluster.Record{ID: id, Public: public})
		if err != nil {
			if !errors.Is(err, ErrBadRecord) {
				t.Fatalf("error %v does not match ErrBadRecord", err)
			}
			return
		}
		if u.ID != id {
			t.Fatalf("decoded user %q from record %q", u.ID, id)
		}
		again, err := json.Marshal(u)
		if err != nil {
			t.Fatal(err)
		}
		u2, err := decodeUserInfo(cluster.Record{ID: id, Public: again})
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		third, _ := json.Marshal(u2)
		if !bytes.Equal(again, third) {
			t.Fatalf("round trip:\n%s\n%s", again, third)
		}
		if _, err := u.SigningKey(); err != nil && !errors.Is(err, ErrBadRecord) {
			t.Fatalf("signing key error %v does not match ErrBadRecord", err)
		}
	})
}

// FuzzAdminPairBody sends arbitrary bodies to POST /v1/pair of a node that
// is not serving yet: the handler must answer 400 for what does not decode
// and 503 for the rest, never panic, and never echo the body.
func FuzzAdminPairBody(f *testing.F) {
	f.Add([]byte(`{"token":"coterie-pair-v1.x.y","role":"signer"}`))
	f.Add([]byte(`{"token":1}`))
	f.Add([]byte(`{"token":"t","extra":true}`))
	f.Add([]byte(`not json`))
	n := &Node{users: map[string]*User{}}
	a := &adminServer{n: n, token: "t"}
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, PathPair, bytes.NewReader(body))
		a.pair(rec, req)
		var e adminError
		if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil {
			t.Fatalf("answer %q is not an error JSON", rec.Body.String())
		}
		switch rec.Code {
		case http.StatusBadRequest:
			if e.Code != codeBadRequest {
				t.Fatalf("400 with code %q", e.Code)
			}
		case http.StatusServiceUnavailable:
			var pr PairRequest
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.DisallowUnknownFields()
			if dec.Decode(&pr) != nil {
				t.Fatalf("503 for a body that does not decode: %q", body)
			}
		default:
			t.Fatalf("status %d for %q", rec.Code, body)
		}
		if len(body) > 8 && bytes.Contains(rec.Body.Bytes(), body) {
			t.Fatal("the answer echoes the body")
		}
	})
}
