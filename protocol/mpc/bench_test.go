package mpc_test

import (
	"context"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coterie-mpc/coterie/protocol/mpc"
	"github.com/taurusgroup/multi-party-sig/pkg/party"
	libproto "github.com/taurusgroup/multi-party-sig/pkg/protocol"
	"github.com/taurusgroup/multi-party-sig/protocols/cmp"
)

// The benchmarks run every party in this process, so CPU seconds per
// operation are the sum over all parties. Run them with, for example,
//
//	go test ./protocol/mpc -run '^$' -bench . -benchtime 3x

var benchSetups = []struct {
	name      string
	parties   []mpc.PartyID
	threshold int
}{
	{"2of2", []mpc.PartyID{"a", "b"}, 1},
	{"3of3", []mpc.PartyID{"a", "b", "c"}, 2},
}

// cpuSeconds returns the process's user plus system CPU time.
func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// cpuMeter reports CPU seconds per operation over the timed part of a
// benchmark.
type cpuMeter struct {
	b     *testing.B
	total float64
	start float64
}

func newCPUMeter(b *testing.B) *cpuMeter { return &cpuMeter{b: b} }
func (m *cpuMeter) Start()               { m.b.StartTimer(); m.start = cpuSeconds() }
func (m *cpuMeter) Stop()                { m.total += cpuSeconds() - m.start; m.b.StopTimer() }
func (m *cpuMeter) Report() {
	m.b.ReportMetric(m.total/float64(m.b.N), "cpu-s/op")
}

func benchEngine(b *testing.B) *mpc.Engine {
	e, err := mpc.New(mpc.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	return e
}

func BenchmarkKeygen(b *testing.B) {
	for _, s := range benchSetups {
		b.Run(s.name, func(b *testing.B) {
			e := benchEngine(b)
			m := newCPUMeter(b)
			b.StopTimer()
			for range b.N {
				m.Start()
				keygen(b, e, s.parties, s.threshold)
				m.Stop()
			}
			m.Report()
		})
	}
}

func BenchmarkPresign(b *testing.B) {
	for _, s := range benchSetups {
		b.Run(s.name, func(b *testing.B) {
			e := benchEngine(b)
			fx := loadFixture(b, s.name)
			m := newCPUMeter(b)
			b.StopTimer()
			for range b.N {
				stores := memStores(s.parties)
				m.Start()
				presign(b, e, fx.Shares, s.parties, stores)
				m.Stop()
			}
			m.Report()
		})
	}
}

// BenchmarkPresignOnline times the online round, from taking the
// presignature to the verified signature at every signer, and reports the
// median. Its presignatures are dealt from the test key (see
// DealtPresignatures) so that it can run many iterations.
func BenchmarkPresignOnline(b *testing.B) {
	for _, s := range benchSetups {
		b.Run(s.name, func(b *testing.B) {
			e := benchEngine(b)
			fx := loadFixture(b, s.name)
			digest := digestOf("bench online")
			sets := mpc.DealtPresignatures(fx.Shares, s.parties, b.N)
			stores := memStores(s.parties)
			for _, set := range sets {
				for p, pre := range set {
					if err := stores[p].Put(context.Background(), pre); err != nil {
						b.Fatal(err)
					}
				}
			}
			m := newCPUMeter(b)
			durations := make([]time.Duration, 0, b.N)
			b.StopTimer()
			for i := range b.N {
				var id mpc.PresignatureID
				for _, pre := range sets[i] {
					id = pre.ID()
				}
				t0 := time.Now()
				m.Start()
				signatureOf(b, startOnline(b, e, fx.Shares, s.parties, stores, id, digest, mpc.Path{44, 60, 0, 0, uint32(i)}))
				m.Stop()
				durations = append(durations, time.Since(t0))
			}
			slices.Sort(durations)
			b.ReportMetric(float64(durations[len(durations)/2].Microseconds())/1000, "p50-ms")
			m.Report()
		})
	}
}

// BenchmarkPresignEngineVsLibrary does the same 2-of-2 presign through the
// engine (envelopes encoded and decoded, every message screened) and by
// driving the library's handlers directly with the same routing and, like
// the engine, no worker pool. The ratio of the two is the engine's overhead.
func BenchmarkPresignEngineVsLibrary(b *testing.B) {
	fx := loadFixture(b, "2of2")
	parties := fx.Parties
	b.Run("engine", func(b *testing.B) {
		e := benchEngine(b)
		m := newCPUMeter(b)
		b.StopTimer()
		for range b.N {
			stores := memStores(parties)
			m.Start()
			presign(b, e, fx.Shares, parties, stores)
			m.Stop()
		}
		m.Report()
	})
	b.Run("library", func(b *testing.B) {
		m := newCPUMeter(b)
		b.StopTimer()
		for range b.N {
			sid := sessionID(b)
			m.Start()
			handlers := make(map[party.ID]*libproto.MultiHandler, len(parties))
			var mu sync.Mutex
			var wg sync.WaitGroup
			for _, p := range parties {
				wg.Add(1)
				go func() {
					defer wg.Done()
					h, err := libproto.NewMultiHandler(cmp.Presign(mpc.LibraryConfig(fx.Shares[p]), []party.ID{"a", "b"}, nil), sid)
					if err != nil {
						b.Error(err)
						return
					}
					mu.Lock()
					handlers[party.ID(p)] = h
					mu.Unlock()
				}()
			}
			wg.Wait()
			runLibrary(b, handlers)
			for id, h := range handlers {
				if _, err := h.Result(); err != nil {
					b.Fatalf("library presign %s: %v", id, err)
				}
			}
			m.Stop()
		}
		m.Report()
	})
}

// runLibrary routes library messages between handlers the way mpctest.Run
// routes envelopes: one goroutine per party with an inbox, outputs drained
// after every Accept.
func runLibrary(b *testing.B, handlers map[party.ID]*libproto.MultiHandler) {
	type inbox struct {
		mu sync.Mutex
		q  []*libproto.Message
		ch chan struct{}
	}
	boxes := map[party.ID]*inbox{}
	for id := range handlers {
		boxes[id] = &inbox{ch: make(chan struct{}, 1)}
	}
	var mu sync.Mutex
	inflight := 1
	idle := make(chan struct{})
	add := func(n int) {
		mu.Lock()
		defer mu.Unlock()
		if inflight += n; inflight == 0 {
			close(idle)
		}
	}
	drain := func(from party.ID) {
		for {
			select {
			case msg, ok := <-handlers[from].Listen():
				if !ok {
					return
				}
				if msg.RoundNumber == 0 {
					continue
				}
				for id, box := range boxes {
					if id == from || !msg.IsFor(id) {
						continue
					}
					add(1)
					box.mu.Lock()
					box.q = append(box.q, msg)
					box.mu.Unlock()
					select {
					case box.ch <- struct{}{}:
					default:
					}
				}
			default:
				return
			}
		}
	}
	for id := range handlers {
		drain(id)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for id, box := range boxes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				case <-box.ch:
				}
				for {
					box.mu.Lock()
					if len(box.q) == 0 {
						box.mu.Unlock()
						break
					}
					msg := box.q[0]
					box.q = box.q[1:]
					box.mu.Unlock()
					handlers[id].Accept(msg)
					drain(id)
					add(-1)
				}
			}
		}()
	}
	add(-1)
	select {
	case <-idle:
	case <-time.After(runTimeout):
		b.Fatal("library presign did not finish")
	}
	close(stop)
	wg.Wait()
}

