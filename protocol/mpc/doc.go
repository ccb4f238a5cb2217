// Package mpc is Coterie's CMP threshold-ECDSA engine on secp256k1, built on
// github.com/taurusgroup/multi-party-sig (unaudited alpha code; see the
// README's security section).
package mpc

//go:generate go run ./internal/fixturegen -dir testdata
