// Package mpcbench measures the library's bare rounds, with no raft, actors
// or network, so that a benchmark of the whole co-signer can report its
// figures as ratios to them, measured in the same run on the same noisy
// machine. `coterie bench` runs it next to its load:
//
//	bare, err := mpcbench.Measure(ctx, mpcbench.DefaultConfig())
//	if err != nil { ... }
//	ratio := float64(clusterP50) / float64(bare.OnlineP50())
//
// # Duties
//
// Measure makes its own throw-away key and needs no fixture: one keygen,
// then Config.Presigns presign sessions one after another, then one online
// round (PresignOnline) per presignature. It reports the wall time of each
// and the CPU time per presignature (Result). Online runs the online rounds
// alone, on presignatures the caller already has; the test helper
// mpcbenchtest.OnlineP50 runs it on the fixture keys of protocol/mpc/testdata.
//
// Every party signs: a Config.Parties-of-Parties key, CMP threshold
// Parties-1 (the library's threshold counts the corrupt parties the key
// tolerates; threshold+1 parties sign). 2-of-2 is the bench's default
// cluster; 3-of-3 is the other setup the co-signer runs.
//
// # How the parties run
//
// All parties run in this process with the engine of protocol/mpc, which
// never uses the library's worker pool. Messages go from session to session
// in passes, as Go values (no wire encoding): each pass collects what every
// session wants sent, then every recipient accepts its envelopes on its own
// goroutine, as separate processes would. The session constructors, which
// do a round of heavy work, also run one goroutine per party. So a
// session's wall time is what the parties take side by side on the
// machine's cores, and never more than the sum of their work.
//
// PresignCPU is the process's CPU time (getrusage, user plus system) across
// each presign session. It counts every goroutine of the process, so it is
// the sessions' own only while the process does nothing else heavy: the
// caller runs Measure before or after its load, not during it.
//
// # Cancellation and failure
//
// Measure and Online check ctx before every session, every pass and every
// envelope, and return ctx's error. One Accept or constructor runs to its
// end once started, so a cancellation takes effect within the longest of
// them (the keygen constructor's Paillier sampling, a second or two). An
// exchange is bounded: sessions that stop sending before they are done, or
// keep sending far beyond the protocol's rounds, give ErrStalled. A failed
// session's error is returned; nothing panics.
//
// Measure and Online may be called concurrently, though runs side by side
// distort each other's figures.
package mpcbench