// BenchmarkSlowPath compares, in one run, the two ways to sign when no
// presignature is ready: a full Sign, and a Presign followed at once by its
// online round (what a Session does today). It reports the wall time and
// the CPU seconds (all parties) of each per signature, and their ratios.
func BenchmarkSlowPath(b *testing.B) {
	for _, s := range benchSetups {
		b.Run(s.name, func(b *testing.B) {
			e := benchEngine(b)
			fx := loadFixture(b, s.name)
			digest := digestOf("bench slow path")
			full, two := newCPUMeter(b), newCPUMeter(b)
			var fullWall, twoWall time.Duration
			b.StopTimer()
			for range b.N {
				full.Start()
				t0 := time.Now()
				signatureOf(b, startSign(b, e, fx.Shares, s.parties, digest, mpc.Path{0, 1}))
				fullWall += time.Since(t0)
				full.Stop()
				stores := memStores(s.parties)
				two.Start()
				t0 = time.Now()
				id := presign(b, e, fx.Shares, s.parties, stores)
				signatureOf(b, startOnline(b, e, fx.Shares, s.parties, stores, id, digest, mpc.Path{0, 1}))
				twoWall += time.Since(t0)
				two.Stop()
			}
			n := float64(b.N)
			b.ReportMetric(fullWall.Seconds()/n, "sign-s")
			b.ReportMetric(twoWall.Seconds()/n, "presign+online-s")
			b.ReportMetric(full.total/n, "sign-cpu-s")
			b.ReportMetric(two.total/n, "presign+online-cpu-s")
			b.ReportMetric(fullWall.Seconds()/twoWall.Seconds(), "sign/presign+online")
		})
	}
}

// BenchmarkRerandomization times, in one run, the re-randomization of a
// presignature for one party (the hash, R' = ρ·R and the shares divided by
// ρ) and the whole online round it is part of (both parties of dealt 2-of-2
// presignatures, in this process, each re-randomizing its own copy), and
// reports the cost of re-randomization on the round: the parties' share of
// the round's time, over the rest of it.
func BenchmarkRerandomization(b *testing.B) {
	e := benchEngine(b)
	fx := loadFixture(b, "2of2")
	parties := fx.Parties
	digest := digestOf("bench rerandomization")
	path := mpc.Path{44, 60, 0, 0, 1}
	sets := mpc.DealtPresignatures(fx.Shares, parties, b.N)
	stores := memStores(parties)
	for _, set := range sets {
		for p, pre := range set {
			if err := stores[p].Put(context.Background(), pre); err != nil {
				b.Fatal(err)
			}
		}
	}
	var rerand, online time.Duration
	b.StopTimer()
	for i := range b.N {
		pre := sets[i][parties[0]]
		t0 := time.Now()
		if _, err := mpc.RerandomizedNonce(pre, fx.Shares[parties[0]], path, digest); err != nil {
			b.Fatal(err)
		}
		rerand += time.Since(t0)
		t0 = time.Now()
		signatureOf(b, startOnline(b, e, fx.Shares, parties, stores, pre.ID(), digest, path))
		online += time.Since(t0)
	}
	all := time.Duration(len(parties)) * rerand
	b.ReportMetric(float64(rerand.Microseconds())/float64(b.N), "rerandomize-µs")
	b.ReportMetric(float64(online.Microseconds())/float64(b.N), "online-µs")
	b.ReportMetric(100*all.Seconds()/(online-all).Seconds(), "cost-%")
}
