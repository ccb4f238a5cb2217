package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// ev is a go test -json line.
func ev(action, pkg, test, output string) string {
	b, err := json.Marshal(event{Action: action, Package: pkg, Test: test, Output: output})
	if err != nil {
		panic(err)
	}
	return string(b) + "\n"
}

const mod = "example.com/m/"

// skipped is a test that skipped itself, with its message.
func skipped(pkg, test, why string) string {
	return ev("run", mod+pkg, test, "") + ev("output", mod+pkg, test, "=== RUN   "+test+"\n") +
		ev("output", mod+pkg, test, "    x_test.go:9: "+why+"\n") +
		ev("output", mod+pkg, test, "--- SKIP: "+test+" (0.00s)\n") + ev("skip", mod+pkg, test, "")
}

func passed(pkg, test string) string {
	return ev("run", mod+pkg, test, "") + ev("pass", mod+pkg, test, "")
}

func TestCheck(t *testing.T) {
	race := skipped("node", "TestPairLive", "slow under -race") + passed("node", "TestAdminAPI") +
		skipped("store", "TestChild", "run by TestParent") + skipped("cmd", "TestDemo/sub", "needs X")
	norace := passed("node", "TestPairLive")
	tests := []struct {
		name   string
		passes []string
		allow  string
		ok     bool
		want   []string
	}{
		{"a race skip that a later pass runs", []string{race, norace},
			"store TestChild  # a helper process\ncmd TestDemo/sub # needs X\n", true,
			[]string{"tests skipped in every pass: 2", "allowed  example.com/m/store TestChild: a helper process"}},
		{"a test skipped in every pass", []string{race},
			"store TestChild  # a helper process\ncmd TestDemo/sub # needs X\n", false,
			[]string{"NEVER RUN  example.com/m/node TestPairLive: x_test.go:9: slow under -race", "1 test(s) never ran"}},
		{"full import paths work too", []string{race, norace},
			"example.com/m/store TestChild  # a helper process\nexample.com/m/cmd TestDemo/sub # needs X\n", true, nil},
		{"a subtest is a test of its own", []string{race, norace}, "store TestChild  # a helper process\n", false,
			[]string{"NEVER RUN  example.com/m/cmd TestDemo/sub: x_test.go:9: needs X"}},
		{"stale entries are noted, not failed", []string{race, norace},
			"store TestChild  # a helper\ncmd TestDemo/sub # needs X\nnode TestPairLive # once slow\nnode TestGone # removed\n", true,
			[]string{"allows node TestPairLive, but it ran", "allows node TestGone, but no pass saw it"}},
		{"a package-level skip is no test", []string{ev("output", mod+"e", "", "?   \tm/e\t[no test files]\n") + ev("skip", mod+"e", "", "")},
			"", true, []string{"tests skipped in every pass: 0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := outcomes{}
			for _, p := range tt.passes {
				if err := o.read(strings.NewReader(p)); err != nil {
					t.Fatal(err)
				}
			}
			allow, err := parseAllow(strings.NewReader(tt.allow))
			if err != nil {
				t.Fatal(err)
			}
			var out bytes.Buffer
			if ok := report(&out, o, allow, "allow.txt"); ok != tt.ok {
				t.Errorf("report = %v, want %v", ok, tt.ok)
			}
			for _, w := range tt.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("report lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}

func TestParseAllow(t *testing.T) {
	tests := []struct {
		name, in string
		want     []string // substrings of the error; none for a valid list
	}{
		{"comments and blanks", "# deliberate skips\n\nstore TestChild # a helper process\n", nil},
		{"no reason", "store TestChild\nstore TestOther #   \n", []string{"line 1: store TestChild has no comment", "line 2"}},
		{"wrong fields", "TestChild # why\nstore TestChild extra # why\n", []string{"line 1: want a package and a test", "line 2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseAllow(strings.NewReader(tt.in))
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v lacks %q", err, w)
				}
			}
		})
	}
}

// TestPrinter prints what plain go test prints: a line per package and
// the output of failed tests, and notes a failure.
func TestPrinter(t *testing.T) {
	stream := passed("a", "TestOK") + ev("output", mod+"a", "", "PASS\n") + ev("output", mod+"a", "", "ok  \tm/a\t0.1s\n") +
		ev("pass", mod+"a", "", "") +
		ev("run", mod+"b", "TestBad", "") + ev("output", mod+"b", "TestBad", "=== RUN   TestBad\n") +
		ev("output", mod+"b", "TestBad", "    b_test.go:3: boom\n") + ev("output", mod+"b", "TestBad", "--- FAIL: TestBad (0.00s)\n") +
		ev("fail", mod+"b", "TestBad", "") + skipped("b", "TestSkip", "quietly") +
		ev("output", mod+"b", "", "FAIL\n") + ev("output", mod+"b", "", "FAIL\tm/b\t0.1s\n") + ev("fail", mod+"b", "", "") +
		"not json\n"
	var out bytes.Buffer
	p := newPrinter(&out)
	for line := range strings.Lines(stream) {
		p.line([]byte(strings.TrimSuffix(line, "\n")))
	}
	want := "ok  \tm/a\t0.1s\n=== RUN   TestBad\n    b_test.go:3: boom\n--- FAIL: TestBad (0.00s)\nFAIL\nFAIL\tm/b\t0.1s\nnot json\n"
	if out.String() != want || !p.failed {
		t.Fatalf("printed (failed %v)\n%q\nwant\n%q", p.failed, out.String(), want)
	}
}
