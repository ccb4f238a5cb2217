package launch

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Proc is one coterie process a launcher (this package's Cluster, or
// `coterie demo`) started, with its output appended to a log file that
// outlives restarts. It runs in its own process group, so that a Ctrl-C at
// the terminal reaches the launcher alone, which then stops its processes
// in order; on Linux the kernel kills it if the launcher dies without
// stopping it, so that none outlives the launcher.
type Proc struct {
	name string
	log  string
	cmd  *exec.Cmd
	done chan struct{} // closed when the process has exited
}

// StartProc runs bin with args, appending its output to logPath.
func StartProc(name, logPath, bin string, args ...string) (*Proc, error) {
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fmt.Fprintf(f, "--- launch: starting %s at %s\n", name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = procAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("launch: start %s: %w", name, err)
	}
	p := &Proc{name: name, log: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil
}

// Running reports whether the process has not exited.
func (p *Proc) Running() bool {
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

// Kill ends the process with SIGKILL and waits until it is gone.
func (p *Proc) Kill() {
	if !p.Running() {
		return
	}
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// Stop sends SIGTERM and kills the process if it has not exited within
// grace; it reports whether the process stopped by itself.
func (p *Proc) Stop(grace time.Duration) bool {
	if !p.Running() {
		return true
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		p.Kill()
		return false
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-p.done:
		return true
	case <-t.C:
		// A stopped (SIGSTOP) process never handles SIGTERM.
		p.Kill()
		return false
	}
}

// Signal sends sig to the running process.
func (p *Proc) Signal(sig syscall.Signal) error {
	if p == nil {
		return fmt.Errorf("%w: never started", ErrExited)
	}
	if !p.Running() {
		return fmt.Errorf("%w: %s", ErrExited, p.name)
	}
	return p.cmd.Process.Signal(sig)
}

// ExitErr describes the process having exited, with the end of its log.
func (p *Proc) ExitErr() error {
	return fmt.Errorf("%w: %s (%v); the end of %s:\n%s", ErrExited, p.name, p.cmd.ProcessState, p.log, Tail(p.log, 20))
}

// Tail returns the last n lines of the file at path.
func Tail(path string, n int) string {
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
