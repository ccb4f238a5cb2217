// Package presigntest is the contract test suite for mpc.PresignStore. Every
// implementation runs it from its own tests:
//
//	func TestStoreContract(t *testing.T) {
//		presigntest.Run(t, func(t *testing.T) mpc.PresignStore { return newStoreForTest(t) })
//	}
//
// The suite uses synthetic presignatures (Presignatures): algebraically
// consistent shares of random test-only keys, made without running the
// presign protocol, so it takes milliseconds.
package presigntest
