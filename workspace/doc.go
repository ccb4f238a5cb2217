// Package workspace is the custody-platform simulator: what a Coterie
// cluster pairs with, polls, signs through and reports to. It is what the
// tests, `coterie demo`, the benchmarks and the failover drills run against,
// and it is the judge of correctness: it verifies every signature and
// approval it receives.
//
// The workspace's setup is part of its data: at the first start Open gives
// the workspace a unique ID ("ws-" and random hex, which also prefixes its
// request IDs) and stores it with the MPC setup (the number of cloud
// co-signers and the quorum). Later starts take the stored setup, and a
// Config that contradicts it is ErrSetupMismatch. A directory created before
// the setup was stored keeps the ID "default" and its "r-" request IDs.
//
// This package wires the parts together and owns the data directory:
//
//	workspace.db        the store (package store): setup, users, requests, audit, ...
//	ca.pem              the workspace CA certificate (public)
//	ca-key.sealed       the CA key, sealed by the workspace's simulated enclave
//	sim-root            that enclave's root (enclave/sim)
//	sim-platform.key    the simulated machine key shared by the enclaves here
//	admin.pem           the admin client certificate and key (0600)
//	address             host:port of the running server
//	cosigners/cloud-N/  each cloud co-signer's enclave root and sealed keyring
//
// A client needs only the directory: the address, the CA and the admin
// credential (package client, DialAdmin). The pairing-token MAC key is
// derived from the CA key, so there is no other secret to keep.
//
// The parts:
//   - pki: the CA, TLS configurations with CA pinning, client certificates;
//   - token: pairing tokens;
//   - request: validation of submissions and reports, built digests;
//   - store: the bbolt store and the request state machine;
//   - cosigner: the cloud co-signers and the MPC relay's routing;
//   - verify: signature and approval checks;
//   - server: the gRPC services;
//   - client: the Go client for co-signer nodes and for the operator.
package workspace

//go:generate go run ./internal/fixturegen -out testdata/signer-2of2
//go:generate go run ./internal/fixturegen -out testdata/signer-2of2-b
