package mpcbench

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"slices"
	"syscall"
	"time"

	"github.com/coterie-mpc/coterie/clock"
	"github.com/coterie-mpc/coterie/protocol/mpc"
)

// Result is what one Measure run took, every party in this process.
type Result struct {
	// Parties is the number of parties, all of whom signed.
	Parties int
	// Keygen is the wall time of the key generation.
	Keygen time.Duration
	// Presign is the wall time of each presign session, in order.
	Presign []time.Duration
	// PresignCPU is the process's CPU seconds (user and system) per
	// presignature, all parties together: the mean over the presign
	// sessions.
	PresignCPU float64
	// Online is the wall time of each online round (PresignOnline), in
	// order.
	Online []time.Duration
}

// PresignP50 returns the median of r.Presign.
func (r Result) PresignP50() time.Duration { return P50(r.Presign) }

// OnlineP50 returns the median of r.Online.
func (r Result) OnlineP50() time.Duration { return P50(r.Online) }

// P50 returns the median of ds, the upper one of an even count, or 0 if ds
// is empty. It does not modify ds.
func P50(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(ds))
	return s[len(s)/2]
}

// Measure generates a key among cfg.Parties parties, makes cfg.Presigns
// presignatures of it one after another, and spends each in an online
// round, every party in this process (see the package doc). It returns
// ctx's error if ctx ends first, ErrConfig for a bad cfg, or the error of
// a session that failed.
func Measure(ctx context.Context, cfg Config) (Result, error) {
	if err := cfg.Validate(); err != nil {
		return Result{}, err
	}
	eng, err := mpc.New(mpc.DefaultConfig())
	if err != nil {
		return Result{}, err
	}
	parties := make([]mpc.PartyID, cfg.Parties)
	for i := range parties {
		parties[i] = mpc.PartyID(fmt.Sprintf("bench-%d", i+1))
	}
	threshold := cfg.Parties - 1
	res := Result{Parties: cfg.Parties}

	start := cfg.Clock.Now()
	sid := sessionID()
	shares, err := run(ctx, parties, func(p mpc.PartyID) (*mpc.Session[*mpc.KeyShare], error) {
		return eng.Keygen(mpc.Params{SessionID: sid, Self: p, Parties: parties, Threshold: threshold})
	})
	if err != nil {
		return Result{}, fmt.Errorf("mpcbench: keygen: %w", err)
	}
	res.Keygen = cfg.Clock.Now().Sub(start)

	sets := make([]map[mpc.PartyID]*mpc.Presignature, 0, cfg.Presigns)
	var cpu float64
	for i := range cfg.Presigns {
		cpu0, err := cpuSeconds()
		if err != nil {
			return Result{}, err
		}
		start, sid := cfg.Clock.Now(), sessionID()
		set, err := run(ctx, parties, func(p mpc.PartyID) (*mpc.Session[*mpc.Presignature], error) {
			return eng.Presign(mpc.Params{SessionID: sid, Self: p, Parties: parties, Threshold: threshold}, shares[p])
		})
		if err != nil {
			return Result{}, fmt.Errorf("mpcbench: presign %d: %w", i, err)
		}
		res.Presign = append(res.Presign, cfg.Clock.Now().Sub(start))
		cpu1, err := cpuSeconds()
		if err != nil {
			return Result{}, err
		}
		cpu += cpu1 - cpu0
		sets = append(sets, set)
	}
	res.PresignCPU = cpu / float64(cfg.Presigns)

	if res.Online, err = online(ctx, eng, cfg.Clock, shares, sets); err != nil {
		return Result{}, err
	}
	return res, nil
}

// Online spends each presignature set in one online round (PresignOnline),
// one after another, and returns the wall time of each round, from taking
// the presignature to every signer's verified signature. A set maps each of
// the presignature's signers to its share of it; shares holds at least
// those signers' key shares. Round i signs its own digest with the key at
// path m/44/60/0/0/i. It returns ctx's error if ctx ends first, or the
// error of a session that failed.
func Online(ctx context.Context, clk clock.Clock, shares map[mpc.PartyID]*mpc.KeyShare, sets []map[mpc.PartyID]*mpc.Presignature) ([]time.Duration, error) {
	eng, err := mpc.New(mpc.DefaultConfig())
	if err != nil {
		return nil, err
	}
	return online(ctx, eng, clk, shares, sets)
}

func online(ctx context.Context, eng *mpc.Engine, clk clock.Clock, shares map[mpc.PartyID]*mpc.KeyShare, sets []map[mpc.PartyID]*mpc.Presignature) ([]time.Duration, error) {
	ds := make([]time.Duration, 0, len(sets))
	for i, set := range sets {
		if len(set) == 0 {
			return nil, fmt.Errorf("mpcbench: online %d: empty presignature set", i)
		}
		signers := make([]mpc.PartyID, 0, len(set))
		for p := range set {
			if shares[p] == nil {
				return nil, fmt.Errorf("mpcbench: online %d: no key share for signer %s", i, p)
			}
			signers = append(signers, p)
		}
		slices.Sort(signers)
		digest := sha256.Sum256(fmt.Appendf(nil, "mpcbench online %d", i))
		sid := sessionID()
		start := clk.Now()
		_, err := run(ctx, signers, func(p mpc.PartyID) (*mpc.Session[*mpc.Signature], error) {
			return eng.PresignOnline(ctx, mpc.Params{SessionID: sid, Self: p, Parties: signers, Threshold: shares[p].Threshold()},
				mpc.SignInput{Share: shares[p], Digest: digest[:], Path: mpc.Path{44, 60, 0, 0, uint32(i)}},
				mpc.OneUse(set[p]), set[p].ID())
		})
		if err != nil {
			return nil, fmt.Errorf("mpcbench: online %d: %w", i, err)
		}
		ds = append(ds, clk.Now().Sub(start))
	}
	return ds, nil
}

// sessionID returns a fresh random session ID.
func sessionID() []byte {
	sid := make([]byte, 16)
	_, _ = rand.Read(sid) // never fails (crypto/rand.Read's contract)
	return sid
}

// cpuSeconds returns the process's user plus system CPU time. It counts
// every goroutine of the process: the figure is the sessions' only while
// nothing else heavy runs.
func cpuSeconds() (float64, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("mpcbench: process CPU time: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds(), nil
}
