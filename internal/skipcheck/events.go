package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
)

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	// ImportPath names the package of a build-output or build-fail event.
	ImportPath string
}

// maxLine bounds one line of go test -json output.
const maxLine = 16 << 20

// testKey names a test, a subtest included, in its package.
type testKey struct {
	Package, Test string
}

func (k testKey) String() string { return k.Package + " " + k.Test }

// printer prints a go test -json stream the way plain go test prints: a
// line per package, and the output of what failed.
type printer struct {
	w      io.Writer
	tests  map[testKey][]string // output of running tests
	pkgs   map[string][]string  // package-level output
	failed bool
}

func newPrinter(w io.Writer) *printer {
	return &printer{w: w, tests: map[testKey][]string{}, pkgs: map[string][]string{}}
}

// line handles one line of the stream; a line that is not an event is
// printed as it is.
func (p *printer) line(b []byte) {
	var e event
	if len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &e) != nil || e.Action == "" {
		fmt.Fprintf(p.w, "%s\n", b)
		return
	}
	p.event(e)
}

func (p *printer) event(e event) {
	k := testKey{e.Package, e.Test}
	switch e.Action {
	case "build-output":
		fmt.Fprint(p.w, e.Output)
	case "build-fail":
		p.failed = true
	case "output":
		if e.Test != "" {
			p.tests[k] = append(p.tests[k], e.Output)
		} else if e.Output != "PASS\n" {
			p.pkgs[e.Package] = append(p.pkgs[e.Package], e.Output)
		}
	case "pass", "skip", "fail":
		if e.Action == "fail" {
			p.failed = true
		}
		if e.Test == "" {
			fmt.Fprint(p.w, strings.Join(p.pkgs[e.Package], ""))
			delete(p.pkgs, e.Package)
			return
		}
		if e.Action == "fail" {
			fmt.Fprint(p.w, strings.Join(p.tests[k], ""))
		}
		delete(p.tests, k)
	}
}

// outcome is what the passes did with one test.
type outcome struct {
	ran     bool
	skipped bool
	// reason is the test's output in a pass that skipped it: its skip
	// message.
	reason string
}

// outcomes reads the events of several passes and returns what became of
// each test.
type outcomes map[testKey]*outcome

// read adds the events of one pass.
func (o outcomes) read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, maxLine)
	out := map[testKey][]string{}
	for sc.Scan() {
		var e event
		if b := sc.Bytes(); len(b) == 0 || b[0] != '{' || json.Unmarshal(b, &e) != nil || e.Test == "" {
			continue
		}
		k := testKey{e.Package, e.Test}
		switch e.Action {
		case "output":
			if !strings.HasPrefix(e.Output, "=== ") && !strings.HasPrefix(strings.TrimSpace(e.Output), "--- ") {
				out[k] = append(out[k], strings.TrimSpace(e.Output))
			}
		case "pass", "fail":
			o.get(k).ran = true
		case "skip":
			t := o.get(k)
			t.skipped = true
			t.reason = strings.Join(out[k], " ")
		}
	}
	return sc.Err()
}

func (o outcomes) get(k testKey) *outcome {
	t, ok := o[k]
	if !ok {
		t = &outcome{}
		o[k] = t
	}
	return t
}

// neverRan returns the tests that were skipped in every pass that saw
// them, sorted.
func (o outcomes) neverRan() []testKey {
	var keys []testKey
	for k, t := range o {
		if t.skipped && !t.ran {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
	return keys
}
