// Package load drives a signing workload against a Coterie cluster through
// its workspace, and records when each request was submitted and how it
// ended, by the workspace's own clock.
//
// Duties. Run submits requests for Config.Duration, either open loop (at
// Config.Rate per second, whatever the cluster keeps up with, up to
// Config.MaxInFlight unfinished) or closed loop (Config.Concurrency
// requests in flight, each submitted when the previous one of its slot
// finished). The mix is drawn from Config: transactions of 1 to MaxDigests
// digests on varied derivation paths, spread over the API users; a share
// of config changes; a share the callback handler answers RETRY once and a
// share it answers REJECT, as Policy, the policy the handler must run,
// says. Then Run waits up to Config.Drain for the requests still open, and
// returns every request with its outcome.
//
// Latency is the workspace's: from the request's creation to its final
// state (for a transaction, the verified signature of its last digest), so
// the driver's own polling adds nothing to it.
//
// Bounds. Every call is bounded by Config.CallTimeout; the load by
// Config.Duration and Config.Drain; open loop by Config.MaxInFlight.
//
// Concurrency. Run may be called from one goroutine at a time per
// workspace; Config.Progress is called from Run's goroutines, one call at
// a time.
package load
