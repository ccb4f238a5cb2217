package mpc_test

import (
	"bytes"
	"runtime"
	"testing"

	"github.com/coterie-mpc/coterie/protocol/mpc"
)

// libraryWorkers counts the goroutines that are workers of the library's
// worker pool (multi-party-sig pkg/pool).
func libraryWorkers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return bytes.Count(buf[:n], []byte("multi-party-sig/pkg/pool.worker("))
		}
		buf = make([]byte, 2*len(buf))
	}
}

// TestSessionsUseNoLibraryPool is the regression test for a key generation
// that hung for good: with the default configuration, sessions ran the
// library's worker pool, whose workers can block for ever after a call
// returns, so that a later call in the same session waits for ever inside
// Accept (see Engine). A session must run the library on the
// calling goroutine alone.
func TestSessionsUseNoLibraryPool(t *testing.T) {
	fx := loadFixture(t, "2of2")
	e := newEngine(t)
	before := libraryWorkers()
	s, err := e.Presign(mpc.Params{SessionID: sessionID(t), Self: fx.Parties[0], Parties: fx.Parties, Threshold: fx.Shares[fx.Parties[0]].Threshold()},
		fx.Shares[fx.Parties[0]])
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := libraryWorkers() - before; n != 0 {
		t.Fatalf("a presign session started %d workers of the library's pool, want none", n)
	}
}
