//go:build !linux

package launch

import (
	"fmt"
	"syscall"
	"time"
)

// procAttr leaves a process in the launcher's process group: a Ctrl-C at
// the terminal drains the processes as well as stopping the launcher. Only
// Linux can tie a child's life to its parent's (Pdeathsig).
func procAttr() *syscall.SysProcAttr { return nil }

// CPU is not measured outside Linux, which has /proc.
func (p *Proc) CPU() (time.Duration, error) {
	return 0, fmt.Errorf("launch: cpu of %s: only measured on Linux", p.name)
}
