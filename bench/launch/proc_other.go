//go:build !linux

package launch

import "syscall"

// procAttr leaves a process in the launcher's process group: a Ctrl-C at
// the terminal drains the processes as well as stopping the launcher. Only
// Linux can tie a child's life to its parent's (Pdeathsig).
func procAttr() *syscall.SysProcAttr { return nil }
