// Package mpcbenchtest measures the library's bare online round on the
// test-only fixture keys of protocol/mpc/testdata, for benchmarks of the
// whole co-signer that report their figures as ratios to it:
//
//	bare := mpcbenchtest.OnlineP50(b, "../../protocol/mpc/testdata/keys-2of2.cbor")
//
// It is mpcbench.Online on a fixture's presignatures. A shipped binary has
// no fixtures; it calls mpcbench.Measure, which makes its own key.
package mpcbenchtest
