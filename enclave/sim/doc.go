// Package sim is the simulated enclave: the default backend, pure Go, for
// development and tests only. It protects nothing.
//
// Sealing uses AES-256-GCM under keys derived with HKDF-SHA256 from two
// 32-byte secrets: a random root in the node's data directory (sim-root,
// mode 0600) and the seed of a per-machine platform key (by default under
// the user's configuration directory). Mixing in the machine's secret makes
// a data directory copied to another simulated machine fail to unseal with
// enclave.ErrForeignEnclave, as it would on real hardware. The keys are
// further bound, per the key policy, to the simulated measurement (by
// default the hash of the running executable) or to the signer and product.
//
// Attestation is an Ed25519 statement, by the machine's platform key, over
// the simulated identity and the caller's report data. Verify accepts only
// statements from trusted platform keys: the machine's own and those in
// Config.TrustedPlatforms.
//
// Anyone who can read the data directory and the platform key file can
// unseal everything and forge evidence. New logs a warning on every start,
// and fails with ErrProductionMode when Config.Production is set.
package sim
