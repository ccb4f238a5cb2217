// Package clock is Coterie's one injected time source. Logic that tests
// must control (timeouts, backoff, leases, expiries, proposer timestamps,
// stage latencies) reads the time and sets its timers through a Clock
// passed in its Config, never through time.Now or time.AfterFunc.
//
// Production code uses Real, the operating system's clock. Tests use Fake,
// whose time moves only when the test calls Advance, and which lets a test
// wait until the code under test has set a timer (WaitForTimer), so that no
// test sleeps to wait for a timeout.
//
// Every package's Config.Clock is a clock.Clock.
package clock
