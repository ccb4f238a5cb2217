// Package wire holds the CBOR record layouts of the MPC engine's stored
// objects (key shares and presignatures) and the strict codec they use.
// It is internal so that only protocol/mpc and its test helpers depend on
// the layout; everyone else uses mpc's Marshal and Unmarshal functions.
package wire
