package cluster

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A tiny datadriven runner: a script is a sequence of cases, each a command
// line, a line "----", and the expected output up to a blank line. Lines
// starting with # between cases are comments. Run with -rewrite to write
// the actual output back into the files.

var rewrite = flag.Bool("rewrite", false, "rewrite testdata scripts with the actual output")

type scriptCase struct {
	pos  string // file:line of the command
	raw  string // the command line as written
	cmd  string
	args map[string]string
	want string
	// before holds the comment and blank lines that precede the case.
	before []string
}

// parseScript reads a script file. It returns the cases and the lines after
// the last case.
func parseScript(t *testing.T, path string) ([]scriptCase, []string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	var cases []scriptCase
	var pending []string
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
			pending = append(pending, line)
			continue
		}
		pos := fmt.Sprintf("%s:%d", filepath.Base(path), i+1)
		if i+1 >= len(lines) || lines[i+1] != "----" {
			t.Fatalf("%s: command not followed by ----", pos)
		}
		cmd, args := parseCommandLine(t, pos, line)
		c := scriptCase{pos: pos, raw: line, cmd: cmd, args: args, before: pending}
		pending = nil
		var want []string
		for i += 2; i < len(lines) && lines[i] != ""; i++ {
			want = append(want, lines[i])
		}
		c.want = strings.Join(want, "\n")
		cases = append(cases, c)
		if i < len(lines) {
			pending = append(pending, "") // the blank line that ended the case
		}
	}
	return cases, pending
}

// parseCommandLine splits `cmd k=v k="v with spaces"`.
func parseCommandLine(t *testing.T, pos, line string) (string, map[string]string) {
	t.Helper()
	cmd, rest, _ := strings.Cut(line, " ")
	args := map[string]string{}
	for rest = strings.TrimSpace(rest); rest != ""; rest = strings.TrimSpace(rest) {
		eq := strings.IndexByte(rest, '=')
		if eq <= 0 {
			t.Fatalf("%s: bad argument %q", pos, rest)
		}
		key := rest[:eq]
		rest = rest[eq+1:]
		var val string
		if strings.HasPrefix(rest, `"`) {
			end := strings.IndexByte(rest[1:], '"')
			if end < 0 {
				t.Fatalf("%s: unterminated quote", pos)
			}
			val, rest = rest[1:end+1], rest[end+2:]
		} else if sp := strings.IndexByte(rest, ' '); sp >= 0 {
			val, rest = rest[:sp], rest[sp:]
		} else {
			val, rest = rest, ""
		}
		args[key] = val
	}
	return cmd, args
}

// runScript runs every case of a file through run and compares (or, with
// -rewrite, rewrites) the output.
func runScript(t *testing.T, path string, run func(c scriptCase) string) {
	t.Helper()
	cases, tail := parseScript(t, path)
	var out strings.Builder
	for _, c := range cases {
		got := strings.TrimRight(run(c), "\n")
		if got != c.want && !*rewrite {
			t.Errorf("%s: %s\ngot:\n%s\nwant:\n%s", c.pos, c.raw, got, c.want)
		}
		for _, l := range c.before {
			out.WriteString(l + "\n")
		}
		fmt.Fprintf(&out, "%s\n----\n%s\n", c.raw, got)
	}
	for _, l := range tail {
		out.WriteString(l + "\n")
	}
	if *rewrite {
		if err := os.WriteFile(path, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
