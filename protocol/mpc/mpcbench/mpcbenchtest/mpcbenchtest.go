package mpcbenchtest

import (
	"context"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/protocol/mpc/internal/mpctest"
	"github.com/coterie-mpc/coterie/protocol/mpc/mpcbench"
)

// OnlineP50 runs the online round once for each presignature of the
// fixture at path, every party in this process, and returns the median
// time of a round. It fails tb if the fixture cannot be read, holds no
// presignature, or a round fails.
func OnlineP50(tb testing.TB, path string) time.Duration {
	tb.Helper()
	fx, err := mpctest.LoadFixture(path)
	if err != nil {
		tb.Fatal(err)
	}
	if len(fx.Presignatures) == 0 {
		tb.Fatalf("%s holds no presignatures", path)
	}
	ds, err := mpcbench.Online(context.Background(), clock.Real(), fx.Shares, fx.Presignatures)
	if err != nil {
		tb.Fatal(err)
	}
	return mpcbench.P50(ds)
}
