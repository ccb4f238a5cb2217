// Package synthetic makes algebraically consistent presignature records for
// a random key, without running the presign protocol. Tests use them where
// the protocol itself is not under test: store contract tests and fuzz seeds.
// They are test-only material: nothing in them is secret.
package synthetic
