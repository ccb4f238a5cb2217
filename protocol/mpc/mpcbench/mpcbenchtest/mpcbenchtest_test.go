package mpcbenchtest_test

import (
	"testing"

	"github.com/coterie-mpc/coterie/protocol/mpc/mpcbench/mpcbenchtest"
)

// TestOnlineP50 runs the online rounds of the 2-of-2 and 3-of-3 fixtures.
func TestOnlineP50(t *testing.T) {
	for _, setup := range []string{"2of2", "3of3"} {
		t.Run(setup, func(t *testing.T) {
			p := mpcbenchtest.OnlineP50(t, "../../testdata/keys-"+setup+".cbor")
			t.Logf("online p50 %s", p)
			if p <= 0 {
				t.Errorf("OnlineP50 = %s, want more than 0", p)
			}
		})
	}
}
