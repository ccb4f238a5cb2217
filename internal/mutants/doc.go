// Command mutants checks that the tests guard Coterie's safety checks. It
// reads a hand-kept list of mutants (.ci/mutants), each an exact edit to
// one source file that breaks one check, and for each in turn applies it,
// runs the tests the list names, and restores the file. A mutant the tests
// do not kill (they pass with the check broken) is a survivor: the check
// has no test. `make mutants` runs it; it is slow, so CI does not.
//
// Usage:
//
//	go run ./internal/mutants [-list .ci/mutants] [-run REGEXP]
//
// The list format, one mutant per block:
//
//	mutant <what the edit breaks>
//	file <path from the repository root>
//	test <go test arguments: packages and -run>
//	old
//	<lines that must occur exactly once in the file>
//	new
//	<the lines that replace them>
//	end
//
// Lines starting with # outside a block are comments. A mutant whose old
// text is missing or not unique, or that does not compile, is reported as
// broken: the list must be kept in step with the code.
package main
