// Command skipcheck makes sure every test runs in CI at least once.
//
// `make test` runs the tests in several passes (without the race detector,
// with it, again without it for the tests that skip themselves under it,
// and the SGX build's). A test that skips itself in every pass never runs
// at all, and nothing says so. skipcheck records each pass's `go test
// -json` events and, at the end, lists the tests that were skipped in every
// pass: it fails unless each of them is on the allowlist, a short file of
// deliberate skips (helper processes that a parent test starts, tests that
// need hardware) with the reason for each.
//
// Usage:
//
//	skipcheck run -json FILE -- go test -json [flags] [packages]
//	skipcheck check -allow FILE EVENTS.json...
//
// run runs the go test command, saves its JSON events in FILE and prints
// what a plain `go test` would: one line per package, and the output of
// failed tests and of build failures. It exits with the command's status.
//
// check reads the saved events of every pass and prints the tests skipped
// in every pass, each with its skip message. It exits 1 if one of them is
// not on the allowlist. An allowlist line is a package (its import path,
// or the path inside the module) and a test name, then a comment that
// says why:
//
//	workspace/store TestKill9Child  # the child process of TestKill9LosesNothing
//
// An entry for a test that ran after all, or that no pass saw, is reported
// so that the list stays short, but does not fail the check: some skips
// depend on the machine.
package main
