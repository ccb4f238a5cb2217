package launch

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// procAttr puts a process in its own process group (see Proc), and has the
// kernel kill it if the launcher dies without stopping it (SIGKILL
// included).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

// clockTicks is the kernel's USER_HZ, the unit of /proc's CPU times: 100
// on every Linux architecture Go supports.
const clockTicks = 100

// CPU returns the CPU time (user and system) the process has spent: from
// /proc/PID/stat while it runs, from its exit status once it has exited.
func (p *Proc) CPU() (time.Duration, error) {
	if p == nil {
		return 0, fmt.Errorf("%w: never started", ErrExited)
	}
	if !p.Running() {
		return p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime(), nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("launch: cpu of %s: %w", p.name, err)
	}
	// The command name, field 2, is in parentheses and may hold spaces:
	// the fields after the last ')' start with field 3 (state).
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("launch: cpu of %s: /proc stat has %d fields", p.name, len(f))
	}
	var ticks int64
	for _, v := range f[11:13] { // utime and stime, fields 14 and 15
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("launch: cpu of %s: %w", p.name, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}
