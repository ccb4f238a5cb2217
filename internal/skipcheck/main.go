package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "run":
		err = runCmd(os.Args[2:])
	case "check":
		err = checkCmd(os.Args[2:])
	default:
		usage()
	}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		os.Exit(exit.ExitCode())
	case err != nil:
		fmt.Fprintln(os.Stderr, "skipcheck:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage:\n  skipcheck run -json FILE -- go test -json ...\n  skipcheck check -allow FILE EVENTS.json...")
	os.Exit(2)
}

// errFailed is returned by run when the stream reported a failure but the
// command exited 0.
var errFailed = errors.New("a test or build failed")

// runCmd runs a go test -json command, saves its events and prints them
// as plain go test would.
func runCmd(args []string) error {
	fs := flag.NewFlagSet("run", flag.ExitOnError)
	out := fs.String("json", "", "the file that receives the events (required)")
	_ = fs.Parse(args)
	if *out == "" || fs.NArg() == 0 {
		usage()
	}
	f, err := os.Create(*out)
	if err != nil {
		return err
	}
	defer f.Close()
	cmd := exec.Command(fs.Arg(0), fs.Args()[1:]...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	p := newPrinter(os.Stdout)
	werr := copyEvents(stdout, f, p)
	err = cmd.Wait()
	if err == nil {
		err = werr
	}
	if err == nil && p.failed {
		err = errFailed
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// copyEvents saves each line of r to w and hands it to p.
func copyEvents(r io.Reader, w io.Writer, p *printer) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, maxLine)
	bw := bufio.NewWriter(w)
	for sc.Scan() {
		_, _ = bw.Write(sc.Bytes())
		_ = bw.WriteByte('\n')
		p.line(sc.Bytes())
	}
	// Read to the end whatever happened, so the command never blocks.
	_, _ = io.Copy(io.Discard, r)
	return errors.Join(sc.Err(), bw.Flush())
}

// checkCmd reads every pass's events and checks the tests that never ran
// against the allowlist.
func checkCmd(args []string) error {
	fs := flag.NewFlagSet("check", flag.ExitOnError)
	allowPath := fs.String("allow", "", "the allowlist of deliberate skips (required)")
	_ = fs.Parse(args)
	if *allowPath == "" || fs.NArg() == 0 {
		usage()
	}
	af, err := os.Open(*allowPath)
	if err != nil {
		return err
	}
	allow, err := parseAllow(af)
	af.Close()
	if err != nil {
		return fmt.Errorf("%s: %w", *allowPath, err)
	}
	o := outcomes{}
	for _, path := range fs.Args() {
		f, err := os.Open(path)
		if err != nil {
			return err
		}
		err = o.read(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	if !report(os.Stdout, o, allow, *allowPath) {
		return errors.New("some tests never ran")
	}
	return nil
}
