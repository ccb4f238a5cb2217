package launch

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// proc is one process the cluster started, with its output appended to a
// log file that outlives restarts.
type proc struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// startProc runs bin with args, appending its output to logPath.
func startProc(name, logPath, bin string, args ...string) (*proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fmt.Fprintf(f, "--- launch: starting %s at %s\n", name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("launch: start %s: %w", name, err)
	}
	p := &proc{name: name, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// running reports whether the process has not exited.
func (p *proc) running() bool {
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// kill ends the process with SIGKILL and waits until it is gone.
func (p *proc) kill() {
	if !p.running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and kills the process if it has not exited within
// grace; it reports whether the process stopped by itself.
func (p *proc) stop(grace time.Duration) bool {
	if !p.running() {
		return true
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.kill()
		return false
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		// A stopped (SIGSTOP) process never handles SIGTERM.
		p.kill()
		return false
	}
}

// signal sends sig to the running process.
func (p *proc) signal(sig syscall.Signal) error {
	if p == nil {
		return fmt.Errorf("%w: never started", ErrExited)
	}
	if !p.running() {
		return fmt.Errorf("%w: %s", ErrExited, p.name)
	}
	return p.cmd.Process.Signal(sig)
}

// exitErr describes the process having exited, with the end of its log.
func (p *proc) exitErr() error {
	return fmt.Errorf("%w: %s (%v); the end of %s:\n%s", ErrExited, p.name, p.cmd.ProcessState, p.log, tail(p.log, 20))
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
