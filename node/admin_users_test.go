package node

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestUserListing checks the user JSON of the admin API: the quorum and
// party count for each MPC setup instead of CMP's bare threshold, and the
// pairing time in plain RFC 3339.
func TestUserListing(t *testing.T) {
	paired := time.Date(2026, 11, 28, 16, 4, 59, 942123456, time.FixedZone("CET", 3600))
	signer := func(t uint32, clouds ...string) UserInfo {
		return UserInfo{ID: "u-1", Role: "both", PublicKey: "02ab", NodePartyID: "node",
			CloudPartyIDs: clouds, Threshold: t, PairedAt: paired}
	}
	tests := []struct {
		name string
		u    UserInfo
		want []string // substrings of the JSON
	}{
		{"2-of-2", signer(1, "c1"), []string{`"quorum":2,"parties":2,"cmp_threshold_t":1`}},
		{"2-of-3", signer(1, "c1", "c2"), []string{`"quorum":2,"parties":3,"cmp_threshold_t":1`}},
		{"3-of-3", signer(2, "c1", "c2"), []string{`"quorum":3,"parties":3,"cmp_threshold_t":2`}},
		{"approver", UserInfo{ID: "u-2", Role: "approver", PairedAt: paired}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := json.Marshal(tt.u.Listing())
			if err != nil {
				t.Fatal(err)
			}
			got := string(b)
			for _, w := range append(tt.want, `"paired_at":"2026-11-28T15:04:59Z"`) {
				if !strings.Contains(got, w) {
					t.Errorf("%s lacks %s", got, w)
				}
			}
			if strings.Contains(got, `"threshold"`) {
				t.Errorf("%s still says threshold", got)
			}
			if tt.u.PublicKey == "" && (strings.Contains(got, "quorum") || strings.Contains(got, "parties")) {
				t.Errorf("an approver has no signing set: %s", got)
			}
		})
	}
}
