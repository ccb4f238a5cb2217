package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"
)

// allowEntry is one deliberate skip.
type allowEntry struct {
	pkg, test, why string
	line           int
}

// matches reports whether the entry names k: by import path, or by the
// path inside the module.
func (a allowEntry) matches(k testKey) bool {
	return k.Test == a.test && (k.Package == a.pkg || strings.HasSuffix(k.Package, "/"+a.pkg))
}

// parseAllow reads an allowlist: per line a package, a test and a comment
// with the reason; blank lines and lines of comment only are ignored.
func parseAllow(r io.Reader) ([]allowEntry, error) {
	var entries []allowEntry
	var errs []error
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		text, why, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(text)
		switch {
		case len(fields) == 0:
			continue
		case len(fields) != 2:
			errs = append(errs, fmt.Errorf("line %d: want a package and a test, got %q", n, strings.TrimSpace(text)))
		case strings.TrimSpace(why) == "":
			errs = append(errs, fmt.Errorf("line %d: %s %s has no comment saying why it may skip", n, fields[0], fields[1]))
		default:
			entries = append(entries, allowEntry{pkg: fields[0], test: fields[1], why: strings.TrimSpace(why), line: n})
		}
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, err)
	}
	return entries, errors.Join(errs...)
}

// report prints the tests that never ran and the allowlist entries that
// did not match one, and reports whether every test that never ran is
// allowed.
func report(w io.Writer, o outcomes, allow []allowEntry, allowName string) bool {
	never := o.neverRan()
	used := make([]bool, len(allow))
	var bad int
	fmt.Fprintf(w, "tests skipped in every pass: %d\n", len(never))
	for _, k := range never {
		why := ""
		for i, a := range allow {
			if a.matches(k) {
				used[i], why = true, a.why
				break
			}
		}
		reason := o[k].reason
		if reason == "" {
			reason = "(no skip message)"
		}
		if why != "" {
			fmt.Fprintf(w, "  allowed  %s: %s\n", k, why)
			continue
		}
		bad++
		fmt.Fprintf(w, "  NEVER RUN  %s: %s\n", k, reason)
	}
	for i, a := range allow {
		if used[i] {
			continue
		}
		state := "no pass saw it"
		for k, t := range o {
			if a.matches(k) && t.ran {
				state = "it ran"
				break
			}
		}
		fmt.Fprintf(w, "note: %s:%d allows %s %s, but %s\n", allowName, a.line, a.pkg, a.test, state)
	}
	if bad > 0 {
		fmt.Fprintf(w, "%d test(s) never ran: make one pass of `make test` run each (see the Makefile's tests that skip under -race), "+
			"or, for a deliberate skip, add it to %s with the reason\n", bad, allowName)
		return false
	}
	return true
}
