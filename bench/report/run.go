package report

import (
	"time"
)

// Run is what one `coterie bench` or `coterie drill` measured. It is
// written as JSON as is, and rendered as a terminal table and an HTML
// report. Times within the run are offsets from Started.
type Run struct {
	// Kind is "bench" or "drill".
	Kind    string    `json:"kind"`
	Started time.Time `json:"started"`
	// Elapsed is how long the load ran.
	Elapsed time.Duration `json:"elapsed_ns"`
	// Interrupted is set when the run was stopped early (Ctrl-C, a
	// failed step): what it holds was measured until then.
	Interrupted string `json:"interrupted,omitempty"`
	Setup       Setup  `json:"setup"`

	// Latency is end to end: from the submission to the workspace's
	// verified signature (or other final state), by the workspace's clock.
	Latency Summary `json:"latency"`
	// Stages are the nodes' own timings of each stage, merged across
	// nodes: poll, claim_commit, callback, reserve_commit, online_round,
	// verification, ...
	Stages []Stage `json:"stages"`
	// Throughput is finished requests per second of Elapsed.
	Throughput float64 `json:"throughput_per_s"`
	// Outcomes counts the requests by final state (signed, approved,
	// rejected, failed, expired, unfinished).
	Outcomes map[string]int `json:"outcomes"`
	// Errors counts failures by reason: submissions refused, requests
	// failed or rejected with a reason.
	Errors map[string]int `json:"errors,omitempty"`
	// Samples are every finished request, in order of completion.
	Samples []Sample `json:"samples"`
	// Pool is the cluster-wide count of available presignatures over time.
	Pool []PoolSample `json:"pool"`
	// CPU is the CPU time each process spent during the load.
	CPU []ProcessCPU `json:"cpu"`
	// CPUPerSignature is the CPU seconds of every process (nodes and
	// workspace) per signature made during the load.
	CPUPerSignature float64 `json:"cpu_s_per_signature"`
	// Bare is the library alone, measured in the same run.
	Bare Bare `json:"bare"`
	// Faults are the drill's rounds, in order; empty for a bench.
	Faults []Fault `json:"faults,omitempty"`
	// FaultKinds summarizes Faults by kind.
	FaultKinds []FaultKind `json:"fault_kinds,omitempty"`
	// FindMax is the --find-max search, when one ran.
	FindMax *FindMax `json:"find_max,omitempty"`
	// Check is the invariant checker's verdict on the run.
	Check Check `json:"check"`
}

// Setup is what the run was asked to do.
type Setup struct {
	Nodes     int `json:"nodes"`
	Cosigners int `json:"cosigners"`
	Quorum    int `json:"quorum"`
	Users     int `json:"users"`
	// Rate is the open-loop submission rate per second; 0 for closed loop.
	Rate float64 `json:"rate,omitempty"`
	// Concurrency is the closed-loop number of requests in flight.
	Concurrency int           `json:"concurrency,omitempty"`
	Duration    time.Duration `json:"duration_ns"`
	// MaxDigests is the most digests one transaction carries.
	MaxDigests int `json:"max_digests"`
	// ConfigChanges, Retry and Reject are the shares of the mix (0 to 1):
	// config changes among the requests, and the callback server's RETRY
	// and REJECT answers.
	ConfigChanges float64 `json:"config_changes"`
	Retry         float64 `json:"retry"`
	Reject        float64 `json:"reject"`
	Rounds        int     `json:"rounds,omitempty"`
}

// Summary is a latency distribution.
type Summary struct {
	Count int64         `json:"count"`
	P50   time.Duration `json:"p50_ns"`
	P90   time.Duration `json:"p90_ns"`
	P99   time.Duration `json:"p99_ns"`
	P999  time.Duration `json:"p999_ns"`
	Max   time.Duration `json:"max_ns"`
}

// Stage is one stage's latency, merged across nodes.
type Stage struct {
	Name string `json:"name"`
	Summary
}

// Sample is one finished request.
type Sample struct {
	// At is when it finished.
	At      time.Duration `json:"at_ns"`
	Latency time.Duration `json:"latency_ns"`
	// Outcome is its final state.
	Outcome string `json:"outcome"`
	Digests int    `json:"digests"`
}

// PoolSample is the cluster-wide available presignatures at a moment.
type PoolSample struct {
	At    time.Duration `json:"at_ns"`
	Depth int           `json:"depth"`
}

// ProcessCPU is one process's CPU time (user and system) during the load.
type ProcessCPU struct {
	Name    string  `json:"name"`
	Seconds float64 `json:"seconds"`
}

// Bare is the library's own figures, all parties in the bench process.
type Bare struct {
	// Online is the median online round (PresignOnline).
	Online time.Duration `json:"online_p50_ns"`
	// Presign is the median presignature, and PresignCPU its CPU seconds.
	Presign    time.Duration `json:"presign_p50_ns"`
	PresignCPU float64       `json:"presign_cpu_s"`
	// OnlineRatio is Latency.P50 / Online; PresignRatio is
	// CPUPerSignature / PresignCPU.
	OnlineRatio  float64 `json:"e2e_p50_over_online"`
	PresignRatio float64 `json:"cpu_per_signature_over_presign"`
}

// Fault is one round of a drill.
type Fault struct {
	Round int `json:"round"`
	// Kind is the fault, e.g. kill-leader, kill-owner, sigstop,
	// partition-leader, latency.
	Kind   string `json:"kind"`
	Target string `json:"target"`
	// At is when the fault began; Healed when it was undone (a restart, a
	// SIGCONT, a heal), if it was.
	At     time.Duration `json:"at_ns"`
	Healed time.Duration `json:"healed_ns,omitempty"`
	// Signing is how long after At the cluster finished a request
	// submitted after At.
	Signing time.Duration `json:"signing_ns"`
	// Failover is, for each request the faulted node owned, how long after
	// At another node claimed it.
	Failover []time.Duration `json:"failover_ns,omitempty"`
	// Err is why the round could not run or did not recover.
	Err string `json:"error,omitempty"`
}

// FaultKind summarizes the rounds of one kind.
type FaultKind struct {
	Kind     string  `json:"kind"`
	Rounds   int     `json:"rounds"`
	Signing  Summary `json:"signing"`
	Failover Summary `json:"failover"`
}

// FindMax is a --find-max search.
type FindMax struct {
	Steps []Step `json:"steps"`
	// Max is the highest rate whose step held its bounds.
	Max float64 `json:"max_per_s"`
	// Ceiling is the rate the library's bare presign allows on this
	// machine: cores / Bare.PresignCPU.
	Ceiling float64 `json:"ceiling_per_s"`
}

// Step is one rate of a --find-max search.
type Step struct {
	Rate    float64       `json:"rate"`
	P99     time.Duration `json:"p99_ns"`
	Backlog int           `json:"backlog"`
	OK      bool          `json:"ok"`
	// CPUPerSignature is this step's CPU seconds per signature.
	CPUPerSignature float64 `json:"cpu_s_per_signature"`
}

// Check is the invariant checker's verdict.
type Check struct {
	OK bool `json:"ok"`
	// Violations are the checker's lines, each with its request id.
	Violations []string `json:"violations,omitempty"`
	// Summary is the checker's one-paragraph account of what it read.
	Summary string `json:"summary"`
}
