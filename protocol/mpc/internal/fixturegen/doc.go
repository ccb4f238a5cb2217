// Command fixturegen writes the TEST-ONLY key shares (and a few
// presignatures) that protocol/mpc's tests load from testdata, so that tests
// do not run key generation every time. It drives real keygen and presign
// sessions through the engine. Run it from protocol/mpc:
//
//	go generate ./protocol/mpc
//
// The secret shares it writes are public by construction: never use them
// outside tests.
package main
