package mpcbench

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"

	pb "github.com/coterie-mpc/coterie/protocol"
	"github.com/coterie-mpc/coterie/protocol/mpc"
)

// fake is a session whose behaviour a test scripts. exchange never calls
// one fake from two goroutines at once, and joins its goroutines between
// passes, so fake needs no lock.
type fake struct {
	self     mpc.PartyID
	out      []*pb.MpcEnvelope
	got      []*pb.MpcEnvelope
	done     bool
	err      error
	onAccept func(f *fake, env *pb.MpcEnvelope) error
}

var _ session[string] = (*fake)(nil)

func (f *fake) Accept(env *pb.MpcEnvelope) error {
	f.got = append(f.got, env)
	return f.onAccept(f, env)
}
func (f *fake) Outgoing() []*pb.MpcEnvelope { out := f.out; f.out = nil; return out }
func (f *fake) Done() bool                  { return f.done }
func (f *fake) Err() error                  { return f.err }
func (f *fake) Close()                      { f.done = true }
func (f *fake) Result() (string, error) {
	if !f.done {
		return "", mpc.ErrNotDone
	}
	return string(f.self) + " done", f.err
}

// broadcast queues a broadcast from f.
func (f *fake) broadcast() { f.out = append(f.out, &pb.MpcEnvelope{From: string(f.self)}) }

func TestExchange(t *testing.T) {
	errBoom := errors.New("boom")
	finish := func(f *fake, _ *pb.MpcEnvelope) error { f.done = true; return nil }
	echo := func(f *fake, _ *pb.MpcEnvelope) error { f.broadcast(); return nil }
	tests := []struct {
		name string
		// setup returns the fakes of a, b and c (c may be nil) and, for
		// the fakes to call, the test's cancel function.
		setup   func(cancel context.CancelFunc) []*fake
		want    map[mpc.PartyID]string
		wantErr error
		// accepts is how many envelopes each party must have accepted.
		accepts map[mpc.PartyID]int
	}{{
		name: "one round",
		setup: func(context.CancelFunc) []*fake {
			a, b := &fake{self: "a", onAccept: finish}, &fake{self: "b", onAccept: finish}
			a.broadcast()
			b.broadcast()
			return []*fake{a, b}
		},
		want:    map[mpc.PartyID]string{"a": "a done", "b": "b done"},
		accepts: map[mpc.PartyID]int{"a": 1, "b": 1},
	}, {
		name: "direct message reaches its recipient only",
		setup: func(context.CancelFunc) []*fake {
			a := &fake{self: "a", done: true}
			b := &fake{self: "b", onAccept: finish}
			c := &fake{self: "c", done: true, onAccept: func(*fake, *pb.MpcEnvelope) error { return errBoom }}
			a.out = []*pb.MpcEnvelope{{From: "a", To: "b"}}
			return []*fake{a, b, c}
		},
		want:    map[mpc.PartyID]string{"a": "a done", "b": "b done", "c": "c done"},
		accepts: map[mpc.PartyID]int{"a": 0, "b": 1, "c": 0},
	}, {
		name: "silent and not done",
		setup: func(context.CancelFunc) []*fake {
			a := &fake{self: "a", onAccept: finish}
			a.broadcast()
			return []*fake{a, {self: "b", onAccept: echo}}
		},
		wantErr: ErrStalled,
	}, {
		name: "sending for ever",
		setup: func(context.CancelFunc) []*fake {
			a, b := &fake{self: "a", onAccept: echo}, &fake{self: "b", onAccept: echo}
			a.broadcast()
			return []*fake{a, b}
		},
		wantErr: ErrStalled,
		accepts: map[mpc.PartyID]int{"a": maxPasses / 2, "b": maxPasses / 2},
	}, {
		name: "accept fails",
		setup: func(context.CancelFunc) []*fake {
			a := &fake{self: "a", onAccept: finish}
			b := &fake{self: "b", onAccept: func(*fake, *pb.MpcEnvelope) error { return errBoom }}
			a.broadcast()
			b.broadcast()
			return []*fake{a, b}
		},
		wantErr: errBoom,
	}, {
		name: "session failed",
		setup: func(context.CancelFunc) []*fake {
			a := &fake{self: "a", onAccept: func(f *fake, _ *pb.MpcEnvelope) error { f.done, f.err = true, errBoom; return nil }}
			b := &fake{self: "b", done: true}
			b.broadcast()
			return []*fake{a, b}
		},
		wantErr: errBoom,
	}, {
		name: "cancelled during a pass",
		setup: func(cancel context.CancelFunc) []*fake {
			a := &fake{self: "a", onAccept: echo}
			b := &fake{self: "b", onAccept: func(f *fake, _ *pb.MpcEnvelope) error { cancel(); f.broadcast(); return nil }}
			a.broadcast()
			a.broadcast()
			return []*fake{a, b}
		},
		wantErr: context.Canceled,
		// The second envelope of the pass is not delivered.
		accepts: map[mpc.PartyID]int{"a": 0, "b": 1},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			fakes := tt.setup(cancel)
			ss := make(map[mpc.PartyID]session[string], len(fakes))
			for _, f := range fakes {
				ss[f.self] = f
			}
			got, err := exchange(ctx, ss)
			if !errors.Is(err, tt.wantErr) || (err != nil) != (tt.wantErr != nil) {
				t.Fatalf("exchange: %v, want %v", err, tt.wantErr)
			}
			if !maps.Equal(got, tt.want) {
				t.Errorf("results = %v, want %v", got, tt.want)
			}
			for _, f := range fakes {
				if n, ok := tt.accepts[f.self]; ok && len(f.got) != n {
					t.Errorf("%s accepted %d envelopes, want %d", f.self, len(f.got), n)
				}
			}
		})
	}
}

// TestRunStartsEveryParty checks that run calls the constructor for every
// party and reports every constructor's error.
func TestRunStartsEveryParty(t *testing.T) {
	errBoom := errors.New("boom")
	eng, err := mpc.New(mpc.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	var asked []mpc.PartyID
	created := make(chan mpc.PartyID, 3)
	_, err = run(context.Background(), []mpc.PartyID{"a", "b", "c"}, func(p mpc.PartyID) (*mpc.Session[*mpc.Signature], error) {
		created <- p
		if p == "b" {
			return nil, errBoom
		}
		// An invalid presign-online request fails before any session
		// exists: run must report the constructor's error, not a nil
		// session's.
		return eng.PresignOnline(context.Background(), mpc.Params{}, mpc.SignInput{}, nil, mpc.PresignatureID{})
	})
	close(created)
	for p := range created {
		asked = append(asked, p)
	}
	slices.Sort(asked)
	if !errors.Is(err, errBoom) || !errors.Is(err, mpc.ErrInvalidParams) {
		t.Errorf("run: %v, want both constructor errors", err)
	}
	if !slices.Equal(asked, []mpc.PartyID{"a", "b", "c"}) {
		t.Errorf("created %v, want a, b and c", asked)
	}
}

// TestRunCancelled checks that run starts no session (each constructor is
// seconds of CPU for a keygen) once ctx has ended.
func TestRunCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := run(ctx, []mpc.PartyID{"a", "b"}, func(p mpc.PartyID) (*mpc.Session[*mpc.Signature], error) {
		t.Errorf("session of %s started", p)
		return nil, errors.ErrUnsupported
	})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("run: %v, want context.Canceled", err)
	}
}
