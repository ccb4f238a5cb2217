// Package clock is the workspace's injected clock: the real one, and a fake
// that tests set and advance, so that no test sleeps to wait for an expiry.
package clock
