package main

import "syscall"

// demoProcAttr puts a node process in its own process group, so that a
// Ctrl-C at the terminal reaches the demo alone, which then stops its
// nodes in order; and has the kernel kill the node if the demo dies
// without stopping it (SIGKILL included), so that no node outlives it.
func demoProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
