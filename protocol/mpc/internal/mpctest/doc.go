// Package mpctest drives MPC sessions of several parties in one process, for
// tests, benchmarks and the fixture generator. Its router delivers every
// envelope through the wire codec, runs each party on its own goroutine, and
// lets a test tamper with envelopes in flight.
package mpctest
