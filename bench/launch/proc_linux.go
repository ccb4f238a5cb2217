package launch

import "syscall"

// procAttr puts a process in its own process group (see Proc), and has the
// kernel kill it if the launcher dies without stopping it (SIGKILL
// included).
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
