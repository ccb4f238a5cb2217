package mpcbench

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/coterie-mpc/coterie/protocol/mpc/internal/mpctest"
)

// OnlineP50 runs the online round once for each presignature of the
// fixture at path, every party in this goroutine, and returns the median
// time of a round.
func OnlineP50(tb testing.TB, path string) time.Duration {
	tb.Helper()
	fx, err := mpctest.LoadFixture(path)
	if err != nil {
		tb.Fatal(err)
	}
	eng, err := mpc.New(mpc.DefaultConfig())
	if err != nil {
		tb.Fatal(err)
	}
	var ds []time.Duration
	for i, set := range fx.Presignatures {
		var signers []mpc.PartyID
		stores := map[mpc.PartyID]mpc.PresignStore{}
		var id mpc.PresignatureID
		for p, pre := range set {
			st := mpc.NewMemPresignStore()
			if err := st.Put(context.Background(), pre); err != nil {
				tb.Fatal(err)
			}
			signers = append(signers, p)
			stores[p], id = st, pre.ID()
		}
		slices.Sort(signers)
		digest := sha256.Sum256(fmt.Appendf(nil, "bare %d", i))
		sid := make([]byte, 16)
		_, _ = rand.Read(sid)
		start := time.Now()
		ss := map[mpc.PartyID]*mpc.Session[*mpc.Signature]{}
		for _, p := range signers {
			s, err := eng.PresignOnline(context.Background(), mpc.Params{SessionID: sid, Self: p, Parties: signers, Threshold: fx.Threshold},
				mpc.SignInput{Share: fx.Shares[p], Digest: digest[:], Path: mpc.Path{44, 60, 0, 0, uint32(i)}}, stores[p], id)
			if err != nil {
				tb.Fatal(err)
			}
			defer s.Close()
			ss[p] = s
		}
		exchange(tb, ss)
		ds = append(ds, time.Since(start))
	}
	if len(ds) == 0 {
		tb.Fatalf("%s holds no presignatures", path)
	}
	slices.Sort(ds)
	return ds[len(ds)/2]
}

// exchange delivers every party's outgoing envelopes to the others until
// every session is done.
func exchange(tb testing.TB, ss map[mpc.PartyID]*mpc.Session[*mpc.Signature]) {
	for range 100 {
		done := true
		for from, s := range ss {
			for _, env := range s.Outgoing() {
				for to, r := range ss {
					if to == from || (env.GetTo() != "" && mpc.PartyID(env.GetTo()) != to) {
						continue
					}
					if err := r.Accept(env); err != nil {
						tb.Fatal(err)
					}
				}
			}
		}
		for _, s := range ss {
			if !s.Done() {
				done = false
			}
		}
		if done {
			for _, s := range ss {
				if _, err := s.Result(); err != nil {
					tb.Fatal(err)
				}
			}
			return
		}
	}
	tb.Fatal("online round did not finish")
}
