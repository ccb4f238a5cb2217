// Package mpcbench measures the library's bare online round, with no raft,
// actors or network, so that benchmarks of the whole co-signer elsewhere
// can report their figures as ratios to it, measured in the same run on
// the same noisy machine:
//
//	bare := mpcbench.OnlineP50(b, "../../protocol/mpc/testdata/keys-2of2.cbor")
//
// It runs on the test-only fixture keys of protocol/mpc/testdata.
package mpcbench
