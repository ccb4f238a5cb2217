package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"strings"
	"syscall"
	"time"
)

// mutant is one edit that breaks one safety check.
type mutant struct {
	what, file string
	test       []string
	old, new   string
	line       int // where the block starts in the list
}

// result is what running one mutant gave.
type result int

const (
	killed result = iota + 1
	survived
	broken
)

func (r result) String() string {
	switch r {
	case killed:
		return "killed"
	case survived:
		return "SURVIVED"
	case broken:
		return "BROKEN"
	default:
		return "unknown"
	}
}

func main() {
	list := flag.String("list", ".ci/mutants", "the mutant list")
	run := flag.String("run", "", "run only the mutants whose description matches this regexp")
	flag.Parse()
	ms, err := parse(*list)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mutants:", err)
		os.Exit(2)
	}
	var only *regexp.Regexp
	if *run != "" {
		if only, err = regexp.Compile(*run); err != nil {
			fmt.Fprintln(os.Stderr, "mutants: -run:", err)
			os.Exit(2)
		}
	}
	counts := map[result]int{}
	for _, m := range ms {
		if only != nil && !only.MatchString(m.what) {
			continue
		}
		t0 := time.Now()
		r, detail := m.apply()
		counts[r]++
		fmt.Printf("%-8s %s (%s, %s)\n", r, m.what, m.file, time.Since(t0).Round(time.Second))
		if r != killed && detail != "" {
			fmt.Println(indent(detail))
		}
	}
	fmt.Printf("%d killed, %d survived, %d broken\n", counts[killed], counts[survived], counts[broken])
	if counts[survived] > 0 || counts[broken] > 0 {
		os.Exit(1)
	}
}

// apply edits the file, runs the tests and restores the file, whatever
// happens (an interrupt included).
func (m mutant) apply() (result, string) {
	orig, err := os.ReadFile(m.file)
	if err != nil {
		return broken, err.Error()
	}
	if n := bytes.Count(orig, []byte(m.old)); n != 1 {
		return broken, fmt.Sprintf("list line %d: the old text occurs %d times in %s, want 1", m.line, n, m.file)
	}
	mutated := bytes.Replace(orig, []byte(m.old), []byte(m.new), 1)
	info, err := os.Stat(m.file)
	if err != nil {
		return broken, err.Error()
	}
	restore := func() { _ = os.WriteFile(m.file, orig, info.Mode()) }
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	go func() {
		if _, ok := <-sigs; ok {
			restore()
			os.Exit(130)
		}
	}()
	defer restore()
	if err := os.WriteFile(m.file, mutated, info.Mode()); err != nil {
		return broken, err.Error()
	}
	// A mutant that does not compile would be "killed" by any test.
	pkgs := packagesOf(m.test)
	if out, err := exec.Command("go", append([]string{"vet"}, pkgs...)...).CombinedOutput(); err != nil {
		return broken, "does not compile or vet:\n" + string(out)
	}
	out, err := exec.Command("go", append([]string{"test", "-count=1"}, m.test...)...).CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
		return survived, "the tests pass with the check broken"
	case errors.As(err, &exit):
		return killed, tail(string(out), 5)
	default:
		return broken, err.Error()
	}
}

// packagesOf returns the package patterns among go test arguments.
func packagesOf(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		switch a := args[i]; {
		case strings.HasPrefix(a, "-"):
			if !strings.Contains(a, "=") && i+1 < len(args) {
				i++ // the flag's value
			}
		default:
			out = append(out, a)
		}
	}
	return out
}

// parse reads the mutant list.
func parse(path string) ([]mutant, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var (
		out  []mutant
		cur  *mutant
		body *strings.Builder
		old  strings.Builder
		neu  strings.Builder
	)
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if cur == nil {
			switch {
			case strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#"):
			case strings.HasPrefix(line, "mutant "):
				cur = &mutant{what: strings.TrimPrefix(line, "mutant "), line: n}
			default:
				return nil, fmt.Errorf("%s:%d: want a mutant line, got %q", path, n, line)
			}
			continue
		}
		switch {
		case body == nil && strings.HasPrefix(line, "file "):
			cur.file = strings.TrimPrefix(line, "file ")
		case body == nil && strings.HasPrefix(line, "test "):
			cur.test = strings.Fields(strings.TrimPrefix(line, "test "))
		case line == "old":
			old.Reset()
			body = &old
		case line == "new":
			neu.Reset()
			body = &neu
		case line == "end":
			cur.old, cur.new = old.String(), neu.String()
			if cur.file == "" || len(cur.test) == 0 || cur.old == "" {
				return nil, fmt.Errorf("%s:%d: mutant %q needs file, test and old", path, cur.line, cur.what)
			}
			out = append(out, *cur)
			cur, body = nil, nil
		case body != nil:
			body.WriteString(line + "\n")
		default:
			return nil, fmt.Errorf("%s:%d: unexpected %q", path, n, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if cur != nil {
		return nil, fmt.Errorf("%s:%d: mutant %q has no end", path, cur.line, cur.what)
	}
	return out, nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func indent(s string) string {
	return "    " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n    ")
}
